#!/bin/bash
# zim-torrents.sh: keeps Transmission holding every torrent of a declarative list (the ZIM list's ConfigMap).
#
# Runs as a sidecar in the pinned lscr.io/linuxserver/transmission image (Alpine; bash, curl and
# transmission-remote ship in it), and in the tests against Debian's transmission-daemon/transmission-remote.
#
#   zim-torrents.sh          a pass now, then one every INTERVAL seconds, forever; never exits non-zero once
#                            running (a crash loop would restart the pod and bury the message): a pass that
#                            fails says why and the next pass tries again
#   zim-torrents.sh once     one pass; exit 0 when every listed torrent is in Transmission afterwards,
#                            1 when some could not be added (or a line is invalid), 2 when the RPC never
#                            answered or refused us, 3 when the list cannot be read
#
# Environment:
#   TORRENT_LIST            (required) a file, one .torrent URL (http/https) per line; blank lines and lines
#                           starting with '#' are ignored, as is text after ' #'
#   TRANSMISSION_HOST       default 127.0.0.1 (the sidecar shares the Transmission pod's network)
#   TRANSMISSION_PORT       default 9091
#   INTERVAL                seconds between passes, default 1800
#   WAIT_TRIES, WAIT_SECONDS how long a pass waits for the RPC to answer: tries x seconds, default 30 x 10
#   RPC_TIMEOUT             seconds one transmission-remote call may take, default 120 (an add makes the daemon
#                           fetch the .torrent file)
#   TRANSMISSION_AUTH_FILE  (optional) a file holding user:password; handed to transmission-remote in its
#                           environment (TR_AUTH, --authenv), never on a command line
#   RELOCATE_FROM, RELOCATE_TO (optional, together) torrents carried from another daemon whose data Transmission
#                           still looks for under RELOCATE_FROM (the brew daemon's download-dir) are pointed at
#                           the same place under RELOCATE_TO (`transmission-remote --find`: the data is not
#                           moved, it is already there), once each pass finds one
#   STATE_FILE              (optional) where the info hash of each URL's torrent is recorded (a writable
#                           volume): a torrent renamed in Transmission is still known by its hash and never
#                           added twice. Without it a torrent is matched by its name only.
#
# A listed URL counts as present when Transmission holds the torrent recorded for it in STATE_FILE, or a
# torrent named as the URL's file without ".torrent" (or without ".zim.torrent"), which is how Kiwix names
# its torrents and how the original sync script matched them. A torrent removed from Transmission by hand is
# added again by the next pass: to drop one, remove it from the list first.
set -uo pipefail

PROG=zim-torrents
log() { printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$PROG" "$*"; }
usage() {
    printf '%s: %s\nusage: zim-torrents.sh [once]\n' "$PROG" "$1" >&2
    exit 64
}

MODE=${1:-loop}
case "$MODE" in
    once | loop) ;;
    *) usage "unknown argument '$MODE'" ;;
