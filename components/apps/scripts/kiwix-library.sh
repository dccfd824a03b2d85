#!/bin/sh
# kiwix-library.sh: keep kiwix-serve's library file equal to the complete ZIM files of one directory.
#
# The Kiwix pod's sidecar (POSIX sh: it runs in the kiwix-serve image, alpine's busybox, which ships
# kiwix-manage). kiwix-serve runs with `--library --monitorLibrary $LIBRARY` and reloads the file when its
# modification time (whole seconds) grows, so a new ZIM is served and a removed one disappears without a
# restart, a kubectl CronJob or any RBAC.
#
# Usage: kiwix-library.sh [loop|once]    (loop: a pass every INTERVAL seconds until SIGTERM; once: one pass)
#
# Environment:
#   LIBRARY       the library file kiwix-serve reads (default /library/library.xml; its directory must be
#                 writable: the new file is built beside it and moved over it)
#   ZIM_DIR       the directory of finished downloads (default /data/complete; read-only is enough)
#   INTERVAL      seconds between passes in loop mode (default 60)
#   SETTLE        seconds between the two looks at a new file's size (default 15: longer than the NFS
#                 client's shortest attribute cache, acregmin 3 s)
#   KIWIX_MANAGE  the kiwix-manage binary (default kiwix-manage)
#
# One pass:
#   - the candidates are the regular files `*.zim` directly in ZIM_DIR (never `*.part`, never hidden files);
#   - a candidate not in the library yet is added only when its size and mtime are the same at two looks
#     SETTLE seconds apart (Transmission moves a finished file into complete/ whole, but a copy by hand may
#     still be growing); one kiwix-manage cannot read is reported and skipped, once per size and mtime of it
#     (loop mode), and never stops the loop; one with the id of a ZIM already listed is skipped likewise;
#   - a book whose file is no longer a candidate is removed (`kiwix-manage LIBRARY remove ID`);
#   - the changes are made on a copy in LIBRARY's directory, which replaces LIBRARY by `mv` only when it
#     differs, with an mtime in a later second than the file it replaces, so kiwix-serve never reads a
#     half-written file and never misses a change; an unchanged directory changes nothing, not even the
#     file's mtime. A missing or unreadable LIBRARY is rebuilt from an empty library (an empty library is
#     valid: kiwix-serve starts on it and serves nothing).
#   - ZIM_DIR missing or unreadable leaves the library as it is (an NFS hiccup never empties it).
# Exit status (once): 0 when the library lists what the directory holds, skipped files reported; 1 when the
# pass could not run (ZIM_DIR or LIBRARY's directory unusable); 2 on a usage error.
set -u

LIBRARY=${LIBRARY:-/library/library.xml}
ZIM_DIR=${ZIM_DIR:-/data/complete}
INTERVAL=${INTERVAL:-60}
SETTLE=${SETTLE:-15}
KIWIX_MANAGE=${KIWIX_MANAGE:-kiwix-manage}

EMPTY_LIBRARY='<library version="20110515" />'
NL='
'
TAB=$(printf '\t')
SKIPPED=""  # lines "path<TAB>size mtime" of files skipped already: reported once per version of the file
tmp=""      # the library being built, and a scratch copy of it: removed when the script stops
scratch=""

say() { printf 'kiwix-library: %s\n' "$*"; }
warn() { printf 'kiwix-library: %s\n' "$*" >&2; }

usage() {
    warn "usage: kiwix-library.sh [loop|once] (env LIBRARY, ZIM_DIR, INTERVAL, SETTLE, KIWIX_MANAGE)"
    exit 2
}

cleanup() {
    [ -n "$tmp" ] && rm -f "$tmp"
    [ -n "$scratch" ] && rm -f "$scratch"
    tmp="" scratch=""
}

# look FILE: "size mtime" of what FILE points to, empty when it cannot be read
look() {
    stat -L -c '%s %Y' "$1" 2>/dev/null
}

