#!/bin/bash
# What the etcd catalogue relies on in etcd 3.4's v3 JSON gateway (grpc-gateway
# over the v3 gRPC API, served on every client URL under /v3/), checked with
# curl and jq against a throwaway 3-member cluster (etcdlib.sh); no snapfs.
# The comments record the exact shapes seen with etcd 3.4.23, for the C client.
#
# General shapes (all checked below):
# - Every request is POST with a JSON body; the answer is Content-Type
#   application/json, HTTP 200 on success.
# - bytes fields (key, value, range_end, kv.key, kv.value, watch keys) are
#   standard base64 with padding ("L3AvYQ==").
# - int64/uint64 fields are JSON strings in answers ("revision":"5",
#   "count":"3", "ID":"1906889922508976924", "TTL":"2"); in requests both a
#   string and a number are accepted ("limit":2 and "limit":"2").
# - Fields at their zero value are OMITTED from answers: no "kvs" and no
#   "count" when nothing matched, no "value" for an empty value, no
#   "succeeded" when a txn's compare failed (never "succeeded":false), no
#   "more" unless true, no "deleted" when 0, no "responses" when the branch
#   taken had no operation, no "type" on a PUT event (only "type":"DELETE"),
#   no "watch_id" for watch 0, no "lease" on a key without one.
# - header: {"cluster_id","member_id","revision","raft_term"}, all strings;
#   inside txn responses each sub-response has only {"header":{"revision"}}.
# - Errors of unary calls: HTTP 4xx/5xx with
#   {"error":"<text>","message":"<same text>","code":<gRPC code, a NUMBER>}.
#   Errors of the streaming calls (lease/keepalive, watch) come as
#   {"error":{"grpc_code":14,"http_code":503,"message":"...","http_status":"Service Unavailable"}}.
# - Unknown JSON fields are ignored silently ({"kee":...} is a range with no
#   key: 400 "etcdserver: key is not provided", code 3); so are fields in the
#   wrong case except the proto names: the lease TTL must be "TTL" and the
#   lease id "ID" ("ttl" is ignored and the lease gets the minimum TTL).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcdlib.sh"
export LC_ALL=C

if ! command -v curl >/dev/null || ! command -v jq >/dev/null; then
	echo "1..0 # SKIP no curl or jq"
	exit 0
fi
# No snapfs runs here: a sanitizer build has nothing more to find.
if ldd "$SNAPFS" 2>/dev/null | grep -q libasan; then
	echo "1..0 # SKIP etcd only: run in the build without sanitizers"
	exit 0
fi
plan 79

etcd_cluster_start || exit 1
P=$ETCD_PREFIX/facts

b64() { printf %s "$1" | base64 -w0; }
k() { b64 "$P/$1"; } # k NAME: the base64 key of $P/NAME

# post N PATH BODY [CURL_OPTS...]: POST BODY to member N; prints the answer
# body, then a last line "HTTP <code> <curl exit> <milliseconds>".
post() {
	local n=$1 path=$2 body=$3 t0 out rc
	shift 3
	t0=$(now_ms)
	out=$(curl -s -m 15 "$@" -w '\n%{http_code}' "${ETCD_URL[$n]}$path" --data-binary "$body")
	rc=$?
	sed '$d' <<<"$out"
	echo "HTTP $(tail -1 <<<"$out") $rc $(($(now_ms) - t0))"
}
body_of() { sed '$d' <<<"$1"; }
code_of() { tail -1 <<<"$1" | cut -d' ' -f2; }
curl_rc_of() { tail -1 <<<"$1" | cut -d' ' -f3; }
ms_of() { tail -1 <<<"$1" | cut -d' ' -f4; }
# jqc ANSWER FILTER: FILTER applied to the body of an answer (compact).
jqc() { body_of "$1" | jq -c "$2" 2>&1; }

