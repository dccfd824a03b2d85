"""Fake plutil: `-lint <file>` (plistlib), `-extract <keypath> raw|json -o - <file>` and `-remove <keypath>
[-o <out>] <file>` over JSON or plists, with JSON output escaping '/' as '\\/' the way macOS's
NSJSONSerialization does. Like the real one, it refuses JSON that holds a null anywhere (a plist has no null
type), so the scripts must not rely on it; an edit writes the file in the format it read (JSON stays JSON),
to `-o`'s path when given, else in place; a key path that does not exist is an error."""

import os
import sys

# plistlib (with its XML parser) is imported only where a plist is read or written, and json (which imports re,
# 8 ms of the stub's 19 ms start on this machine) only where JSON is written: most calls extract from JSON, and
# a stub runs once per call of the real tool, dozens of times per step. JSON is read by parse_json below.


def has_null(value):
    if value is None:
        return True
    if isinstance(value, dict):
        return any(has_null(item) for item in value.values())
    if isinstance(value, list):
        return any(has_null(item) for item in value)
    return False


class _Decoding:
    """What json.JSONDecoder() hands to json's C scanner: its defaults, strict (no control characters in a
    string), numbers as int and float, NaN and +/-Infinity as json.loads reads them."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


def parse_json(data):
    """json.loads(data), by the C scanner json.loads itself runs (_json.make_scanner) on UTF-8 text with JSON's
    whitespace around one value; anything else (another encoding, a BOM, trailing data, an error) goes to
    json.loads itself, so what is accepted and what raises ValueError are json.loads's own."""
    try:
        import _json

        text = data.decode("utf-8")
        start = len(text) - len(text.lstrip(" \t\n\r"))
        value, end = _json.make_scanner(_Decoding())(text, start)
        if not text[end:].strip(" \t\n\r"):
            return value
    except (ImportError, UnicodeDecodeError, StopIteration, ValueError):
        pass
    import json

    return json.loads(data)


def load(path):
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        value = parse_json(data)
    except ValueError:
        import plistlib

        return plistlib.loads(data)
    if has_null(value):
        print(f"{path}: Property List error: JSON null has no plist type / JSON error: Invalid object",
              file=sys.stderr)
        sys.exit(1)
    return value


def main():
    state = os.environ["STUB_STATE"]
    args = sys.argv[1:]
    with open(os.path.join(state, "calls.log"), "a") as log:
        log.write("plutil " + " ".join(args) + "\n")
    sub = args[0].lstrip("-") if args else ""
    for key in ("plutil", f"plutil-{sub}"):
        if os.path.exists(os.path.join(state, "fail", key)):
            print(f"stub plutil: injected failure of plutil {' '.join(args)}", file=sys.stderr)
            sys.exit(1)

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
            import json

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
                import json

                handle.write(json.dumps(document, separators=(",", ":")).replace("/", "\\/").encode())
            else:
                import plistlib

                plistlib.dump(document, handle)
    else:
        print(f"stub plutil: unsupported {' '.join(args)}", file=sys.stderr)
        sys.exit(64)


if __name__ == "__main__":
    main()
