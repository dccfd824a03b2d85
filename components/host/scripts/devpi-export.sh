# ---- components/host/scripts/devpi-export.sh: export the host's devpi server into an import image ----
# create: (1) refuses while anything answers at LISTEN_URL/+api: the legacy devpi-server must be stopped (its
#         retirement runs first); a LISTEN_URL that neither answers nor refuses the connection decides nothing
#         and stops the step. SERVER_DIR must be a devpi server directory (.serverversion).
#         (2) The export: WORK_DIR/export, finished when WORK_DIR/export.done names SERVER_DIR and the
#         fingerprint of its top-level files (shasum -a 256: .sqlite holds every change). A finished export of an
#         unchanged server is reused; otherwise DEVPI_EXPORT (the host's devpi-export, of the devpi-server that
#         runs on SERVER_DIR; with PYTHONHASHSEED=0, so that one server always gives the same bytes) runs on a
#         shadow of SERVER_DIR in scratch: its top-level entries copied, +files a symlink to the original's,
#         devpi-web's .indices left out, so whatever devpi-export writes (it rewrites .nodeinfo) lands in the copy.
#         It writes into WORK_DIR/.export-staging, renamed to WORK_DIR/export (atomic) only when dataindex.json
#         exists and SERVER_DIR's fingerprint did not change meanwhile; then export.done.
#         (3) The import image: the context of the preamble (FILE_<n>_NAME / FILE_<n>_TEXT: the devpi image's
#         files, its Dockerfile ending in the COPY of import/ to /import) plus the export as import/; its tag is
#         the content tag of that whole context (lib.sh tree_content_tag): the same export gives the same tag.
#         When REGISTRY has REPOSITORY:<tag>, nothing is built; otherwise it is built for PLATFORM and pushed
#         (lib.sh build_push_image). Both builds start from the same context files, so buildx's cache serves the
#         devpi image's layers (Docker Desktop cannot pull from the registry on the host's loopback).
#         (4) Prints PULL_REGISTRY/REPOSITORY:<tag> as the last line of stdout (nothing else goes to stdout).
# delete: removes WORK_DIR/export, export.done and any staging left by a killed run (the rollback: a re-raise
#         exports the server as it is then). SERVER_DIR is never written, by create nor delete; the image stays
#         in the registry.
# Preamble: DEVPI_EXPORT SERVER_DIR WORK_DIR LISTEN_URL DOCKER CURL JQ SHASUM TAR REGISTRY PULL_REGISTRY REPOSITORY
#           PLATFORM FILE_COUNT FILE_<n>_NAME FILE_<n>_TEXT

EXPORT="$WORK_DIR/export"
DONE="$WORK_DIR/export.done"
STAGING="$WORK_DIR/.export-staging"

# server_fingerprint: shasum -a 256 of SERVER_DIR's top-level files (.sqlite, .serverversion, ...), one per line.
server_fingerprint() {
  local entry files=()
  for entry in "$SERVER_DIR"/* "$SERVER_DIR"/.[!.]* "$SERVER_DIR"/..?*; do
    [[ -f "$entry" && ! -L "$entry" ]] || continue
    files+=("${entry##*/}")
  done
  ((${#files[@]})) || die "$SERVER_DIR holds no files"
  (cd "$SERVER_DIR" && bounded "$BLUMEOPS_CHANGE" "$SHASUM" -a 256 "${files[@]}") ||
    die "cannot read the files of $SERVER_DIR (\`shasum -a 256\` failed); nothing was exported"
}

# shadow_server DIR: a copy of SERVER_DIR's top-level entries in DIR, +files a symlink to the original's.
shadow_server() {
  local shadow=$1 entry name
  mkdir -m 0700 "$shadow" || die "cannot create $shadow (is ${TMPDIR:-/tmp} full?); nothing was exported"
  for entry in "$SERVER_DIR"/* "$SERVER_DIR"/.[!.]* "$SERVER_DIR"/..?*; do
    [[ -e "$entry" || -L "$entry" ]] || continue
    name=${entry##*/}
    case "$name" in
    +files) ln -s "$entry" "$shadow/+files" || die "cannot link $shadow/+files" ;;
    .indices) ;; # devpi-web's search index: not exported, rebuilt by the importing server
    *)
      bounded "$BLUMEOPS_LONG" cp -pR "$entry" "$shadow/" ||
        die "cannot copy $entry to $shadow (is ${TMPDIR:-/tmp} full?); nothing was exported"
      ;;
    esac
  done
}