put() { # put NAME VALUE [MEMBER [CURL_OPTS...]]
	local name=$1 value=$2 n=${3:-1}
	shift 2
	[ $# -gt 0 ] && shift
	post "$n" /v3/kv/put "{\"key\":\"$(k "$name")\",\"value\":\"$(b64 "$value")\"}" "$@"
}
get() { post "${2:-1}" /v3/kv/range "{\"key\":\"$(k "$1")\"}"; }                       # get NAME [MEMBER]
rev_now() { jqc "$(get nothing "${1:-1}")" '.header.revision | tonumber'; }

# ---- kv: put, range ----

a=$(put p/a va)
check_eq "put: HTTP 200" 200 "$(code_of "$a")"
# {"header":{"cluster_id":"10637794912270686462","member_id":"3739407067791825526","revision":"2","raft_term":"2"}}
check_eq "put: the answer is a header only, every field a string" \
	'{"header":["cluster_id","member_id","raft_term","revision"],"types":["string"]}' \
	"$(jqc "$a" '{header: (.header | keys), types: ([.header[] | type] | unique)} | select(keys == ["header","types"])')"
r1=$(jqc "$a" '.header.revision | tonumber')
b=$(put p/b vb)
check_eq "put: each put raises the store revision by one" $((r1 + 1)) "$(jqc "$b" '.header.revision | tonumber')"
put p/c '' >/dev/null
g=$(get p/a)
# {"header":{...,"revision":"4"},"kvs":[{"key":"L3AvYQ==","create_revision":"2",
#  "mod_revision":"2","version":"1","value":"dmE="}],"count":"1"}
check_eq "range of one key: kvs[0] {key, create_revision, mod_revision, version, value}, count \"1\"" \
	"{\"kvs\":[{\"key\":\"$(k p/a)\",\"create_revision\":\"$r1\",\"mod_revision\":\"$r1\",\"version\":\"1\",\"value\":\"$(b64 va)\"}],\"count\":\"1\"}" \
	"$(jqc "$g" '{kvs, count}')"
check_eq "range: header.revision is the store's revision (not the key's)" "\"$((r1 + 2))\"" "$(jqc "$g" '.header.revision')"
check_eq "range: a key with an empty value has no \"value\" field" '["create_revision","key","mod_revision","version"]' \
	"$(jqc "$(get p/c)" '.kvs[0] | keys')"
check_eq "range: an absent key gives a header only (no kvs, no count)" '["header"]' "$(jqc "$(get p/none)" 'keys')"
put p/a va2 >/dev/null
check_eq "range: version counts the key's puts; create_revision stays" "2 $r1 $((r1 + 3))" \
	"$(jqc "$(get p/a)" '.kvs[0] | "\(.version) \(.create_revision) \(.mod_revision)"' | tr -d '"')"

# A prefix is the range [prefix, range_end) where range_end is the prefix
# with its last byte plus one: ".../p/" -> ".../p0".
PFX="\"key\":\"$(k p/)\",\"range_end\":\"$(k p0)\""
g=$(post 1 /v3/kv/range "{$PFX}")
check_eq "range over a prefix (range_end = prefix with its last byte + 1): every key, in key order" \
	"$P/p/a $P/p/b $P/p/c 3" "$(jqc "$g" '[.kvs[].key | @base64d] + [.count] | join(" ")' | tr -d '"')"
g=$(post 1 /v3/kv/range "{$PFX,\"limit\":2}")
# {"header":{...},"kvs":[<2 kvs>],"more":true,"count":"3"}: count is the whole range's
check_eq "range with limit 2: 2 kvs, \"more\":true, count of the whole range (\"3\")" '[2,true,"3"]' \
	"$(jqc "$g" '[(.kvs | length), .more, .count]')"
check_eq "range with limit as a string (\"2\") is the same" '[2,true,"3"]' \
	"$(jqc "$(post 1 /v3/kv/range "{$PFX,\"limit\":\"2\"}")" '[(.kvs | length), .more, .count]')"
check_eq "range with a limit that covers all: no \"more\" field" '[3,null]' \
	"$(jqc "$(post 1 /v3/kv/range "{$PFX,\"limit\":3}")" '[(.kvs | length), .more]')"
check_eq "range from a later key (key = last key seen + \\0) pages on" "$P/p/c" \
	"$(jqc "$(post 1 /v3/kv/range "{\"key\":\"$(printf '%s/p/b\0' "$P" | base64 -w0)\",\"range_end\":\"$(k p0)\",\"limit\":2}")" '.kvs[].key | @base64d' | tr -d '"')"
check_eq "range with keys_only: kvs without values" '[]' \
	"$(jqc "$(post 1 /v3/kv/range "{$PFX,\"keys_only\":true}")" '[.kvs[] | select(has("value"))]')"
check_eq "range with count_only: a header and count only" '["count","header"]' \
	"$(jqc "$(post 1 /v3/kv/range "{$PFX,\"count_only\":true}")" 'keys')"
check_eq "range at an older revision (\"revision\":N) reads the value then" "va" \
	"$(jqc "$(post 1 /v3/kv/range "{\"key\":\"$(k p/a)\",\"revision\":\"$r1\"}")" '.kvs[0].value | @base64d' | tr -d '"')"
check_eq "range with serializable:true (served by the member alone) reads the same" "va2" \
	"$(jqc "$(post 2 /v3/kv/range "{\"key\":\"$(k p/a)\",\"serializable\":true}")" '.kvs[0].value | @base64d' | tr -d '"')"
g=$(post 1 /v3/kv/range "{$PFX,\"limit\":1}" -D "$WORK/headers")
check_eq "answers are HTTP 200 with Content-Type: application/json" "200 application/json" \
	"$(code_of "$g") $(tr -d '\r' <"$WORK/headers" | sed -n 's/^Content-Type: //Ip')"

g=$(post 1 /v3/kv/range '{"key":')
check_eq "bad JSON: HTTP 400 {error, message, code: 3 (a number)}" \
	'400 {"error":"unexpected EOF","message":"unexpected EOF","code":3}' "$(code_of "$g") $(jqc "$g" .)"
g=$(post 1 /v3/kv/range '{"key":"%%%"}')
check_eq "bad base64: HTTP 400 \"illegal base64 data at input byte 0\"" "400 illegal base64 data at input byte 0" \
	"$(code_of "$g") $(jqc "$g" .error | tr -d '"')"
g=$(post 1 /v3/kv/range "{\"kee\":\"$(k p/a)\"}")
check_eq "an unknown field is ignored: here no key, HTTP 400 \"etcdserver: key is not provided\"" \
	"400 etcdserver: key is not provided" "$(code_of "$g") $(jqc "$g" .error | tr -d '"')"

# deleterange: {"header":{...},"deleted":"1","prev_kvs":[...]} (prev_kvs only
# with "prev_kv":true); deleting nothing: a header only.
g=$(post 1 /v3/kv/deleterange "{\"key\":\"$(k p/c)\",\"prev_kv\":true}")
check_eq "deleterange with prev_kv: deleted \"1\" and the old kv" "\"1\" \"$P/p/c\"" \
	"$(jqc "$g" '.deleted, (.prev_kvs[0].key | @base64d)' | tr '\n' ' ' | sed 's/ $//')"
check_eq "deleterange of nothing: a header only (no \"deleted\")" '["header"]' \
	"$(jqc "$(post 1 /v3/kv/deleterange "{\"key\":\"$(k p/c)\"}")" 'keys')"

# ---- txn ----

# Compare: {"key","range_end"?,"target":"CREATE|MOD|VERSION|VALUE|LEASE",
#   "result":"EQUAL|NOT_EQUAL|LESS|GREATER", one of "create_revision",
#   "mod_revision","version","value","lease"}. An absent target value is 0, so
# {"key":K,"target":"CREATE","result":"EQUAL"} means "K does not exist".
# Answer: {"header":{...},"succeeded":true,"responses":[{"response_put":
# {"header":{"revision":"7"}}}]} when the compares held; when one failed:
# no "succeeded" at all, and "responses" from the failure branch, e.g.
# [{"response_range":{"header":{"revision":"7"},"kvs":[...],"count":"1"}}].
LK=$(k lock)
create_once="{\"compare\":[{\"key\":\"$LK\",\"target\":\"CREATE\",\"result\":\"EQUAL\",\"create_revision\":\"0\"}],
 \"success\":[{\"request_put\":{\"key\":\"$LK\",\"value\":\"$(b64 host-a)\"}}],
 \"failure\":[{\"request_range\":{\"key\":\"$LK\"}}]}"
t=$(post 1 /v3/kv/txn "$create_once")
rl=$(jqc "$t" '.header.revision')
check_eq "txn create_revision == 0 on an absent key: succeeded:true, responses [response_put]" \
	"{\"succeeded\":true,\"responses\":[{\"response_put\":{\"header\":{\"revision\":$rl}}}]}" \
	"$(jqc "$t" '{succeeded, responses}')"
t=$(post 2 /v3/kv/txn "$create_once")
check_eq "the same txn again (another member): no \"succeeded\" field, the failure branch's responses" \
	"[\"header\",\"responses\"] host-a ${rl//\"/}" \
	"$(jqc "$t" 'keys') $(jqc "$t" '.responses[0].response_range.kvs[0] | (.value | @base64d), .create_revision' | tr -d '"' | tr '\n' ' ' | sed 's/ $//')"
check_eq "a failed txn leaves the store revision as it was" "$rl" "$(jqc "$t" '.header.revision')"
t=$(post 1 /v3/kv/txn "{\"compare\":[{\"key\":\"$(k num)\",\"target\":\"CREATE\",\"result\":\"EQUAL\",\"create_revision\":0}],\"success\":[{\"request_put\":{\"key\":\"$(k num)\",\"value\":\"$(b64 1)\"}}]}")
check_eq "txn compare values may be JSON numbers too (\"create_revision\":0)" true "$(jqc "$t" .succeeded)"
EMPTY="\"key\":\"$(k e/)\",\"range_end\":\"$(k e0)\""
t=$(post 1 /v3/kv/txn "{\"compare\":[{$EMPTY,\"target\":\"VERSION\",\"result\":\"EQUAL\",\"version\":\"0\"}],\"success\":[{\"request_put\":{\"key\":\"$(k f/1)\",\"value\":\"$(b64 1)\"}}]}")
check_eq "txn compare with range_end, VERSION == 0, over an empty range: succeeded" true "$(jqc "$t" .succeeded)"
t=$(post 1 /v3/kv/txn "{\"compare\":[{$PFX,\"target\":\"VERSION\",\"result\":\"EQUAL\",\"version\":\"0\"}],\"success\":[{\"request_put\":{\"key\":\"$(k f/2)\",\"value\":\"$(b64 1)\"}}]}")
check_eq "the same over a non-empty range (p/): fails (a header only)" '["header"]' "$(jqc "$t" 'keys')"
check_eq "its success branch did not run" '["header"]' "$(jqc "$(get f/2)" 'keys')"
ma=$(jqc "$(get p/a)" '.kvs[0].mod_revision')
t=$(post 1 /v3/kv/txn "{\"compare\":[{\"key\":\"$(k p/a)\",\"target\":\"MOD\",\"result\":\"EQUAL\",\"mod_revision\":$ma},
 {\"key\":\"$(k p/a)\",\"target\":\"VALUE\",\"result\":\"EQUAL\",\"value\":\"$(b64 va2)\"}],
 \"success\":[{\"request_delete_range\":{\"key\":\"$(k p/b)\"}},{\"request_put\":{\"key\":\"$(k p/d)\",\"value\":\"$(b64 vd)\"}},
 {\"request_range\":{$PFX}}]}")
# Operations run in order and see each other: the range sees p/b deleted and p/d put.
check_eq "txn MOD == and VALUE == compares; delete, put, range in one txn, each seeing the ones before" \
	"true [\"response_delete_range\",\"response_put\",\"response_range\"] \"1\" [\"$P/p/a\",\"$P/p/d\"]" \
	"$(jqc "$t" '.succeeded, [.responses[] | keys[0]], .responses[0].response_delete_range.deleted, [.responses[2].response_range.kvs[].key | @base64d]' | tr '\n' ' ' | sed 's/ $//')"
t=$(post 1 /v3/kv/txn "{\"success\":[{\"request_put\":{\"key\":\"$LK\",\"value\":\"$(b64 1)\"}},{\"request_put\":{\"key\":\"$LK\",\"value\":\"$(b64 2)\"}}]}")
check_eq "txn putting one key twice: HTTP 400 \"etcdserver: duplicate key given in txn request\"" \
	"400 etcdserver: duplicate key given in txn request 3" "$(code_of "$t") $(jqc "$t" '.error, .code' | tr -d '"' | tr '\n' ' ' | sed 's/ $//')"

# --max-txn-ops (default 128) bounds each of compare, success and failure on
# its own; a nested request_txn is counted on its own too (each level <= 128).
ops() { # N VALUE: N puts of keys m/0.. as a JSON array
	jq -n -c --argjson n "$1" --arg p "$P/m/" --arg v "$2" '[range($n) | {request_put: {key: ($p + "\(.)" | @base64), value: ($v | @base64)}}]'
}
cmps() { jq -n -c --argjson n "$1" --arg p "$P/c/" '[range($n) | {key: ($p + "\(.)" | @base64), target: "VERSION", result: "EQUAL", version: "0"}]'; }
t=$(post 1 /v3/kv/txn "{\"success\":$(ops 128 v)}")
check_eq "txn with 128 operations (the default --max-txn-ops): succeeded" "true 128" "$(jqc "$t" '"\(.succeeded) \(.responses | length)"' | tr -d '"')"
t=$(post 1 /v3/kv/txn "{\"success\":$(ops 129 v)}")
# {"error":"etcdserver: too many operations in txn request","message":"...","code":3}
check_eq "txn with 129 operations: HTTP 400 \"etcdserver: too many operations in txn request\", code 3" \
	"400 etcdserver: too many operations in txn request 3" "$(code_of "$t") $(jqc "$t" '.error, .code' | tr -d '"' | tr '\n' ' ' | sed 's/ $//')"
check_eq "the refused txn did nothing" '"v"' "$(jqc "$(get m/0)" '.kvs[0].value | @base64d')"
t=$(post 1 /v3/kv/txn "{\"compare\":$(cmps 128),\"success\":$(ops 128 w),\"failure\":[{\"request_range\":{$PFX}}]}")
check_eq "128 compares + 128 success ops + 1 failure op: accepted (each list counts alone)" true "$(jqc "$t" .succeeded)"
t=$(post 1 /v3/kv/txn "{\"compare\":$(cmps 129)}")
check_eq "129 compares: refused the same way" "400 etcdserver: too many operations in txn request" "$(code_of "$t") $(jqc "$t" .error | tr -d '"')"
t=$(post 1 /v3/kv/txn "{\"success\":[{\"request_txn\":{\"success\":$(ops 100 x)}},{\"request_txn\":{\"success\":$(
	jq -n -c --arg p "$P/n/" '[range(100) | {request_put: {key: ($p + "\(.)" | @base64), value: ("x" | @base64)}}]')}}]}")
