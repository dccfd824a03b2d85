# ---- components/host/scripts/borgmatic-metrics.sh: run hourly by the borgmatic metrics LaunchAgent ----
# agent: read the repository's newest archive with `borg info --json --last 1` and write borgmatic.prom to
#        TEXTFILE (temp file + rename): borgmatic_up (the repository answered), the last archive's start time,
#        duration and sizes, and the number of archives. borg is bounded (lib.sh) at its lock wait plus
#        BLUMEOPS_CHANGE: a borg that answers "no" gives borgmatic_up 0; a hang stops the run (the old file
#        stays, its age shows in node_textfile_mtime_seconds), it is never written as an answer.
# Preamble: BORG JQ REPOSITORY PASSCOMMAND LOCK_WAIT TEXTFILE

# iso_epoch: the jq function turning borg's local ISO time ("2026-01-19T02:00:03.123456") into epoch seconds.
readonly ISO_EPOCH='def iso_epoch: sub("\\.[0-9]+$"; "") | strptime("%Y-%m-%dT%H:%M:%S") | mktime
  - ((now | localtime | mktime) - (now | gmtime | mktime));'

step_agent() {
  local info list up=0 body summary bound=$((LOCK_WAIT + BLUMEOPS_CHANGE))
  info="$(blumeops_tmpdir)/borg-info.json"
  list="$(blumeops_tmpdir)/borg-list.json"
  export BORG_PASSCOMMAND="$PASSCOMMAND"
  if bounded "$bound" "$BORG" info --lock-wait "$LOCK_WAIT" --json --last 1 "$REPOSITORY" >"$info" \
    && bounded "$bound" "$BORG" list --lock-wait "$LOCK_WAIT" --json "$REPOSITORY" >"$list"; then
    up=1
  else
    # a full or read-only scratch disk is not the repository's fault: it is never written as borgmatic_up 0
    (printf 'x' >"$(blumeops_tmpdir)/probe") 2>/dev/null ||
      die "cannot write scratch files in ${TMPDIR:-/tmp} (full or read-only?); $TEXTFILE is left as it was"
    log "borg could not read $REPOSITORY (see above)"
  fi
  body="# HELP borgmatic_up Whether borg could read the backup repository $REPOSITORY (1) or not (0).
# TYPE borgmatic_up gauge
borgmatic_up $up"
  if [[ "$up" == 1 ]]; then
    # shellcheck disable=SC2016  # a jq program: its $list is jq's
    summary=$(bounded "$BLUMEOPS_QUICK" "$JQ" -r --slurpfile list "$list" "$ISO_EPOCH"'
  "# HELP borgmatic_archive_count Archives in the repository.",
  "# TYPE borgmatic_archive_count gauge",
  "borgmatic_archive_count \($list[0].archives | length)",
  (.archives[0] // empty |
    "# HELP borgmatic_last_archive_timestamp_seconds Start of the newest archive (Unix time).",
    "# TYPE borgmatic_last_archive_timestamp_seconds gauge",
    "borgmatic_last_archive_timestamp_seconds \(.start | iso_epoch)",
    "# HELP borgmatic_last_archive_duration_seconds How long the newest archive took.",
    "# TYPE borgmatic_last_archive_duration_seconds gauge",
    "borgmatic_last_archive_duration_seconds \(.duration)",
    "# HELP borgmatic_last_archive_size_bytes Sizes of the newest archive (original, compressed, deduplicated).",
    "# TYPE borgmatic_last_archive_size_bytes gauge",
    "borgmatic_last_archive_size_bytes{kind=\"original\"} \(.stats.original_size)",
    "borgmatic_last_archive_size_bytes{kind=\"compressed\"} \(.stats.compressed_size)",
    "borgmatic_last_archive_size_bytes{kind=\"deduplicated\"} \(.stats.deduplicated_size)")' "$info") ||
      die "jq could not read borg's answer in $info (or ${TMPDIR:-/tmp} is full); $TEXTFILE is left as it was"
    body="$body
$summary"
  fi
  stage_file "$TEXTFILE" 0644 "$body"
  commit_file "$TEXTFILE"
}

run_action "$@"
