# ---- components/host/scripts/borgmatic-archive-check.sh: a data precondition before a stateful service stops ----
# require_recent_archive: succeed when an archive of ARCHIVE_REPOSITORY newer than ARCHIVE_MAX_AGE_HOURS
# contains ARCHIVE_PATH (a path inside the archive, without the leading /, or ending in /ARCHIVE_PATH);
# otherwise fail saying what to run.
# Embeddable in another step's script (RecentBorgmaticArchive.shell_function); uses log, die, bounded and
# blumeops_tmpdir of lib.sh (the embedding step's stdin carries them: lib.sh blocks are chosen by name).
# Preamble: ARCHIVE_BORG ARCHIVE_JQ ARCHIVE_REPOSITORY ARCHIVE_PASSCOMMAND ARCHIVE_PATH ARCHIVE_MAX_AGE_HOURS
require_recent_archive() {
  local listing archives archive start found="" bound=$((600 + BLUMEOPS_CHANGE))
  # borg waits up to 600 s for the lock of a running backup: its bound is that plus BLUMEOPS_CHANGE. A hang
  # stops the step (bounded), never reads as "no recent archive". jq and awk read borg's answer from a
  # scratch file (bounded gives a command /dev/null as stdin).
  listing="$(blumeops_tmpdir)/archives.json"
  BORG_PASSCOMMAND="$ARCHIVE_PASSCOMMAND" bounded "$bound" "$ARCHIVE_BORG" list --lock-wait 600 --json \
    "$ARCHIVE_REPOSITORY" >"$listing" ||
    die "borg could not list $ARCHIVE_REPOSITORY (see above): is the backup volume mounted?"
  # shellcheck disable=SC2016  # a jq program: its $hours is jq's
  archives=$(bounded "$BLUMEOPS_QUICK" "$ARCHIVE_JQ" -r --argjson hours "$ARCHIVE_MAX_AGE_HOURS" '
        def iso_epoch: sub("\\.[0-9]+$"; "") | strptime("%Y-%m-%dT%H:%M:%S") | mktime
          - ((now | localtime | mktime) - (now | gmtime | mktime));
        [.archives[] | select((.start | iso_epoch) >= now - $hours * 3600)]
        | sort_by(.start) | reverse | .[] | "\(.name)\t\(.start)"' "$listing") ||
    die "jq could not read the archive list of $ARCHIVE_REPOSITORY (or ${TMPDIR:-/tmp} is full)"
  while IFS=$'\t' read -r archive start; do
    [[ -n "$archive" ]] || continue
    # sh:**/ also matches below a prefix: borg < 1.4 keeps borgmatic's runtime directory before its dumps
    BORG_PASSCOMMAND="$ARCHIVE_PASSCOMMAND" bounded "$bound" "$ARCHIVE_BORG" list --lock-wait 600 --short \
      "$ARCHIVE_REPOSITORY::$archive" "sh:**/$ARCHIVE_PATH" >"$listing" ||
      die "borg could not list the archive $archive of $ARCHIVE_REPOSITORY (see above)"
    if awk -v path="$ARCHIVE_PATH" '$0 == path || substr($0, length($0) - length(path)) == "/" path { found = 1 }
                                    END { exit !found }' "$listing"; then
      found="$archive ($start)"
      break
    fi
  done <<<"$archives"
  [[ -n "$found" ]] || die "no archive of $ARCHIVE_REPOSITORY newer than $ARCHIVE_MAX_AGE_HOURS hours contains $ARCHIVE_PATH: run the borgmatic backup now (kickstart its LaunchAgent, or borgmatic create by hand), wait for it and check its log, then retry"
  log "archive $found contains $ARCHIVE_PATH"
}
# ---- end of require_recent_archive ----

step_create() {
  require_recent_archive
}

step_delete() {
  log "a precondition: nothing to undo"
}

run_action "$@"