check_eq "a txn of two nested request_txn of 100 puts each: accepted (nesting passes the limit)" \
	'true ["response_txn","response_txn"] 100' "$(jqc "$t" '.succeeded, [.responses[] | keys[0]], (.responses[1].response_txn.responses | length)' | tr '\n' ' ' | sed 's/ $//')"
# --max-request-bytes (default 1.5 MiB = 1572864) bounds the decoded request.
head -c 1600000 /dev/zero >"$WORK/big"
jq -n -c --rawfile v "$WORK/big" --arg k "$P/big" '{key: ($k | @base64), value: ($v | @base64)}' >"$WORK/big.json"
t=$(curl -s -m 15 -w '\n%{http_code}' "${ETCD_URL[1]}/v3/kv/put" --data-binary "@$WORK/big.json")
check_eq "a put of 1.6 MB: HTTP 400 \"etcdserver: request is too large\"" "400 etcdserver: request is too large" \
	"$(tail -1 <<<"$t") $(sed '$d' <<<"$t" | jq -r .error)"
rm -f "$WORK/big" "$WORK/big.json"

# ---- leases ----

# grant {"TTL":2} -> {"header":{...},"ID":"1906889922508976924","TTL":"2"}.
# The lease's clock starts at the grant; the leader revokes expired leases
# (about every 0.5 s), deleting their keys (DELETE events in watches).
# The shapes with a 30 s lease (a loaded machine may take seconds between
# two requests), the expiry with a 2 s one.
g=$(post 1 /v3/lease/grant '{"TTL":30}')
L0=$(jqc "$g" '.ID' | tr -d '"')
check_eq "lease grant: {header, ID (a string of digits), TTL \"30\"}" '["ID","TTL","header"] "string" "30"' \
	"$(jqc "$g" 'keys, (.ID | type), .TTL' | tr '\n' ' ' | sed 's/ $//')"