# candidates: the complete-looking ZIM files of ZIM_DIR, one absolute path a line
candidates() {
    set +f
    for f in "$ZIM_DIR"/*.zim; do
        case $f in
            *.part) continue ;;
            *"$NL"*) warn "skipped a file whose name holds a newline in $ZIM_DIR"; continue ;;
        esac
        [ -f "$f" ] && printf '%s\n' "$f"  # a regular file (or a link to one); also drops an unmatched glob
    done
    set -f
}

# books FILE: the library's books as lines "id<TAB>path" (kiwix-manage prints absolute paths)
books() {
    "$KIWIX_MANAGE" "$1" show | awk '
        /^id:\t/   { sub(/^id:\t+/, ""); id = $0 }
        /^path:\t/ { sub(/^path:\t+/, ""); print id "\t" $0 }'
}

# count FILE: how many books the library lists
count() {
    "$KIWIX_MANAGE" "$1" show | grep -c '^id:'
}

# listed LIST LINE: whether LINE is one of the lines of LIST
listed() {
    case "$NL$1$NL" in *"$NL$2$NL"*) return 0 ;; esac
    return 1
}

# pause SECONDS: sleep in the background, so SIGTERM ends the script at once
pause() {
    [ "$1" -gt 0 ] || return 0
    sleep "$1" &
    wait $! || :
}

# later_mtime OLD NEW: give NEW an mtime in a later second than OLD's (kiwix-serve compares whole seconds)
later_mtime() {
    old=$(stat -c %Y "$1" 2>/dev/null) || return 0
    waited=0
    while [ "$(date +%s)" -le "$old" ]; do
        if [ "$waited" -ge 50 ]; then
            warn "$1 has an mtime in the future ($old); kiwix-serve may not reload it until then"
            break
        fi
        sleep 0.2 2>/dev/null || sleep 1
        waited=$((waited + 1))
    done
    touch "$2"
}

sync_once() {
    if [ ! -d "$ZIM_DIR" ] || [ ! -r "$ZIM_DIR" ] || [ ! -x "$ZIM_DIR" ]; then
        warn "cannot read the directory $ZIM_DIR; the library is left as it is"
        return 1
    fi
    zims=$(candidates)

    fresh=0 known=""
    if [ ! -e "$LIBRARY" ]; then
        fresh=1
    elif ! "$KIWIX_MANAGE" "$LIBRARY" show >/dev/null 2>&1; then
        warn "cannot read the library $LIBRARY; rebuilding it from $ZIM_DIR"
        fresh=1
    else
        known=$(books "$LIBRARY")
    fi

    # what left the directory, and what is new in it
    gone="" paths="" IFS=$NL
    for entry in $known; do
        path=${entry#*"$TAB"}
        paths=$paths$path$NL
        listed "$zims" "$path" || gone=$gone$entry$NL
    done
    first=""
    for f in $zims; do
        listed "$paths" "$f" && continue
        seen=$(look "$f")
        [ -n "$seen" ] || continue
        listed "$SKIPPED" "$f$TAB$seen" && continue  # reported already, and unchanged since
        first=$first$f$TAB$seen$NL
    done
    IFS=" $TAB$NL"

    # a new file is added only when it stopped changing
    stable=""
    if [ -n "$first" ]; then
        pause "$SETTLE"
        IFS=$NL
        for entry in $first; do
            f=${entry%%"$TAB"*} seen=$(look "${entry%%"$TAB"*}")
            if [ -n "$seen" ] && [ "$entry" = "$f$TAB$seen" ]; then
                stable=$stable$f$NL
            else
                say "waiting for $f: still changing (size and mtime ${entry#*"$TAB"}, then ${seen:-gone})"
            fi
        done
        IFS=" $TAB$NL"
    fi

    if [ "$fresh" -eq 0 ] && [ -z "$gone" ] && [ -z "$stable" ]; then
        return 0  # nothing to do: the file is not touched
    fi

    dir=$(dirname "$LIBRARY")
    if ! tmp=$(mktemp "$dir/.kiwix-library.XXXXXX"); then
        tmp=""
        warn "cannot create a file in $dir; the library is left as it is"
        return 1
    fi
    if [ "$fresh" -eq 1 ]; then
        printf '%s\n' "$EMPTY_LIBRARY" >"$tmp"
    else
        cp "$LIBRARY" "$tmp"
    fi || { warn "cannot write $tmp"; cleanup; return 1; }

    IFS=$NL
    for entry in $gone; do
        id=${entry%%"$TAB"*} path=${entry#*"$TAB"}
        if out=$("$KIWIX_MANAGE" "$tmp" remove "$id" 2>&1); then
            say "removed $path (book $id): no longer a complete ZIM in $ZIM_DIR"
        else
            warn "cannot remove book $id ($path): $out"
        fi
    done
    for f in $stable; do
        seen=$(look "$f")
        before=$(count "$tmp")
        if ! { scratch=$(mktemp "$dir/.kiwix-library.XXXXXX") && cp "$tmp" "$scratch"; }; then
            warn "cannot write a copy of the library in $dir"
            cleanup
            IFS=" $TAB$NL"
            return 1
        fi
        if ! out=$("$KIWIX_MANAGE" "$scratch" add "$f" 2>&1); then
            warn "skipped $f: kiwix-manage cannot read it as a ZIM file (${out:-no message})"
            SKIPPED=$SKIPPED$f$TAB$seen$NL
            rm -f "$scratch"
        elif [ "$(count "$scratch")" -le "$before" ]; then
            warn "skipped $f: it has the id of a ZIM file the library lists already"
            SKIPPED=$SKIPPED$f$TAB$seen$NL
            rm -f "$scratch"
        else
            mv -f "$scratch" "$tmp"
            say "added $f"
        fi
        scratch=""
    done
    IFS=" $TAB$NL"

    if [ "$fresh" -eq 0 ] && cmp -s "$tmp" "$LIBRARY"; then
        cleanup
        return 0
    fi
    chmod 0644 "$tmp"
    later_mtime "$LIBRARY" "$tmp"
    if ! mv -f "$tmp" "$LIBRARY"; then
        warn "cannot replace $LIBRARY; the library is left as it is"
        cleanup
        return 1
    fi
    tmp=""
    say "$LIBRARY lists $(count "$LIBRARY") ZIM file(s)"
}

mode=${1:-loop}
[ $# -le 1 ] || usage
case $mode in once | loop) ;; *) usage ;; esac
for value in "$INTERVAL" "$SETTLE"; do
    case $value in '' | *[!0-9]*) warn "INTERVAL and SETTLE must be whole seconds"; usage ;; esac
done
command -v "$KIWIX_MANAGE" >/dev/null 2>&1 || { warn "$KIWIX_MANAGE not found"; exit 2; }

set -f
# Paths as kiwix-manage prints them: absolute and physical, so a book's path and the file's path compare as
# strings (kiwix-manage stores paths relative to the library's directory).
if dir=$(cd -P "$(dirname "$LIBRARY")" 2>/dev/null && pwd -P); then
    LIBRARY=$dir/$(basename "$LIBRARY")
else
    warn "the library's directory $(dirname "$LIBRARY") does not exist"
    exit 1
fi
if real=$(cd -P "$ZIM_DIR" 2>/dev/null && pwd -P); then
    ZIM_DIR=$real
fi
set +f
rm -f "$dir"/.kiwix-library.??????  # left by a pass that was killed
set -f

trap 'cleanup; exit 0' TERM INT
trap cleanup EXIT

if [ "$mode" = once ]; then
    sync_once
    exit $?
fi
say "keeping $LIBRARY equal to the complete ZIM files in $ZIM_DIR (every $INTERVAL s, settle $SETTLE s)"
while :; do
    sync_once || :
    pause "$INTERVAL"
done
