# ---- components/host/scripts/transmission-move.sh: the brew Transmission's downloads and settings onto the share ----
# create: (1) refuses while anything answers at RPC_URL (the legacy transmission-daemon must be stopped: its
#         retirement runs first, so no file changes under the copy); refuses unless the NAS export EXPORT is
#         mounted at MOUNT_POINT (`mount` lists `EXPORT on MOUNT_POINT (nfs...`), writable, and RSYNC is rsync 3
#         (macOS's /usr/bin/rsync is openrsync or 2.6.9: Homebrew's rsync is the one to set).
#         (2) The downloads: SOURCE_DIR/ (but SOURCE_DIR/INCOMPLETE_NAME) into MOUNT_POINT/complete/ and
#         SOURCE_DIR/INCOMPLETE_NAME/ into MOUNT_POINT/incomplete/ (where the cluster's Transmission keeps them),
#         with `rsync -rlt --size-only --partial-dir`: resumable (an interrupted file waits in
#         .blumeops-partial/ and never shows under its own name half written), a file already there with its
#         size skipped. A file in the target that differs in size from the source and that this step did not
#         write (COPIED_LIST in STATE_DIR lists what it wrote) is a conflict: the step refuses before copying
#         anything and lists them; nothing is ever overwritten that the step did not put there. A source file
#         that changes during the copy (newer than the copy's start) makes the step copy again, up to
#         COPY_ATTEMPTS times, then refuse, naming the files.
#         (3) Verified: a dry run lists no source file missing from the target or of another size, and the
#         target holds at least as many files as the source. STATE_DIR/transmission-move.done records the count.
#         (4) The settings: CONFIG_DIR/settings.json (the keys of CARRIED_KEYS only: limits, DHT/PEX, queues,
#         ratios; never the RPC's credentials, paths or port), torrents/ and resume/ staged as
#         MOUNT_POINT/.blumeops/transmission-config (renamed into place whole), which the cluster's config-import
#         init container copies into an empty /config. The paths are the cluster's (/downloads/complete,
#         /downloads/incomplete); the torrents sidecar points each carried torrent at its data there.
#         SOURCE_DIR and CONFIG_DIR are only read, never written.
# delete: removes the staged settings (MOUNT_POINT/.blumeops/transmission-config); the downloads copied to the
#         share stay (they are the cluster's Transmission's data now), as do SOURCE_DIR and CONFIG_DIR, from which
#         the restored brew Transmission serves again. COPIED_LIST stays, so a re-raise recognises its own files.
# Preamble: SOURCE_DIR INCOMPLETE_NAME CONFIG_DIR MOUNT_POINT EXPORT STATE_DIR RPC_URL RSYNC MOUNT CURL JQ
#           COPY_ATTEMPTS CARRIED_KEYS

COPIED_LIST="$STATE_DIR/copied.list"
DONE="$STATE_DIR/transmission-move.done"
CARRIED="$MOUNT_POINT/.blumeops/transmission-config"
PARTIAL=.blumeops-partial

# share_mounted: the export is mounted at MOUNT_POINT, over NFS, and writable.
share_mounted() {
  local table line found=""
  table=$(bounded "$BLUMEOPS_QUICK" "$MOUNT") || die "\`$MOUNT\` failed: cannot tell whether $EXPORT is mounted"
  while IFS= read -r line; do
    # macOS: "sifaka:/volume1/torrents on /Volumes/torrents (nfs, ...)"; Linux: "... on /mnt type nfs4 (...)"
    case "$line" in
    *" on $MOUNT_POINT (nfs"* | *" on $MOUNT_POINT type nfs"*) found=${line%% on *} ;;
    esac
  done <<<"$table"
  [[ -n "$found" ]] || die "the NAS export $EXPORT is not mounted at $MOUNT_POINT: mount it first" \
    "(sudo mkdir -p $MOUNT_POINT && sudo mount -t nfs -o resvport $EXPORT $MOUNT_POINT, with the export allowing" \
    "this host's address), then run again; nothing was copied"
  [[ "$found" == *":${EXPORT#*:}" ]] || die "$MOUNT_POINT holds $found, not the export $EXPORT: unmount it and" \
    "mount $EXPORT there; nothing was copied"
  [[ -d "$MOUNT_POINT" && -w "$MOUNT_POINT" ]] || die "$MOUNT_POINT ($found) is not writable by $(id -un):" \
    "the export must allow writes from this host; nothing was copied"
}