check_eq "put with \"lease\":ID: the kv carries \"lease\" (a string)" "\"$L0\"" \
	"$(post 1 /v3/kv/put "{\"key\":\"$(k leased0)\",\"value\":\"$(b64 v)\",\"lease\":\"$L0\"}" >/dev/null
	jqc "$(get leased0)" '.kvs[0].lease')"
g=$(post 1 /v3/lease/timetolive "{\"ID\":\"$L0\",\"keys\":true}")
# {"header":{...},"ID":"...","TTL":"29","grantedTTL":"30","keys":["<base64 key>"]}
check_eq "lease timetolive with keys:true: {ID, TTL, grantedTTL, keys (base64)}" "[\"$(k leased0)\"] \"30\"" \
	"$(jqc "$g" '.keys, .grantedTTL' | tr '\n' ' ' | sed 's/ $//')$(grep -q '"keys"' <<<"$g" || echo " (answer: $g)")"
post 1 /v3/lease/revoke "{\"ID\":\"$L0\"}" >/dev/null
check_eq "grant with \"ttl\" in lower case: the field is ignored, the lease gets the minimum TTL (1 s here)" '"1"' \
	"$(jqc "$(post 1 /v3/lease/grant '{"ttl":"5"}')" '.TTL')"
L1=$(jqc "$(post 1 /v3/lease/grant '{"TTL":2}')" .ID | tr -d '"')
t0=$(now_ms)
post 1 /v3/kv/put "{\"key\":\"$(k leased)\",\"value\":\"$(b64 v)\",\"lease\":\"$L1\"}" >/dev/null
gone=''
while [ $(($(now_ms) - t0)) -lt 8000 ]; do
	if [ "$(jqc "$(get leased)" 'keys')" = '["header"]' ]; then
		gone=$(($(now_ms) - t0))
		break
	fi
	sleep 0.1
