# ---- components/host/scripts/borgmatic-config.sh: borgmatic's configuration and the borgmatic role's .pgpass ----
# create: put PGPASS_LINES in a marked block at the top of PGPASS_PATH (0600; the first matching line wins in
#         libpq, so older unmarked lines of the same host cannot shadow them); write CONFIG to CONFIG_PATH
#         (0600, directory 0700) after `borgmatic config validate` accepted it; the configuration found there
#         before is kept by commit_file (adopted, in ~/.blumeops/adopted).
# delete: remove the block from PGPASS_PATH (the file goes, or comes back as it was, when nothing else is in
#         it) and put the previous configuration back (or remove CONFIG_PATH).
# Preamble: BORGMATIC CONFIG_PATH CONFIG PGPASS_PATH PGPASS_BLOCK PGPASS_LINES (secret)

# pgpass_without_block: PGPASS_PATH's lines outside the marked block (nothing when it does not exist).
pgpass_without_block() {
  [[ -f "$PGPASS_PATH" ]] || return 0
  awk -v begin="# BEGIN $PGPASS_BLOCK" -v end="# END $PGPASS_BLOCK" '
    $0 == begin { skip = 1; next }
    $0 == end { skip = 0; next }
    !skip' "$PGPASS_PATH"
}

write_pgpass() {
  local rest content
  rest=$(pgpass_without_block)
  content="# BEGIN $PGPASS_BLOCK
$PGPASS_LINES
# END $PGPASS_BLOCK"
  if [[ -n "$rest" ]]; then
    content="$content
$rest"
  fi
  # replace_if_changed stops the step (die) on a failed write, also inside this `if`
  if replace_if_changed "$PGPASS_PATH" 0600 "$content"; then
    log "wrote the borgmatic lines of $PGPASS_PATH"
  fi
  chmod 0600 "$PGPASS_PATH" || die "cannot chmod 0600 $PGPASS_PATH (read-only?)"
}

write_config() {
  local staged
  [[ -x "$BORGMATIC" ]] || die "$BORGMATIC is missing: brew install borgmatic borgbackup (or correct the borgmatic path in the stack's settings)"
  ensure_dir "$(dirname "$CONFIG_PATH")"
  chmod 0700 "$(dirname "$CONFIG_PATH")" || die "cannot chmod 0700 $(dirname "$CONFIG_PATH") (read-only?)"
  if same_content "$CONFIG_PATH" "$CONFIG"; then
    chmod 0600 "$CONFIG_PATH" || die "cannot chmod 0600 $CONFIG_PATH (read-only?)"
    return 0
  fi
  stage_file "$CONFIG_PATH" 0600 "$CONFIG"
  staged=$(staged_path "$CONFIG_PATH")
  bounded "$BLUMEOPS_CHANGE" "$BORGMATIC" config validate --config "$staged" >&2 \
    || die "borgmatic config validate rejected the new configuration (see above); $CONFIG_PATH is left as it was"
  commit_file "$CONFIG_PATH"
  log "wrote $CONFIG_PATH"
}

step_create() {
  write_pgpass
  write_config
}

step_delete() {
  local rest
  if [[ -f "$PGPASS_PATH" ]]; then
    rest=$(pgpass_without_block)
    if [[ -z "$rest" ]]; then
      release_file "$PGPASS_PATH"
    else
      # The operator's own lines stay as they are now (not as they were when the block went in).
      if replace_if_changed "$PGPASS_PATH" 0600 "$rest"; then
        log "removed the borgmatic lines of $PGPASS_PATH"
      fi
      disown_file "$PGPASS_PATH"
    fi
  fi
  release_file "$CONFIG_PATH"
  remove_empty_dir "$(dirname "$CONFIG_PATH")"
}

run_action "$@"
