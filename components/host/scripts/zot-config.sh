# ---- components/host/scripts/zot-config.sh: zot's binary check, config and sync credentials ----
# create: check the binary exists and is arm64; make the data directory; write the Docker Hub credentials
#         file (0600) when configured; write config.json only after `zot verify` accepted it; restart the
#         running zot (launchctl kickstart -k) once if either file changed. The LaunchAgent step loads it.
# delete: remove config.json and the credentials file; remove the data and config directories if empty
#         (the image cache is kept: remove ZOT_DATA_DIR by hand to drop it).
# Preamble: ZOT_BINARY ZOT_CONFIG_PATH ZOT_CONFIG ZOT_DATA_DIR CREDENTIALS_PATH CREDENTIALS_JSON (secret,
#           empty without credentials) FILE_TOOL ZOT_LABEL GUI_DOMAIN LAUNCHCTL

BUILD_HINT="zot is not in Homebrew; build it on this Mac: git clone http://localhost:3001/eblume/zot.git \
$(dirname "$(dirname "$ZOT_BINARY")") && cd $(dirname "$(dirname "$ZOT_BINARY")") && mise use go@1.25 && \
mise x -- make binary (it writes bin/zot-darwin-arm64), then run pulumi up again"

check_binary() {
  local kind
  [[ -f "$ZOT_BINARY" && -x "$ZOT_BINARY" ]] || die "the zot binary $ZOT_BINARY is missing or not executable. $BUILD_HINT"
  kind=$("$FILE_TOOL" -b "$ZOT_BINARY") || die "\`file -b $ZOT_BINARY\` failed"
  [[ "$kind" == *arm64* ]] || die "the zot binary $ZOT_BINARY is not an arm64 binary ($kind). $BUILD_HINT"
}

step_create() {
  local changed=0
  check_binary
  ensure_dir "$ZOT_DATA_DIR"
  if [[ -n "$CREDENTIALS_JSON" ]]; then
    if replace_if_changed "$CREDENTIALS_PATH" 0600 "$CREDENTIALS_JSON"; then
      changed=1
      log "wrote the sync credentials $CREDENTIALS_PATH (0600)"
    fi
  elif [[ -e "$CREDENTIALS_PATH" ]]; then
    remove_file "$CREDENTIALS_PATH"
    changed=1
  fi
  if ! same_content "$ZOT_CONFIG_PATH" "$ZOT_CONFIG"; then
    stage_file "$ZOT_CONFIG_PATH" 0644 "$ZOT_CONFIG"
    "$ZOT_BINARY" verify "$(staged_path "$ZOT_CONFIG_PATH")" >&2 ||
      die "\`zot verify\` rejected the rendered config; $ZOT_CONFIG_PATH is left as it was"
    commit_file "$ZOT_CONFIG_PATH"
    changed=1
    log "wrote $ZOT_CONFIG_PATH"
  fi
  if ((changed)) && agent_loaded "$ZOT_LABEL"; then
    "$LAUNCHCTL" kickstart -k "$GUI_DOMAIN/$ZOT_LABEL" || die "launchctl kickstart -k $GUI_DOMAIN/$ZOT_LABEL failed"
    log "restarted $ZOT_LABEL for the new configuration"
  fi
}

step_delete() {
  remove_file "$ZOT_CONFIG_PATH"
  remove_file "$CREDENTIALS_PATH"
  remove_empty_dir "$(dirname "$ZOT_CONFIG_PATH")"
  remove_empty_dir "$ZOT_DATA_DIR"
}

run_action "$@"