done
echo "# a key with a 2 s lease and no keepalive was gone after ${gone:-more than 8000} ms"
check "a key with a 2 s lease and no keepalive is gone between 1.5 and 8 s (4.5 s on an idle machine)" \
	test "${gone:-9999}" -ge 1500 -a "${gone:-9999}" -le 8000
g=$(post 1 /v3/lease/keepalive "{\"ID\":\"$L1\"}")
# {"result":{"header":{...},"ID":"..."}} -- HTTP 200 and no TTL: the lease is gone
check_eq "keepalive of an expired lease: HTTP 200, {\"result\":{header, ID}} without TTL" \
	'200 ["header","ID"]' "$(code_of "$g") $(jqc "$g" '.result | keys_unsorted')"
check_eq "timetolive of an expired lease: TTL \"-1\"" '"-1"' "$(jqc "$(post 1 /v3/lease/timetolive "{\"ID\":\"$L1\"}")" .TTL)"
g=$(post 1 /v3/lease/revoke "{\"ID\":\"$L1\"}")
check_eq "revoke of an expired lease: HTTP 404 \"etcdserver: requested lease not found\", code 5" \
	"404 etcdserver: requested lease not found 5" "$(code_of "$g") $(jqc "$g" '.error, .code' | tr -d '"' | tr '\n' ' ' | sed 's/ $//')"
g=$(post 1 /v3/kv/put "{\"key\":\"$(k leased)\",\"value\":\"$(b64 v)\",\"lease\":\"$L1\"}")
check_eq "put with an unknown lease: HTTP 404 \"etcdserver: requested lease not found\"" \
	"404 etcdserver: requested lease not found" "$(code_of "$g") $(jqc "$g" .error | tr -d '"')"
check_eq "grant with a chosen ID: that ID" '"424242"' "$(jqc "$(post 1 /v3/lease/grant '{"TTL":30,"ID":424242}')" .ID)"
g=$(post 1 /v3/lease/grant '{"TTL":30,"ID":424242}')
check_eq "grant of an ID in use: HTTP 412 \"etcdserver: lease already exists\", code 9" \
	"412 etcdserver: lease already exists 9" "$(code_of "$g") $(jqc "$g" '.error, .code' | tr -d '"' | tr '\n' ' ' | sed 's/ $//')"

# keepalive: one POST per renewal (the gateway's stream ends with the body).
# (TTL 3 s: room for a loaded machine's slow requests between renewals.)
L2=$(jqc "$(post 1 /v3/lease/grant '{"TTL":3}')" .ID | tr -d '"')
post 1 /v3/kv/put "{\"key\":\"$(k kept)\",\"value\":\"$(b64 v)\",\"lease\":\"$L2\"}" >/dev/null
ka='' i=0 t0=$(now_ms)
while [ $(($(now_ms) - t0)) -lt 6000 ]; do
	sleep 0.5
	i=$((i + 1))
	ka=$(post $((i % 3 + 1)) /v3/lease/keepalive "{\"ID\":\"$L2\"}")