# pairs: "FROM TO" of the two copies (the incomplete one only when SOURCE_DIR holds it).
pairs() {
  printf '%s\t%s\n' "$SOURCE_DIR/" "$MOUNT_POINT/complete/"
  if [[ -d "$SOURCE_DIR/$INCOMPLETE_NAME" ]]; then
    printf '%s\t%s\n' "$SOURCE_DIR/$INCOMPLETE_NAME/" "$MOUNT_POINT/incomplete/"
  fi
}

# differing FROM TO: the files of FROM whose copy in TO exists with another size (relative to TO).
differing() {
  local out line
  out=$(bounded "$BLUMEOPS_LONG" "$RSYNC" -rn --size-only --existing --itemize-changes \
    --exclude="/$INCOMPLETE_NAME" --exclude="$PARTIAL/" "$1" "$2") ||
    die "\`rsync --dry-run $1 $2\` failed: cannot compare the downloads with the share; nothing was copied"
  while IFS= read -r line; do
    [[ "$line" == ">f"* ]] && printf '%s\n' "${line#* }"
  done <<<"$out"
  return 0
}

# conflicts: every differing file the step did not write itself; refuses when there is one.
conflicts() {
  local from to file found=()
  while IFS=$'\t' read -r from to; do
    [[ -d "$to" ]] || continue
    while IFS= read -r file; do
      [[ -n "$file" ]] || continue
      grep -Fxq -- "$to$file" "$COPIED_LIST" 2>/dev/null || found+=("$to$file")
    done < <(differing "$from" "$to")
  done < <(pairs)
  ((${#found[@]} == 0)) && return 0
  die "${#found[@]} file(s) on the share differ in size from the host's and were not copied by this step:" \
    "${found[*]:0:20}; move them aside or remove them on the share (the host's $SOURCE_DIR is the source)," \
    "then run again; nothing was copied"
}

# copy_once MARKER: one rsync of both pairs; the files written appended to COPIED_LIST. 24 (a source file
# vanished during the copy) counts as a change: the caller copies again.
copy_once() {
  local from to out status
  while IFS=$'\t' read -r from to; do
    ensure_dir "$to"
    status=0
    out=$(bounded "$BLUMEOPS_LONG" "$RSYNC" -rlt --size-only --partial-dir="$PARTIAL" --chmod=a+rX \
      --out-format='%n' --exclude="/$INCOMPLETE_NAME" --exclude="$PARTIAL/" "$from" "$to") || status=$?
    local line
    while IFS= read -r line; do
      [[ -n "$line" && "$line" != */ ]] && printf '%s\n' "$to$line" >>"$COPIED_LIST"
    done <<<"$out"
    case "$status" in
    0) ;;
    24) return 24 ;;
    *) die "\`rsync $from $to\` failed (exit $status): what was copied stays and the next run resumes it" ;;
    esac
  done < <(pairs)
  return 0
}

# changed_since MARKER: source files modified after MARKER (something wrote under the copy).
changed_since() {
  find "$SOURCE_DIR" -type f -newer "$1" ! -path "*/$PARTIAL/*" 2>/dev/null | head -n 20
}

# verify: every source file is in the target with its size; the counts agree. Prints the file count.
verify() {
  local from to missing="" sources=0 targets=0 n
  while IFS=$'\t' read -r from to; do
    local out line
    out=$(bounded "$BLUMEOPS_LONG" "$RSYNC" -rn --size-only --itemize-changes --exclude="/$INCOMPLETE_NAME" \
      --exclude="$PARTIAL/" "$from" "$to") || die "\`rsync --dry-run $from $to\` failed: the copy is not verified"
    while IFS= read -r line; do
      [[ "$line" == ">f"* ]] && missing+=" ${line#* }"
    done <<<"$out"
    # without the trailing slash: BSD find prints dir//file for dir/
    n=$(find "${from%/}" -type f ! -path "${from%/}/$INCOMPLETE_NAME/*" | wc -l)
    sources=$((sources + n))
    n=$(find "${to%/}" -type f ! -path "*/$PARTIAL/*" | wc -l)
    targets=$((targets + n))
  done < <(pairs)
  [[ -z "$missing" ]] || die "after the copy these files are missing or of another size on the share:$missing;" \
    "run again (rsync resumes)"
  ((targets >= sources)) || die "the share holds $targets files where the host has $sources: run again"
  printf '%s' "$sources"
}

