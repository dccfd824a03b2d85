"""Fake plutil: `-lint <file>` (plistlib), `-extract <keypath> raw|json -o - <file>` and `-remove <keypath>
[-o <out>] <file>` over JSON or plists, with JSON output escaping '/' as '\\/' the way macOS's
NSJSONSerialization does. Like the real one, it refuses JSON that holds a null anywhere (a plist has no null
type), so the scripts must not rely on it; an edit writes the file in the format it read (JSON stays JSON),
to `-o`'s path when given, else in place; a key path that does not exist is an error."""

import json
import os
import sys

# plistlib (with its XML parser) is imported only where a plist is read or written: most calls extract from JSON,
# and a stub runs once per call of the real tool, dozens of times per step

state = os.environ["STUB_STATE"]
args = sys.argv[1:]
with open(os.path.join(state, "calls.log"), "a") as log:
    log.write("plutil " + " ".join(args) + "\n")
sub = args[0].lstrip("-") if args else ""
for key in ("plutil", f"plutil-{sub}"):
    if os.path.exists(os.path.join(state, "fail", key)):
        print(f"stub plutil: injected failure of plutil {' '.join(args)}", file=sys.stderr)
        sys.exit(1)


def has_null(value):
    if value is None:
        return True
    if isinstance(value, dict):
        return any(has_null(item) for item in value.values())
    if isinstance(value, list):
        return any(has_null(item) for item in value)
    return False


def load(path):
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        value = json.loads(data)
    except ValueError:
        import plistlib

        return plistlib.loads(data)
    if has_null(value):
        print(f"{path}: Property List error: JSON null has no plist type / JSON error: Invalid object",
              file=sys.stderr)
        sys.exit(1)
    return value


if sub == "lint":
    path = args[1]
    import plistlib

    try:
        with open(path, "rb") as handle:
            plistlib.load(handle)
    except Exception as err:
        print(f"{path}: {err}")
        sys.exit(1)
    print(f"{path}: OK")
elif sub == "extract":
    keypath, fmt, path = args[1], args[2], args[-1]
    value = load(path)
    for part in keypath.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            print(f"Could not extract value, error: No value at that key path or invalid key path: {keypath}",
                  file=sys.stderr)
            sys.exit(1)
    if fmt == "raw":
        if isinstance(value, (dict, list)):
            print("Could not extract value, error: raw format requires a scalar", file=sys.stderr)
            sys.exit(1)
        sys.stdout.write(("true" if value else "false") if isinstance(value, bool) else str(value))
    else:
        sys.stdout.write(json.dumps(value, separators=(",", ":")).replace("/", "\\/"))
elif sub == "remove":
    keypath, path = args[1], args[-1]
    out = args[args.index("-o") + 1] if "-o" in args[2:-1] else path
    with open(path, "rb") as handle:
        is_json = handle.read().lstrip()[:1] in (b"{", b"[")
    document = load(path)
    *parents, last = keypath.split(".")
    parent = document
    for part in parents:
        if isinstance(parent, list) and part.isdigit() and int(part) < len(parent):
            parent = parent[int(part)]
        elif isinstance(parent, dict):
            parent = parent.get(part)
        else:
            parent = None
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    elif isinstance(parent, dict) and last in parent:
        del parent[last]
    else:
        print(f"Could not modify plist, error: No value to remove at key path {keypath}", file=sys.stderr)
        sys.exit(1)
    if out == "-":
        print("stub plutil: -o - is for -extract and -convert", file=sys.stderr)
        sys.exit(64)
    with open(out, "wb") as handle:
        if is_json:
            handle.write(json.dumps(document, separators=(",", ":")).replace("/", "\\/").encode())
        else:
            import plistlib

            plistlib.dump(document, handle)
else:
    print(f"stub plutil: unsupported {' '.join(args)}", file=sys.stderr)
    sys.exit(64)