done
# {"result":{"header":{...},"ID":"...","TTL":"3"}}
check_eq "keepalive (any member): HTTP 200 {\"result\":{header, ID, TTL: the granted TTL}}" \
	"200 [\"header\",\"ID\",\"TTL\"] \"$L2\" \"3\"" "$(code_of "$ka") $(jqc "$ka" '.result | keys_unsorted, .ID, .TTL' | tr '\n' ' ' | sed 's/ $//')"
check_eq "a key whose 3 s lease is kept alive every 0.5 s is still there after 6 s" '"1"' "$(jqc "$(get kept)" .count)"
g=$(post 1 /v3/lease/revoke "{\"ID\":\"$L2\"}")
check_eq "revoke: HTTP 200, a header only" '200 ["header"]' "$(code_of "$g") $(jqc "$g" 'keys')"
check_eq "revoke deletes the lease's keys at once" '["header"]' "$(jqc "$(get kept)" 'keys')"

# ---- watch ----

# POST /v3/watch with {"create_request":{"key","range_end","start_revision",
# "prev_kv":true}} (curl -N): the answer streams one JSON object per line,
# each {"result":{...}}: first {"header":{...},"created":true}, then per
# revision {"header":{...,"revision":R},"events":[...]}: one message per
# revision, so a txn's events come together. An event is
# {"kv":{...},"prev_kv":{...}} for a PUT (no "type") and
# {"type":"DELETE","kv":{"key":K,"mod_revision":R},"prev_kv":{...}} for a
# delete (expired leases included). Several create_request lines in one body
# open several watches on one stream ("watch_id":"1", ...; watch 0 has no
# watch_id). The stream stays open after the request body ends.
R0=$(rev_now)
curl -s -N -m 20 "${ETCD_URL[2]}/v3/watch" --data-binary \
	"{\"create_request\":{\"key\":\"$(k w/)\",\"range_end\":\"$(k w0)\",\"start_revision\":\"$((R0 + 1))\",\"prev_kv\":true}}
{\"create_request\":{\"key\":\"$(k w2/)\",\"range_end\":\"$(k w20)\"}}" >"$WORK/watch.out" &
WPID=$!
sleep 0.5
put w/1 one >/dev/null
put w/1 two >/dev/null
put elsewhere x >/dev/null
post 1 /v3/kv/txn "{\"success\":[{\"request_put\":{\"key\":\"$(k w/2)\",\"value\":\"$(b64 x)\"}},{\"request_delete_range\":{\"key\":\"$(k w/1)\"}}]}" >/dev/null
put w2/1 y >/dev/null
sleep 0.5
kill "$WPID" 2>/dev/null
wait "$WPID" 2>/dev/null
check_eq "watch: every line is one JSON object {\"result\":{...}}" "ok" \
	"$(jq -e -s 'length > 0 and all(keys == ["result"])' "$WORK/watch.out" >/dev/null 2>&1 && echo ok || cat "$WORK/watch.out")"
check_eq "watch: the first answers are {header, created:true} (watch 0 without watch_id, then watch_id \"1\")" \
	'[["created","header"],["created","header","watch_id"]]' \
	"$(jq -c -s '[.[] | .result | select(.created) | keys]' "$WORK/watch.out")"
check_eq "watch: events by revision; PUT has no type, DELETE has \"type\":\"DELETE\"; a txn's events in one message" \
	"$((R0 + 1)):PUT:w/1:one $((R0 + 2)):PUT:w/1:two $((R0 + 4)):PUT:w/2:x,DELETE:w/1:" \
	"$(jq -r -s --arg p "$P/" '[.[] | .result | select(.events and (.watch_id // "0") == "0") |
		"\(.header.revision):" + ([.events[] | "\(.type // "PUT"):\(.kv.key | @base64d | ltrimstr($p)):\(.kv.value // "" | @base64d)"] | join(","))] | join(" ")' "$WORK/watch.out")"
check_eq "watch: a DELETE event's kv is {key, mod_revision}; prev_kv the value before" \
	'[["key","mod_revision"],"two"]' \
	"$(jq -c -s '[.[] | .result.events[]? | select(.type == "DELETE")][0] | [(.kv | keys), (.prev_kv.value | @base64d)]' "$WORK/watch.out")"
check_eq "watch: the second create_request of the body is watch \"1\" and gets its events" "1:$P/w2/1" \
	"$(jq -r -s '.[] | .result | select(.events and .watch_id == "1") | "\(.watch_id):\(.events[0].kv.key | @base64d)"' "$WORK/watch.out")"

# Compaction: POST /v3/kv/compaction {"revision":"R"} -> a header only.
# Reading or watching from before it: HTTP 400 / a canceled watch.
RC=$(rev_now)
g=$(post 1 /v3/kv/compaction "{\"revision\":\"$RC\",\"physical\":true}")
check_eq "compaction: HTTP 200, a header only" '200 ["header"]' "$(code_of "$g") $(jqc "$g" 'keys')"
g=$(post 1 /v3/kv/range "{\"key\":\"$(k p/a)\",\"revision\":\"$R0\"}")
check_eq "range at a compacted revision: HTTP 400 \"etcdserver: mvcc: required revision has been compacted\", code 11" \
	"400 etcdserver: mvcc: required revision has been compacted 11" "$(code_of "$g") $(jqc "$g" '.error, .code' | tr -d '"' | tr '\n' ' ' | sed 's/ $//')"
