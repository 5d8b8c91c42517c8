/* reader.h - open snapshots: the resolved chain behind each disk.raw.
 *
 * A snapshot's content never changes, so its chain (chain.h) is resolved
 * once and shared by every open of its disk.raw; a few unused ones stay
 * cached. The registry also lets a delete refuse (-EBUSY) while a backup
 * still reads the snapshot, and keeps new readers out once a delete began.
 * Thread-safe (one mutex; chain reads themselves take no lock).
 *
 * Why a cached chain of a snapshot stays right while an older snapshot is
 * merged: commit writes into the file under the deleted overlay only
 * clusters that the overlay itself covers, and every newer snapshot reads
 * those clusters from that overlay (kept open). This holds as long as no
 * qcow2 cluster still mapped by a chain is freed by the commit: true for
 * the overlays snapfs writes (64 KiB clusters, no compression) over bases
 * made by qemu-img create; files adopted from elsewhere must keep it.
 */
#ifndef SNAPFS_READER_H
#define SNAPFS_READER_H

#include <stdint.h>

#include "catalog.h"
#include "chain.h"
#include "snapfs.h"

struct reader;
struct reader_registry;

int reader_registry_new(struct reader_registry **out);
void reader_registry_free(struct reader_registry *reg);

/* Open snapshot ino for reading. Returns 0 and *out, -ENOENT, -EBUSY (the
 * snapshot is being created or deleted), -EIO (its chain does not
 * resolve: a corrupt or hostile image, logged). */
int reader_open(struct snapfs *fs, uint64_t ino, struct reader **out);

/* The chain to read from; valid until reader_release(). */
struct chain *reader_chain(struct reader *r);

void reader_release(struct snapfs *fs, struct reader *r);

/* Bytes of snapshot snap's data that come from files (what SEEK_DATA
 * finds; its disk.raw's st_blocks), read from the open chain, or from
 * what an earlier call computed, or else computed now by resolving the
 * chain (files named by the records in txn, the caller's read
 * transaction) and kept for the next call. 0 and *bytes, else -ENOENT
 * (being created or deleted, or its chain does not resolve: the caller
 * then reports the file as fully allocated, never sparse by mistake) or
 * -ENOMEM. Thread-safe. */
int reader_allocated(struct snapfs *fs, struct catalog_txn *txn, const struct object *snap,
		     uint64_t *bytes);

/* Call fn(ino, opens, arg) for each snapshot open for reading on this
 * host (opens: its open files), under the registry's lock: fn must be
 * quick and must not call into the registry. Stops early with fn's
 * non-zero value. Thread-safe. */
int reader_foreach(struct snapfs *fs, int (*fn)(uint64_t ino, unsigned opens, void *arg),
		   void *arg);

/* Close every cached chain that no reader uses (after a delete merged
 * files: a cached chain would keep the unlinked overlay open), and forget
 * every allocation reader_allocated() kept. */
void reader_drop_unused(struct snapfs *fs);

/* Run fn(arg) with no reader of snapshot ino open and none able to open
 * until fn returns; drops the cached chain. Waits up to 2 s for readers
 * that are closing (the kernel sends release after close(2) returned).
 * Returns -EBUSY when it stays open, else fn's value. */
int reader_exclude(struct snapfs *fs, uint64_t ino, int (*fn)(void *arg), void *arg);
/* reader_exclude() of several snapshots at once: fn runs with none of
 * inos[0..n-1] open (a group snapshot's members). */
int reader_exclude_many(struct snapfs *fs, const uint64_t *inos, size_t n, int (*fn)(void *arg),
			void *arg);

/* ---- changes between two snapshots of a volume (changes/<older>) ----
 *
 * An open changes file holds both snapshots exactly as disk.raw holds one
 * (reader_open(): a delete of either answers -EBUSY, on every host), reads
 * through the newer one's chain and shows as data only the ranges that
 * the newer one's files above the older one's top file allocate
 * (chain_ranges_above()). Opens of the same pair share one entry. */
struct reader_changes;

/* Open the changes from snapshot older to snapshot newer (inodes, slot
 * bits clear). depth is the number of layers of newer's chain above
 * older's top file, as the catalogue says (snapshot_changes_depth());
 * the cut is made at older's top file in newer's resolved chain. Returns
 * 0 and *out, or reader_open()'s errors, -EIO when newer's chain does not
 * hold older's top file (logged). */
int reader_changes_open(struct snapfs *fs, uint64_t newer, uint64_t older,
			struct reader_changes **out);

/* newer's chain; the ranges that differ (sorted, disjoint) and their
 * total. Valid until reader_changes_release(). */
struct chain *reader_changes_chain(struct reader_changes *rc);
const struct chain_range *reader_changes_ranges(struct reader_changes *rc, size_t *n,
						uint64_t *bytes);

/* The pair's text form, built once by the caller and kept with the entry
 * while an open holds it. reader_changes_text_set() takes text, malloc'd:
 * it is freed if the entry already has one, or when the memory bound on
 * maps (chain_memory_take()) has no room for it: then -ENOMEM (logged),
 * else 0. reader_changes_text() returns NULL before. */
const char *reader_changes_text(struct reader_changes *rc, size_t *len);
int reader_changes_text_set(struct reader_changes *rc, char *text, size_t len);

void reader_changes_release(struct snapfs *fs, struct reader_changes *rc);

/* While the pair (newer, older) is open: 0 and its changed bytes and the
 * length of its text (0 when not built); else -ENOENT. */
int reader_changes_allocated(struct snapfs *fs, uint64_t newer, uint64_t older, uint64_t *bytes,
			     size_t *text_len);

#endif
