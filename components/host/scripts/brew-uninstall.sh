# ---- components/host/scripts/brew-uninstall.sh: a retired Homebrew formula uninstalled, restorable exactly ----
# create: when FORMULA is installed: refuses while its service runs (its retirement stopped it); records in
#         RECORD_DIR (0700) its versions, the keg (Cellar/FORMULA as a tar: every installed version, exactly as
#         it was), its optlink target and whether it was linked; then `brew uninstall --formula FORMULA` (which
#         refuses while another formula needs it: the step stops with Homebrew's message). A formula already
#         uninstalled with a record is done; one not installed and never recorded is left alone (the rollback
#         then restores nothing). Its data directories are not touched (retired-data-removal.sh).
# delete: when FORMULA is not installed and a record exists: the keg restored into the Cellar, the optlink and
#         the link as they were, the versions checked against the record; then the record goes. So the
#         retirement's undo finds the formula it stopped, at the version it ran.
# Preamble: BREW FORMULA RECORD_DIR TAR JQ

KEG="$RECORD_DIR/keg.tar"
RECORD="$RECORD_DIR/record"

versions() { bounded "$BLUMEOPS_QUICK" "$BREW" list --versions "$FORMULA" 2>/dev/null || true; }

record_value() { sed -n "s/^$1=//p" "$RECORD" 2>/dev/null | head -n 1; }


step_create() {
  local installed cellar prefix info
  installed=$(versions)
  if [[ -z "$installed" ]]; then
    if [[ -f "$KEG" ]]; then
      log "$FORMULA is uninstalled already (record in $RECORD_DIR)"
    else
      log "$FORMULA is not installed and was never recorded: nothing to uninstall, nothing to restore later"
    fi
    return 0
  fi
  info=$(bounded "$BLUMEOPS_QUICK" "$BREW" services info --json "$FORMULA") ||
    die "\`brew services info $FORMULA\` failed"
  if [[ "$(printf '%s' "$info" | "$JQ" -r '.[0].running')" == true ]]; then
    die "brew service $FORMULA still runs: its retirement (an earlier phase) stops it first; nothing was uninstalled"
  fi
  cellar=$(bounded "$BLUMEOPS_QUICK" "$BREW" --cellar) || die "\`brew --cellar\` failed"
  prefix=$(bounded "$BLUMEOPS_QUICK" "$BREW" --prefix) || die "\`brew --prefix\` failed"
  mkdir -p "$RECORD_DIR" && chmod 0700 "$RECORD_DIR" || die "cannot create $RECORD_DIR"
  bounded "$BLUMEOPS_LONG" "$TAR" -C "$cellar" -cf "$KEG.tmp" "$FORMULA" || die "cannot archive the keg of $FORMULA"
  mv -f "$KEG.tmp" "$KEG"
  {
    printf 'versions=%s\n' "${installed#"$FORMULA "}"
    printf 'opt=%s\n' "$(readlink "$prefix/opt/$FORMULA" 2>/dev/null || true)"
    if [[ -L "$prefix/var/homebrew/linked/$FORMULA" ]]; then printf 'linked=1\n'; else printf 'linked=0\n'; fi
  } >"$RECORD.tmp" && mv -f "$RECORD.tmp" "$RECORD"
  local out
  out=$(bounded "$BLUMEOPS_LONG" "$BREW" uninstall --formula "$FORMULA" 2>&1) ||
    die "\`brew uninstall $FORMULA\` refused: $(printf '%s' "$out" | tail -n 2 | tr '\n' ' ')(the keg stays recorded)"
  log "uninstalled $FORMULA ${installed#"$FORMULA "} (its keg kept in $KEG for a rollback)"
}

step_delete() {
  local installed cellar prefix opt
  installed=$(versions)
  if [[ -n "$installed" ]]; then
    log "$FORMULA is installed ($installed): nothing to restore"
    return 0
  fi
  [[ -f "$KEG" ]] || { log "nothing recorded for $FORMULA: nothing to restore"; return 0; }
  cellar=$(bounded "$BLUMEOPS_QUICK" "$BREW" --cellar) || die "\`brew --cellar\` failed"
  prefix=$(bounded "$BLUMEOPS_QUICK" "$BREW" --prefix) || die "\`brew --prefix\` failed"
  bounded "$BLUMEOPS_LONG" "$TAR" -C "$cellar" -xf "$KEG" || die "cannot restore the keg of $FORMULA into $cellar"
  opt=$(record_value opt)
  if [[ -n "$opt" ]]; then
    mkdir -p "$prefix/opt" && ln -sfn "$opt" "$prefix/opt/$FORMULA" || die "cannot restore $prefix/opt/$FORMULA"
  fi
  if [[ "$(record_value linked)" == 1 ]]; then
    bounded "$BLUMEOPS_CHANGE" "$BREW" link "$FORMULA" >/dev/null || die "\`brew link $FORMULA\` failed"
  fi
  installed=$(versions)
  [[ "${installed#"$FORMULA "}" == "$(record_value versions)" ]] ||
    die "after restoring, brew lists '$installed', not $FORMULA $(record_value versions); the record stays"
  rm -rf "$RECORD_DIR"
  log "restored $FORMULA $(printf '%s' "${installed#"$FORMULA "}") as it was before phase 9"
}

run_action "$@"