move_downloads() {
  local attempt marker changed="" files status
  [[ -d "$SOURCE_DIR" ]] || die "$SOURCE_DIR (the brew Transmission's download-dir) does not exist: set" \
    "blumeops:transmission.legacyDownloads to its download-dir (settings.json); nothing was copied"
  ensure_dir "$STATE_DIR"
  touch "$COPIED_LIST" || die "cannot write $COPIED_LIST"
  marker="$(blumeops_tmpdir)/copy-started"
  for ((attempt = 1; attempt <= COPY_ATTEMPTS; attempt++)); do
    conflicts
    : >"$marker" # APFS keeps nanoseconds: a write after this instant is -newer, even within the second
    status=0
    copy_once || status=$?
    changed=$(changed_since "$marker")
    if ((status == 0)) && [[ -z "$changed" ]]; then
      files=$(verify)
      printf 'files=%s\nverified=%s\n' "$files" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$DONE.tmp" && mv -f "$DONE.tmp" "$DONE"
      log "the downloads are on the share: $files files verified by name and size in $MOUNT_POINT"
      return 0
    fi
    log "files under $SOURCE_DIR changed during copy $attempt of $COPY_ATTEMPTS (${changed//$'\n'/ }): copying again"
  done
  die "files under $SOURCE_DIR kept changing during $COPY_ATTEMPTS copies (${changed//$'\n'/ }): something still" \
    "writes there (the brew transmission-daemon must be stopped); what was copied stays, run again once it stopped"
}

carry_settings() {
  local staging="$MOUNT_POINT/.blumeops/transmission-config.staging" dir
  [[ -f "$CONFIG_DIR/settings.json" ]] || die "$CONFIG_DIR/settings.json does not exist: set" \
    "blumeops:transmission.legacyConfig to the brew Transmission's config directory (transmission-daemon -g)"
  rm -rf "$staging"
  mkdir -p "$staging" || die "cannot create $staging on the share"
  bounded "$BLUMEOPS_QUICK" "$JQ" --arg keys "$CARRIED_KEYS" '
    ($keys | split(" ")) as $carried
    | with_entries(select(.key as $k | $carried | index($k)))
    + {"download-dir": "/downloads/complete", "incomplete-dir": "/downloads/incomplete",
       "watch-dir-enabled": false, "rpc-whitelist-enabled": false, "rpc-host-whitelist-enabled": false,
       "rpc-authentication-required": false}' "$CONFIG_DIR/settings.json" >"$staging/settings.json" ||
    die "$CONFIG_DIR/settings.json is not JSON that jq reads; nothing was carried"
  for dir in torrents resume; do
    if [[ -d "$CONFIG_DIR/$dir" ]]; then
      bounded "$BLUMEOPS_CHANGE" "$RSYNC" -rt --chmod=a+rX "$CONFIG_DIR/$dir/" "$staging/$dir/" ||
        die "cannot copy $CONFIG_DIR/$dir to the share"
    fi
  done
  if [[ -d "$CARRIED" ]] && diff -r "$staging" "$CARRIED" >/dev/null 2>&1; then
    rm -rf "$staging"
    log "the settings on the share are current ($CARRIED)"
    return 0
  fi
  rm -rf "$CARRIED.old"
  [[ ! -d "$CARRIED" ]] || mv "$CARRIED" "$CARRIED.old"
  mv "$staging" "$CARRIED" || die "cannot put the settings in place at $CARRIED"
  rm -rf "$CARRIED.old"
  log "carried the settings ($(find "$CARRIED/torrents" -name '*.torrent' 2>/dev/null | wc -l | tr -d ' ') torrents)" \
    "to $CARRIED"
}

step_create() {
  legacy_stopped "$RPC_URL" "the brew transmission-daemon (it would change files under the copy)" copied
  share_mounted
  require_rsync_3
  move_downloads
  carry_settings
}

step_delete() {
  if [[ -d "$MOUNT_POINT/.blumeops" ]]; then
    rm -rf "$CARRIED" "$CARRIED.staging" "$CARRIED.old"
    log "removed the staged settings in $CARRIED"
  fi
  log "the downloads copied to $MOUNT_POINT stay; $SOURCE_DIR and $CONFIG_DIR were never changed"
}

run_action "$@"
