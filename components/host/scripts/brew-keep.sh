# ---- components/host/scripts/brew-keep.sh: a retired formula kept installed, pinned, for its client tools ----
# create: FORMULA must be installed (its client tools serve a later step: postgresql@18's pg_dump for borgmatic);
#         pins it (`brew pin`) so `brew upgrade` never moves it to another major under the backups; a pin that was
#         there already is noted (RECORD_DIR/pinned-before) and left.
# delete: unpins it, unless it was pinned before this step.
# Preamble: BREW FORMULA RECORD_DIR

step_create() {
  bounded "$BLUMEOPS_QUICK" "$BREW" list --versions "$FORMULA" >/dev/null 2>&1 ||
    die "$FORMULA is not installed: its client tools are what the backups use from phase 9 on; install it" \
      "(brew install $FORMULA) or set blumeops:cleanup.keepFormula"
  mkdir -p "$RECORD_DIR" && chmod 0700 "$RECORD_DIR" || die "cannot create $RECORD_DIR"
  if bounded "$BLUMEOPS_QUICK" "$BREW" list --pinned | grep -Fxq -- "$FORMULA"; then
    [[ -f "$RECORD_DIR/pinned-by-blumeops" ]] || : >"$RECORD_DIR/pinned-before"
    log "$FORMULA is pinned"
    return 0
  fi
  bounded "$BLUMEOPS_CHANGE" "$BREW" pin "$FORMULA" || die "\`brew pin $FORMULA\` failed"
  : >"$RECORD_DIR/pinned-by-blumeops"
  log "pinned $FORMULA (kept for its client tools; brew upgrade leaves it)"
}

step_delete() {
  if [[ -f "$RECORD_DIR/pinned-before" ]]; then
    log "$FORMULA was pinned before phase 9: left pinned"
  elif [[ -f "$RECORD_DIR/pinned-by-blumeops" ]]; then
    bounded "$BLUMEOPS_CHANGE" "$BREW" unpin "$FORMULA" || die "\`brew unpin $FORMULA\` failed"
    log "unpinned $FORMULA"
  fi
  rm -rf "$RECORD_DIR"
}

run_action "$@"
