# ---- components/host/scripts/zot-config.sh: zot's binary check, config and sync credentials ----
# create: check the binary exists and is arm64; make the data directory; write the Docker Hub credentials
#         file (0600) when configured; write config.json only after `zot verify` accepted it. Before either
#         file changes it leaves zot's restart marker (restart_marker ZOT_CONFIG_PATH): this step restarts
#         nothing, the LaunchAgent step (which runs after it) restarts zot once and removes the marker.
#         A config.json or credentials file that was there before the program first wrote it (a pre-existing
#         install) is backed up first (adopt_file); without credentials configured, a credentials file the
#         program did not write is left alone.
# delete: remove config.json, the credentials file and the marker, putting back the files of a pre-existing
#         install (a file the program did not write is left alone); remove the data and config directories if empty (the image cache is kept: remove
#         ZOT_DATA_DIR by hand to drop it).
# Preamble: ZOT_BINARY ZOT_CONFIG_PATH ZOT_CONFIG ZOT_DATA_DIR CREDENTIALS_PATH CREDENTIALS_JSON (secret,
#           empty without credentials) FILE_TOOL BUILD_HINT (how to build zot on this host; may be empty)

build_instructions() {
  printf 'build zot from source (make binary) so that %s exists and is arm64%s, then run pulumi up again' \
    "$ZOT_BINARY" "${BUILD_HINT:+ ($BUILD_HINT)}"
}

check_binary() {
  local kind
  [[ -f "$ZOT_BINARY" && -x "$ZOT_BINARY" ]] ||
    die "the zot binary $ZOT_BINARY is missing or not executable: $(build_instructions)"
  kind=$(bounded "$BLUMEOPS_QUICK" "$FILE_TOOL" -b "$ZOT_BINARY") || die "\`file -b $ZOT_BINARY\` failed"
  [[ "$kind" == *arm64* ]] || die "the zot binary $ZOT_BINARY is not an arm64 binary ($kind): $(build_instructions)"
}

step_create() {
  check_binary
  ensure_dir "$ZOT_DATA_DIR"
  if [[ -n "$CREDENTIALS_JSON" ]]; then
    if ! same_content "$CREDENTIALS_PATH" "$CREDENTIALS_JSON"; then
      stage_file "$CREDENTIALS_PATH" 0600 "$CREDENTIALS_JSON"
      mark_restart_pending "$ZOT_CONFIG_PATH"
      commit_file "$CREDENTIALS_PATH"
      log "wrote the sync credentials $CREDENTIALS_PATH (0600)"
    fi
  elif is_adopted "$CREDENTIALS_PATH"; then
    mark_restart_pending "$ZOT_CONFIG_PATH"
    release_file "$CREDENTIALS_PATH"
  elif [[ -e "$CREDENTIALS_PATH" ]]; then
    log "left $CREDENTIALS_PATH alone: blumeops did not write it (and the config does not name it)"
  fi
  if ! same_content "$ZOT_CONFIG_PATH" "$ZOT_CONFIG"; then
    stage_file "$ZOT_CONFIG_PATH" 0644 "$ZOT_CONFIG"
    bounded "$BLUMEOPS_CHANGE" "$ZOT_BINARY" verify "$(staged_path "$ZOT_CONFIG_PATH")" >&2 ||
      die "\`zot verify\` rejected the rendered config; $ZOT_CONFIG_PATH is left as it was"
    mark_restart_pending "$ZOT_CONFIG_PATH"
    commit_file "$ZOT_CONFIG_PATH"
    log "wrote $ZOT_CONFIG_PATH"
  fi
  if [[ -e "$(restart_marker "$ZOT_CONFIG_PATH")" ]]; then
    log "zot's restart is pending: its LaunchAgent step restarts it"
  fi
}

step_delete() {
  release_own_file "$ZOT_CONFIG_PATH" "$ZOT_CONFIG"
  if [[ -n "$CREDENTIALS_JSON" ]] || is_adopted "$CREDENTIALS_PATH"; then
    release_own_file "$CREDENTIALS_PATH" "$CREDENTIALS_JSON"
  fi
  rm -f "$(restart_marker "$ZOT_CONFIG_PATH")" || die "cannot remove zot's restart marker"
  remove_empty_dir "$(dirname "$ZOT_CONFIG_PATH")"
  remove_empty_dir "$ZOT_DATA_DIR"
}

run_action "$@"
