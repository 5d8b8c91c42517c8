#!/usr/bin/python3
"""Validate info.json files against Tempest's response schemas.

Usage: api_schema.py --list
       api_schema.py volume|snapshot FILE...

Each FILE is checked against the response body of every show schema
Tempest has for the kind (volumes.show_volume and the v3_* microversion
variants of it; snapshots.show_snapshot and its variants), as Tempest's
rest_client validate_response does: jsonschema with Tempest's validator
class and format checker. Prints one line per FILE and schema ("ok ..." or
"FAIL ...: reason") and exits 1 when any fails, 77 when Tempest is missing.
"""
import importlib
import json
import pkgutil
import sys

try:
    import jsonschema
    import tempest.lib.api_schema.response.volume as volume_schemas
    from tempest.lib.common import jsonschema_validator
except ImportError as e:
    print("tempest or jsonschema missing: %s" % e)
    sys.exit(77)

KINDS = {"volume": ("volumes", "show_volume"),
         "snapshot": ("snapshots", "show_snapshot")}


def schemas(kind):
    """(name, response body schema) of every show schema of kind."""
    module, attr = KINDS[kind]
    found = []
    packages = [("", volume_schemas.__name__)]
    for info in pkgutil.iter_modules(volume_schemas.__path__):
        if info.ispkg and info.name.startswith("v"):
            packages.append((info.name + ".",
                             volume_schemas.__name__ + "." + info.name))
    for prefix, package in sorted(packages):
        try:
            mod = importlib.import_module(package + "." + module)
        except ImportError:
            continue
        schema = getattr(mod, attr, None)
        if schema is not None:
            found.append(("%s%s.%s" % (prefix, module, attr),
                          schema["response_body"]))
    return found


def main(argv):
    if len(argv) == 2 and argv[1] == "--list":
        for kind in KINDS:
            for name, _ in schemas(kind):
                print(name)
        return 0
    if len(argv) < 3 or argv[1] not in KINDS:
        print(__doc__, file=sys.stderr)
        return 2
    failed = 0
    found = schemas(argv[1])
    if not found:
        print("FAIL no %s schema in tempest" % argv[1])
        return 1
    for path in argv[2:]:
        try:
            with open(path) as f:
                body = json.load(f)
        except (OSError, ValueError) as e:
            print("FAIL %s: %s" % (path, e))
            failed += 1
            continue
        for name, schema in found:
            try:
                jsonschema.validate(
                    body, schema,
                    cls=jsonschema_validator.JSONSCHEMA_VALIDATOR,
                    format_checker=jsonschema_validator.FORMAT_CHECKER)
                print("ok %s %s" % (path, name))
            except jsonschema.ValidationError as e:
                print("FAIL %s %s: %s" % (path, name, e.message))
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