g=$(post 1 /v3/kv/range "{\"key\":\"$(k p/a)\",\"revision\":\"$((RC + 1000))\"}")
check_eq "range at a future revision: HTTP 400 \"etcdserver: mvcc: required revision is a future revision\"" \
	"400 etcdserver: mvcc: required revision is a future revision" "$(code_of "$g") $(jqc "$g" .error | tr -d '"')"
# {"result":{"header":{...,"revision":"N"},"created":true}}
# {"result":{"header":{"cluster_id":..,"member_id":..,"raft_term":..},"canceled":true,"compact_revision":"<RC>"}}
# (no revision in that header) -- and the HTTP stream is NOT closed.
t0=$(now_ms)
curl -s -N -m 2 "${ETCD_URL[1]}/v3/watch" \
	-d "{\"create_request\":{\"key\":\"$(k w/)\",\"range_end\":\"$(k w0)\",\"start_revision\":\"$R0\"}}" >"$WORK/watch.out"
rc=$?
check_eq "watch from a compacted revision: created, then {canceled:true, compact_revision: the compaction's revision}" \
	"[{\"created\":true}] [{\"canceled\":true,\"compact_revision\":\"$RC\"}]" \
	"$(jq -c -s '[.[].result | select(.created) | {created}]' "$WORK/watch.out") $(jq -c -s '[.[].result | select(.canceled) | {canceled, compact_revision}]' "$WORK/watch.out")"
check_eq "the canceled watch's HTTP stream stays open (curl -m 2 ends by timeout, exit 28)" 28 "$rc"

# ---- a member lost, then quorum lost ----

leader=''
for n in 1 2 3; do
	st=$(post "$n" /v3/maintenance/status '{}')
	[ "$(jqc "$st" '.leader == .header.member_id')" = true ] && leader=$n
done
# /v3/maintenance/status: {"header":{...},"version":"3.4.23","dbSize":"...",
# "leader":"<member id>","raftIndex":..,"raftTerm":..,"raftAppliedIndex":..,"dbSizeInUse":..}
check "maintenance/status names the leader (\"leader\" == its header.member_id on one member)" test -n "$leader"
leader=${leader:-1}
other=$((leader % 3 + 1)) third=$(((leader + 1) % 3 + 1))
etcd_member_stop "$leader"
# A write that a follower forwards to a leader that just died waits the
# server's request timeout (about 6 s with these timings) and fails:
# HTTP 503 {"error":"etcdserver: request timed out","code":14} (or "...,
# possibly due to previous leader failure"), or succeeds if it came after
# the new election. Writes after the election (< 1 s) work.
g=$(put after-leader-kill 1 "$other")
echo "# first write after the leader (member $leader) was killed: HTTP $(code_of "$g") after $(ms_of "$g") ms: $(body_of "$g" | jq -c 'if .error then .error else "ok" end')"
t0=$(now_ms) ok=0
while [ $(($(now_ms) - t0)) -lt 10000 ]; do
	[ "$(code_of "$(put after-leader-kill 2 "$other")")" = 200 ] && ok=1 && break
	sleep 0.2
done
check_eq "the leader killed: writes to the two others work again within 10 s" 1 "$ok"
fails=0
for i in 1 2 3 4 5; do
	[ "$(code_of "$(put "one-down-$i" v $((i % 2 ? other : third)))")" = 200 ] || fails=$((fails + 1))
done
check_eq "one member of three down: five writes, each to a live member, all succeed" 0 "$fails"
check "the dead member's port refuses connections (curl exit 7)" \
	test "$(curl -s -m 2 -o /dev/null "${ETCD_URL[$leader]}/v3/kv/range" -d '{}'; echo $?)" = 7

# Quorum lost: the last member keeps answering, but nothing that needs the
# raft log does. After etcd's request timeout (~6 s here; 5 s + 2 election
# timeouts in general) writes fail with HTTP 503 {"error":"etcdserver:
# request timed out","code":14} for the first and HTTP 500 {"error":"context
# deadline exceeded","code":2} for later ones; quorum reads the same; a
# client timeout shorter than that just gets no answer (curl exit 28).
# A write that timed out is NOT known to have failed: it may sit in the
# leader's log and be applied when quorum returns (seen with etcd 3.4.23).
etcd_member_stop "$third"
g=$(put noquorum-a 1 "$other" -m 2)
check_eq "quorum lost: a write with a 2 s client timeout gets no answer (HTTP 000, curl exit 28)" "000 28" \
	"$(code_of "$g") $(curl_rc_of "$g")"