esac
(($# <= 1)) || usage "one argument at most"

TORRENT_LIST=${TORRENT_LIST:-}
TRANSMISSION_HOST=${TRANSMISSION_HOST:-127.0.0.1}
TRANSMISSION_PORT=${TRANSMISSION_PORT:-9091}
INTERVAL=${INTERVAL:-1800}
WAIT_TRIES=${WAIT_TRIES:-30}
WAIT_SECONDS=${WAIT_SECONDS:-10}
RPC_TIMEOUT=${RPC_TIMEOUT:-120}
TRANSMISSION_AUTH_FILE=${TRANSMISSION_AUTH_FILE:-}
STATE_FILE=${STATE_FILE:-}
RELOCATE_FROM=${RELOCATE_FROM:-}
RELOCATE_TO=${RELOCATE_TO:-}

[[ -z "$RELOCATE_FROM$RELOCATE_TO" || ("$RELOCATE_FROM" == /* && "$RELOCATE_TO" == /*) ]] ||
    usage "RELOCATE_FROM and RELOCATE_TO go together, as absolute directories"
RELOCATE_FROM=${RELOCATE_FROM%/} RELOCATE_TO=${RELOCATE_TO%/}
[[ -n "$TORRENT_LIST" ]] || usage "TORRENT_LIST is not set (the file of .torrent URLs)"
[[ "$TRANSMISSION_PORT" =~ ^[0-9]+$ ]] || usage "TRANSMISSION_PORT must be a port number, not '$TRANSMISSION_PORT'"
[[ "$WAIT_TRIES" =~ ^[1-9][0-9]*$ ]] || usage "WAIT_TRIES must be a whole number from 1, not '$WAIT_TRIES'"
for _name in INTERVAL WAIT_SECONDS RPC_TIMEOUT; do
    [[ "${!_name}" =~ ^[0-9]+(\.[0-9]+)?$ ]] || usage "$_name must be a number of seconds, not '${!_name}'"
done
for _tool in transmission-remote curl; do
    command -v "$_tool" >/dev/null 2>&1 || usage "$_tool is not installed"
done

SERVER="$TRANSMISSION_HOST:$TRANSMISSION_PORT"
RPC_URL="http://$SERVER/transmission/rpc"
REMOTE_AUTH=()
if [[ -n "$TRANSMISSION_AUTH_FILE" ]]; then
    REMOTE_AUTH=(--authenv)
fi

# the pass's view of Transmission and of the state file
declare -A HAVE_HASH=() STATE=() WHERE=() # hash -> name in Transmission; URL -> hash recorded; hash -> Location

# remote ARGS...: transmission-remote against the server, bounded; the credentials only in its environment.
remote() {
    local auth=""
    if [[ -n "$TRANSMISSION_AUTH_FILE" ]]; then
        if ! IFS= read -r auth <"$TRANSMISSION_AUTH_FILE" && [[ -z "$auth" ]]; then
            log "cannot read the credentials in TRANSMISSION_AUTH_FILE ($TRANSMISSION_AUTH_FILE)"
            return 1
        fi
        auth=${auth%$'\r'}
    fi
    if command -v timeout >/dev/null 2>&1; then
        TR_AUTH=$auth timeout "$RPC_TIMEOUT" transmission-remote "$SERVER" "${REMOTE_AUTH[@]}" "$@"
    else
        TR_AUTH=$auth transmission-remote "$SERVER" "${REMOTE_AUTH[@]}" "$@"
    fi
}

# wait_for_rpc: until the RPC answers as a live Transmission does. 409 is its session-id handshake (up); 401
# means up but asking for credentials. 403 and 421 are Transmission's whitelists refusing this client: waiting
# does not help, so the pass stops and says which setting to change.
wait_for_rpc() {
    local try code
    for ((try = 1; try <= WAIT_TRIES; try++)); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --connect-timeout 5 --max-time 10 "$RPC_URL" 2>/dev/null) ||
            true
        [[ "$code" =~ ^[1-9][0-9][0-9]$ ]] || code=""
        case "$code" in
            200 | 409) return 0 ;;
            401)
                [[ -n "$TRANSMISSION_AUTH_FILE" ]] && return 0
                log "$RPC_URL asks for credentials (401) and TRANSMISSION_AUTH_FILE is not set"
                return 1
                ;;
            403)
                log "$RPC_URL refuses this client's address (403): add it to rpc-whitelist (the image's WHITELIST)"
                return 1
                ;;
            421)
                log "$RPC_URL refuses the host name '$TRANSMISSION_HOST' (421): add it to rpc-host-whitelist" \
                    "(the image's HOST_WHITELIST)"
                return 1
                ;;
        esac
        if ((try < WAIT_TRIES)); then
            ((try == 1)) && log "waiting for $RPC_URL (${code:+it answered HTTP }${code:-no connection};" \
                "up to $WAIT_TRIES tries, ${WAIT_SECONDS}s apart)"
            sleep "$WAIT_SECONDS"
        fi
    done
    log "$RPC_URL did not answer after $WAIT_TRIES tries ${WAIT_SECONDS}s apart (last:" \
        "${code:+HTTP }${code:-no connection}); trying again next pass"
    return 1
}

# read_torrents: HAVE_HASH (hash -> name) from `transmission-remote -t all -i` (the "Name:" and "Hash:" lines
# of every torrent; the same in Transmission 3.00 and 4.0).
read_torrents() {
    local out line name="" hash=""
    HAVE_HASH=() WHERE=()
    if ! out=$(remote -t all -i 2>&1); then
        log "cannot list Transmission's torrents: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
        return 1
    fi
    while IFS= read -r line; do
        case "$line" in
            "  Name: "*) name=${line#"  Name: "} ;;
            "  Hash: "*)
                hash=${line#"  Hash: "}
                HAVE_HASH[$hash]=$name
                ;;
            "  Location: "*) [[ -n "$hash" ]] && WHERE[$hash]=${line#"  Location: "} ;;
        esac
    done <<<"$out"
}

read_state() {
    local hash url
    STATE=()
    [[ -n "$STATE_FILE" && -f "$STATE_FILE" ]] || return 0
    while IFS=$'\t' read -r hash url; do
        [[ -n "$hash" && -n "$url" ]] && STATE[$url]=$hash
    done <"$STATE_FILE"
}

# write_state: the state file replaced whole (a temp file beside it, renamed), so it is never half written.
write_state() {
    local url temp
    [[ -n "$STATE_FILE" ]] || return 0
    temp="$STATE_FILE.tmp.$$"
    {
        for url in "${!STATE[@]}"; do
            printf '%s\t%s\n' "${STATE[$url]}" "$url"
        done | sort -t $'\t' -k2
    } >"$temp" 2>/dev/null && mv -f "$temp" "$STATE_FILE" 2>/dev/null && return 0
    rm -f "$temp" 2>/dev/null
    log "cannot write STATE_FILE ($STATE_FILE): renamed torrents are matched by name only until it is writable"
}

# torrent_name URL: the name Kiwix gives the torrent, the URL's file without .torrent
torrent_name() {
    local base=${1%%[?#]*}
    base=${base##*/}
    printf '%s' "${base%.torrent}"
}

# present URL: the hash of the torrent in Transmission that is this URL's (recorded, or by name), or fails.
present() {
    local url=$1 name hash
    if [[ -n "${STATE[$url]:-}" && -n "${HAVE_HASH[${STATE[$url]}]+set}" ]]; then
        printf '%s' "${STATE[$url]}"
        return 0
    fi
    name=$(torrent_name "$url")
    for hash in "${!HAVE_HASH[@]}"; do
        if [[ "${HAVE_HASH[$hash]}" == "$name" || "${HAVE_HASH[$hash]}" == "${name%.zim}" ]]; then
            printf '%s' "$hash"
            return 0
        fi
    done
    return 1
}

# read_list: LISTED, the URLs of TORRENT_LIST in order, each once; INVALID, the lines reported as invalid.
LISTED=() INVALID=0
read_list() {
    local line url rest number=0
    local -A seen=()
    LISTED=() INVALID=0
    while IFS= read -r line || [[ -n "$line" ]]; do
        number=$((number + 1))
        line=${line%$'\r'}
        read -r url rest <<<"$line"
        [[ -z "$url" || "$url" == \#* ]] && continue
        if [[ -n "$rest" && "$rest" != \#* ]]; then
            log "$TORRENT_LIST line $number: one URL per line, not '$line'"
            INVALID=$((INVALID + 1))
        elif [[ ! "$url" =~ ^https?://[^/]+/.+ ]]; then
            log "$TORRENT_LIST line $number: not an http(s) URL of a .torrent file: '$url'"
            INVALID=$((INVALID + 1))
        elif [[ -z "${seen[$url]:-}" ]]; then
            seen[$url]=1
            LISTED+=("$url")
        fi
    done <"$TORRENT_LIST"
}

# relocate: every torrent whose data Transmission looks for under RELOCATE_FROM is told where it is now.
# RELOCATE_FAILED: how many could not be.
RELOCATE_FAILED=0
relocate() {
    local hash where to out
    RELOCATE_FAILED=0
    [[ -n "$RELOCATE_FROM" ]] || return 0
    for hash in "${!WHERE[@]}"; do
        where=${WHERE[$hash]%/}
        [[ "$where" == "$RELOCATE_FROM" || "$where" == "$RELOCATE_FROM"/* ]] || continue
        to=$RELOCATE_TO${where#"$RELOCATE_FROM"}
        if out=$(remote -t "$hash" --find "$to" 2>&1); then
            log "pointed ${HAVE_HASH[$hash]} ($hash) at its data in $to (was $where)"
        else
            log "cannot point ${HAVE_HASH[$hash]} at $to: $(printf '%s' "$out" | tail -n 2 | tr '\n' ' ')"
            RELOCATE_FAILED=$((RELOCATE_FAILED + 1))
        fi
    done
}

# pass: one reconciliation; its status as documented for `once`.
pass() {
    local url hash out before new added=0 skipped=0 failed=0
    if [[ ! -r "$TORRENT_LIST" ]] || ! read_list; then
        log "cannot read TORRENT_LIST ($TORRENT_LIST)"
        return 3
    fi

    wait_for_rpc || return 2
    read_torrents || return 2
    read_state
    relocate
    failed=$RELOCATE_FAILED

    for url in "${LISTED[@]}"; do
        if hash=$(present "$url"); then
            STATE[$url]=$hash
            skipped=$((skipped + 1))
            continue
        fi
        before=" ${!HAVE_HASH[*]} "
        if out=$(remote -a "$url" 2>&1); then
            if ! read_torrents; then
                failed=$((failed + 1))
                continue
            fi
            new=""
            for hash in "${!HAVE_HASH[@]}"; do
                [[ "$before" == *" $hash "* ]] || new+="$hash "
            done
            new=${new% }
            if [[ -n "$new" && "$new" != *" "* ]]; then
                STATE[$url]=$new
                log "added $url (${HAVE_HASH[$new]}, $new)"
                added=$((added + 1))
            elif [[ -z "$new" ]]; then
                log "$url is already in Transmission under another name (the daemon called it a duplicate)"
                skipped=$((skipped + 1))
            else
                log "added $url (several torrents appeared at once: not recorded in STATE_FILE)"
                added=$((added + 1))
            fi
        else
            log "cannot add $url: $(printf '%s' "$out" | tail -n 2 | tr '\n' ' ')"
            failed=$((failed + 1))
        fi
    done
    write_state
    log "pass done: ${#LISTED[@]} listed, $added added, $skipped already present, $failed failed, $INVALID invalid lines"
    ((failed == 0 && INVALID == 0)) || return 1
    return 0
}

if [[ "$MODE" == once ]]; then
    pass
    exit $?
fi

# the loop: a pass, then a sleep the pod's TERM interrupts (the sidecar stops at once, not after INTERVAL)
trap 'log "stopping"; exit 0' TERM INT
log "keeping $SERVER holding the torrents of $TORRENT_LIST, a pass every ${INTERVAL}s"
while :; do
    pass
    status=$?
    ((status == 0)) || log "pass incomplete (status $status); next pass in ${INTERVAL}s"
    sleep "$INTERVAL" &
    wait $! || true
done