take_export() {
  local fingerprint=$1 shadow after
  rm -f "$DONE" || die "cannot remove $DONE"
  rm -rf "$EXPORT" "$STAGING" || die "cannot remove the old export in $WORK_DIR"
  shadow="$(blumeops_tmpdir)/serverdir"
  shadow_server "$shadow"
  trap 'rm -rf "$STAGING"; cleanup_temps' EXIT
  log "exporting $SERVER_DIR with $DEVPI_EXPORT"
  # a fixed hash seed: devpi-export writes dataindex.json in the order of Python's dicts and sets, which
  # otherwise differs from run to run, and with it the tag of an unchanged server
  PYTHONHASHSEED=0 bounded "$BLUMEOPS_LONG" "$DEVPI_EXPORT" --serverdir "$shadow" "$STAGING" >&2 ||
    die "\`devpi-export --serverdir $SERVER_DIR\` failed (its output is above; is $WORK_DIR full or read-only?);" \
      "nothing was exported"
  [[ -f "$STAGING/dataindex.json" ]] || die "devpi-export wrote no dataindex.json into $STAGING; nothing was exported"
  after=$(server_fingerprint)
  [[ "$after" == "$fingerprint" ]] ||
    die "$SERVER_DIR changed during the export (is the legacy devpi-server running again?); nothing was exported"
  mv "$STAGING" "$EXPORT" || die "cannot move $STAGING to $EXPORT; nothing was exported"
  trap cleanup_temps EXIT
  stage_file "$DONE" 0600 "$SERVER_DIR"$'\n'"$fingerprint"
  mv -f "$(staged_path "$DONE")" "$DONE" || die "cannot write $DONE (read-only?); the next run exports again"
  log "exported $SERVER_DIR into $EXPORT"
}

step_create() {
  local fingerprint context tag
  legacy_stopped "$LISTEN_URL/+api" "the legacy devpi-server on $SERVER_DIR" exported
  [[ -f "$SERVER_DIR/.serverversion" ]] ||
    die "$SERVER_DIR is not a devpi server directory (no .serverversion); nothing was exported"
  ensure_dir "$WORK_DIR"
  fingerprint=$(server_fingerprint)
  if [[ -d "$EXPORT" ]] && same_content "$DONE" "$SERVER_DIR"$'\n'"$fingerprint"; then
    log "$EXPORT is the export of $SERVER_DIR as it is: not exporting again"
  else
    take_export "$fingerprint"
  fi
  context="$(blumeops_tmpdir)/import-context"
  write_image_context "$context"
  bounded "$BLUMEOPS_LONG" cp -pR "$EXPORT" "$context/import" ||
    die "cannot copy $EXPORT into the build context (is ${TMPDIR:-/tmp} full?); nothing was built"
  tag=$(tree_content_tag "$context")
  build_push_image "$context" "$tag"
  printf '%s\n' "$PULL_REGISTRY/$REPOSITORY:$tag"
}

step_delete() {
  rm -f "$DONE" || die "cannot remove $DONE (read-only?); the next run retries"
  rm -rf "$EXPORT" "$STAGING" || die "cannot remove $EXPORT (read-only?); the next run retries"
  remove_empty_dir "$WORK_DIR"
  log "removed the export in $WORK_DIR; $SERVER_DIR was not touched; $REGISTRY/$REPOSITORY stays in the registry"
}

run_action "$@"