post "$other" /v3/kv/put "{\"key\":\"$(k noquorum-b)\",\"value\":\"$(b64 1)\"}" >"$WORK/nq.put" &
p1=$!
post "$other" /v3/kv/range "{\"key\":\"$(k p/a)\"}" >"$WORK/nq.range" &
p2=$!
post "$other" /v3/lease/grant '{"TTL":5}' >"$WORK/nq.grant" &
p3=$!
post "$other" /v3/lease/keepalive '{"ID":"424242"}' >"$WORK/nq.keepalive" &
p4=$!
g=$(post "$other" /v3/kv/range "{\"key\":\"$(k p/a)\",\"serializable\":true}")
check_eq "quorum lost: a serializable range is still served at once (< 1 s)" "200 \"va2\" fast" \
	"$(code_of "$g") $(jqc "$g" '.kvs[0].value | @base64d') $([ "$(ms_of "$g")" -lt 1000 ] && echo fast || echo "$(ms_of "$g") ms")"
g=$(post "$other" /v3/maintenance/status '{}')
check_eq "quorum lost: maintenance/status answers 200 with errors [\"etcdserver: no leader\"] and no leader field" \
	'200 ["etcdserver: no leader"] null' "$(code_of "$g") $(jqc "$g" '.errors, .leader' | tr '\n' ' ' | sed 's/ $//')"
g=$(curl -s -m 5 -w '\n%{http_code}' "${ETCD_URL[$other]}/health")
check_eq "quorum lost: GET /health answers 503 {\"health\":\"false\"}" '503 {"health":"false"}' \
	"$(tail -1 <<<"$g") $(sed '$d' <<<"$g" | jq -c .)"
wait $p1 $p2 $p3 $p4
g=$(cat "$WORK/nq.put")
echo "# quorum lost: put answered HTTP $(code_of "$g") after $(ms_of "$g") ms: $(jqc "$g" .)"
check "quorum lost: a write fails with HTTP 503 or 500 after 4-10 s" \
	test "$(code_of "$g")" -ge 500 -a "$(ms_of "$g")" -ge 4000 -a "$(ms_of "$g")" -le 10000
check_eq "its error text is \"etcdserver: request timed out\" (code 14) or \"context deadline exceeded\" (code 2)" ok \
	"$(jqc "$g" '"\(.error) \(.code)"' | tr -d '"' | grep -qx 'etcdserver: request timed out 14\|context deadline exceeded 2' && echo ok || jqc "$g" .)"
g=$(cat "$WORK/nq.range")
echo "# quorum lost: linearizable range answered HTTP $(code_of "$g") after $(ms_of "$g") ms: $(jqc "$g" .)"
check "quorum lost: a (linearizable) range fails the same way" \
	test "$(code_of "$g")" -ge 500 -a "$(ms_of "$g")" -ge 4000
g=$(cat "$WORK/nq.grant")
echo "# quorum lost: lease grant answered HTTP $(code_of "$g") after $(ms_of "$g") ms: $(jqc "$g" .)"
check "quorum lost: a lease grant fails (HTTP 5xx)" test "$(code_of "$g")" -ge 500
g=$(cat "$WORK/nq.keepalive")
echo "# quorum lost: keepalive answered HTTP $(code_of "$g") after $(ms_of "$g") ms: $(jqc "$g" .)"
check_eq "quorum lost: a keepalive fails with HTTP 503 and the streaming error shape" \
	'503 {"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}' \
	"$(code_of "$g") $(jqc "$g" .)"

etcd_member_start "$third" || exit 1
t0=$(now_ms) ok=0
while [ $(($(now_ms) - t0)) -lt 10000 ]; do
	[ "$(code_of "$(put quorum-back 1 "$other" -m 2)")" = 200 ] && ok=1 && break
	sleep 0.2
done
echo "# quorum back: writes work again $(($(now_ms) - t0)) ms after the second member restarted"
check_eq "quorum back (2 of 3): writes work again within 10 s" 1 "$ok"
echo "# the timed-out writes after quorum came back: noquorum-a $(jqc "$(get noquorum-a "$other")" '.count // "absent"'), noquorum-b $(jqc "$(get noquorum-b "$other")" '.count // "absent"')"
etcd_member_start "$leader" || exit 1
check_eq "the restarted members serve the writes made while they were down" '"1" "1"' \
	"$(jqc "$(get one-down-1 "$leader")" .count) $(jqc "$(get quorum-back "$third")" .count)"

# ---- loopback latency (for the record) ----

lat() { # PATH BODY: median and 90th percentile of 100 POSTs over one connection
	local i args=()
	for i in $(seq 1 100); do args+=(-o /dev/null -w '%{time_total}\n' "${ETCD_URL[1]}$1" --data-binary "$2" --next); done
	curl -s "${args[@]}" "${ETCD_URL[1]}/version" -o /dev/null | sort -n |
		awk '{t[NR] = $1 * 1000} END {printf "median %.1f ms, p90 %.1f ms", t[50], t[90]}'
}
echo "# loopback txn (compare + put): $(lat /v3/kv/txn "{\"compare\":[{\"key\":\"$(k lat)\",\"target\":\"MOD\",\"result\":\"GREATER\",\"mod_revision\":\"-1\"}],\"success\":[{\"request_put\":{\"key\":\"$(k lat)\",\"value\":\"$(b64 v)\"}}]}")"
echo "# loopback range (linearizable): $(lat /v3/kv/range "{\"key\":\"$(k lat)\"}")"
echo "# loopback range (serializable): $(lat /v3/kv/range "{\"key\":\"$(k lat)\",\"serializable\":true}")"
finish
