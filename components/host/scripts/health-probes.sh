# ---- components/host/scripts/health-probes.sh: the host-side health checks (components/health.py) ----
# check: run every probe in parallel, each under its own timeout, and print one line per probe:
#        <index> TAB OK|FAILED TAB <detail>   (ops check reads these over one SSH session)
# agent: the same, then write the blumeops_check_* gauges to METRICS_TEXTFILE (the periodic LaunchAgent).
# Preamble: PROBE_COUNT METRICS_TEXTFILE and per probe PROBE_<n>_NAME _KIND _TIMEOUT _TOOL _TARGET _LIMIT
#   launchd:  TOOL launchctl, TARGET <domain>/<label>
#   textfile: TARGET the file, LIMIT the maximum age in seconds
#   http:     TOOL curl, TARGET the URL, LIMIT the accepted status codes (space separated)

# probe_launchd LAUNCHCTL TARGET: loaded, and its last exit code is 0 or it never exited.
probe_launchd() {
  local out code
  if ! out=$("$1" print "$2" 2>&1); then
    printf 'not loaded in %s (launchctl print: %s)' "${2%/*}" "$(printf '%s' "$out" | head -n 1)"
    return 1
  fi
  code=$(printf '%s\n' "$out" | sed -n 's/^[[:space:]]*last exit code = //p' | head -n 1)
  case "$code" in
  "" | "(never exited)")
    printf 'loaded, never exited'
    ;;
  0 | 0:*)
    printf 'loaded, last exit code 0'
    ;;
  *)
    printf 'loaded, but its last exit code is %s' "$code"
    return 1
    ;;
  esac
}

# probe_textfile PATH MAX_AGE: exists and was written less than MAX_AGE seconds ago.
probe_textfile() {
  local mtime now age
  if [[ ! -f "$1" ]]; then
    printf '%s does not exist' "$1"
    return 1
  fi
  # GNU stat first (BSD stat rejects -c cleanly), then macOS's stat -f %m
  mtime=$(stat -c %Y "$1" 2>/dev/null) || mtime=$(stat -f %m "$1")
  now=$(date +%s)
  age=$((now - mtime))
  if ((age > $2)); then
    printf '%s is %ss old (limit %ss: three intervals of its writer)' "$1" "$age" "$2"
    return 1
  fi
  printf 'written %ss ago (limit %ss)' "$age" "$2"
}

# probe_http CURL URL EXPECTED TIMEOUT: GET URL answers with one of the EXPECTED status codes.
probe_http() {
  local code expected
  if ! code=$("$1" -sS -o /dev/null -w '%{http_code}' --max-time "$4" "$2" 2>&1); then
    printf 'no answer from %s: %s' "$2" "$(printf '%s' "$code" | tr '\n' ' ')"
    return 1
  fi
  for expected in $3; do
    if [[ "$code" == "$expected" ]]; then
      printf 'HTTP %s from %s' "$code" "$2"
      return 0
    fi
  done
  printf 'HTTP %s from %s (expected %s)' "$code" "$2" "$3"
  return 1
}

# run_probe N FILE: run probe N, its result (OK|FAILED TAB detail) in FILE once it finished.
run_probe() {
  local kind tool target limit timeout detail status=OK
  kind=PROBE_$1_KIND tool=PROBE_$1_TOOL target=PROBE_$1_TARGET limit=PROBE_$1_LIMIT timeout=PROBE_$1_TIMEOUT
  case "${!kind}" in
  launchd) detail=$(probe_launchd "${!tool}" "${!target}") || status=FAILED ;;
  textfile) detail=$(probe_textfile "${!target}" "${!limit}") || status=FAILED ;;
  http) detail=$(probe_http "${!tool}" "${!target}" "${!limit}" "${!timeout}") || status=FAILED ;;
  *) detail="unknown probe kind ${!kind}" status=FAILED ;;
  esac
  printf '%s\t%s\n' "$status" "$(printf '%s' "$detail" | tr '\n\t' '  ')" >"$2.tmp"
  mv "$2.tmp" "$2"
}

PROBE_DIR=""
PROBE_PIDS=()

# start_probes: every probe in the background (its output in $PROBE_DIR/<n>), in a process group of its own,
# with a watchdog that kills the whole group at its timeout (the probe's subshell and the tool it waits for:
# a hung launchctl does not outlive its probe); the probes hold no descriptor of this session (lib.sh keeps
# the step's stderr open as fd 9: closed for them too), so a hung one cannot keep SSH open.
start_probes() {
  local n timeout pid monitor=0
  PROBE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/blumeops-check.XXXXXX")
  [[ $- != *m* ]] || monitor=1
  n=1
  while ((n <= PROBE_COUNT)); do
    timeout=PROBE_${n}_TIMEOUT
    set -m
    run_probe "$n" "$PROBE_DIR/$n" </dev/null >/dev/null 2>&1 9>&- &
    pid=$!
    ((monitor)) || set +m
    PROBE_PIDS+=("$pid")
    (sleep "${!timeout}" && kill -9 -- "-$pid") </dev/null >/dev/null 2>&1 9>&- &
    PROBE_PIDS+=("$!")
    n=$((n + 1))
  done
}

# probe_result N: the finished result of probe N, or FAILED with "timed out".
probe_result() {
  local timeout=PROBE_$1_TIMEOUT
  if [[ -f "$PROBE_DIR/$1" ]]; then
    cat "$PROBE_DIR/$1"
  else
    printf 'FAILED\ttimed out after %ss\n' "${!timeout}"
  fi
}

# wait_probes: until every probe finished or was killed by its watchdog (watchdogs of finished probes are
# stopped, so this returns as soon as the slowest probe is done).
wait_probes() {
  local index=0 count=${#PROBE_PIDS[@]}
  while ((index < count)); do
    wait "${PROBE_PIDS[$index]}" 2>/dev/null || true
    kill "${PROBE_PIDS[$((index + 1))]}" 2>/dev/null || true
    wait "${PROBE_PIDS[$((index + 1))]}" 2>/dev/null || true
    index=$((index + 2))
  done
}

step_check() {
  local n=1
  start_probes
  wait_probes
  while ((n <= PROBE_COUNT)); do
    printf '%s\t%s\n' "$n" "$(probe_result "$n")"
    n=$((n + 1))
  done
  rm -rf "$PROBE_DIR"
}

# metric_label TEXT: TEXT as a Prometheus label value (backslash and double quote escaped).
metric_label() {
  printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'
}

step_agent() {
  local n=1 name kind up lines now
  [[ -n "$METRICS_TEXTFILE" ]] || die "no METRICS_TEXTFILE to write the blumeops_check_* gauges to"
  start_probes
  wait_probes
  now=$(date +%s)
  lines="# HELP blumeops_check_up Whether the health check passed (1) or failed (0) at the last run.
# TYPE blumeops_check_up gauge"
  while ((n <= PROBE_COUNT)); do
    name=PROBE_${n}_NAME kind=PROBE_${n}_KIND
    up=0
    if [[ "$(probe_result "$n")" == OK* ]]; then
      up=1
    fi
    lines="$lines
blumeops_check_up{check=\"$(metric_label "${!name}")\",kind=\"${!kind}\"} $up"
    n=$((n + 1))
  done
  rm -rf "$PROBE_DIR"
  stage_file "$METRICS_TEXTFILE" 0644 "$lines
# HELP blumeops_check_last_run_timestamp_seconds When the periodic health checks last ran.
# TYPE blumeops_check_last_run_timestamp_seconds gauge
blumeops_check_last_run_timestamp_seconds $now"
  commit_file "$METRICS_TEXTFILE"
}

run_action "$@"
