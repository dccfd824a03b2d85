# ---- components/host/scripts/forgejo-move.sh: the brew forge's data, verified, into the cluster forge's claim ----
# create: (1) refuses while anything answers at LEGACY_URL (the brew forgejo must be stopped: its retirement runs
#         first, so nothing writes the database or a repository under the copy).
#         (2) The snapshot: LEGACY_DATA (the forge's APP_DATA_PATH: forgejo.db, forgejo-repositories/, ssh/ with
#         the built-in SSH server's host keys, avatars, attachments, lfs, ...) copied into WORK_DIR/snapshot with
#         rsync (tmp/ left out); LEGACY_DATA itself is only read. Verified there before anything reaches the
#         cluster: `PRAGMA integrity_check` of DB_FILE answers ok; every repository of its `repository` table
#         (owner/name, as Forgejo lays them out, lower case) is a bare repository under REPO_DIR, and their
#         counts agree; `git fsck` of every one passes. The manifest (sha256 of every file) and its digest are
#         kept beside the snapshot.
#         (3) Into the claim: the claim's volume is read from the API (NAMESPACE/CLAIM -> its PersistentVolume ->
#         spec.hostPath.path: minikube's hostpath provisioner keeps it inside the node, the container PROFILE of
#         Docker Desktop) and the snapshot goes there with `docker cp` into a staging directory, is owned by
#         OWNER_UID:OWNER_UID (the image's user), and is checked inside the node: the same manifest, every file
#         owned so. Only then it is moved into place and the marker .blumeops-import (the manifest's digest)
#         written. A claim whose marker names this snapshot's digest is left as it is (a second run copies
#         nothing). A claim that holds a forge already (a re-raise after a rollback during which the brew forge
#         ran) is handled as REIMPORT says: refuse (default: say so and stop), keep (the cluster forge's data
#         stays; what the brew forge got meanwhile is not carried), or replace (the claim's data moved aside to
#         .blumeops-previous-<time> inside the claim, never deleted, and the snapshot copied).
# delete: removes WORK_DIR's snapshot; the claim's data stays (the claim is kept by a rollback) and LEGACY_DATA
#         was never written, so the restored brew forge serves what it had.
# Preamble: LEGACY_DATA LEGACY_URL WORK_DIR DB_FILE REPO_DIR PROFILE NAMESPACE CLAIM OWNER_UID REIMPORT
#           DOCKER KUBECTL KUBECONFIG_PATH CURL RSYNC SQLITE3 GIT SHASUM

SNAPSHOT="$WORK_DIR/snapshot"
MANIFEST="$WORK_DIR/manifest"
MARKER=.blumeops-import

# verify_forge DIR: the database is whole, its repositories are all there as bare repositories and pass fsck.
# Prints the number of repositories.
verify_forge() {
  local dir=$1 answer listed repo count=0 missing=() extra=() out
  [[ -f "$dir/$DB_FILE" ]] || die "$dir holds no $DB_FILE: LEGACY_DATA must be the forge's APP_DATA_PATH" \
    "(blumeops:forgejo.legacyData); nothing was copied"
  answer=$(bounded "$BLUMEOPS_CHANGE" "$SQLITE3" -readonly "$dir/$DB_FILE" 'PRAGMA integrity_check;' 2>&1) ||
    die "$DB_FILE cannot be read by sqlite3 ($(printf '%s' "$answer" | tail -n 1)): the database is damaged or" \
      "not SQLite; restore it from the last borgmatic archive before moving the forge; nothing was copied"
  [[ "$answer" == ok ]] || die "PRAGMA integrity_check of $DB_FILE reports: $(printf '%s' "$answer" | head -n 3 |
    tr '\n' ' ')- the database is damaged; restore it from the last borgmatic archive; nothing was copied"
  listed=$(bounded "$BLUMEOPS_CHANGE" "$SQLITE3" -readonly "$dir/$DB_FILE" \
    'SELECT lower(u.lower_name) || '"'/'"' || lower(r.lower_name) FROM repository r JOIN "user" u ON u.id = r.owner_id ORDER BY 1;' 2>&1) ||
    die "cannot list the repositories of $DB_FILE ($(printf '%s' "$listed" | tail -n 1)); nothing was copied"
  while IFS= read -r repo; do
    [[ -n "$repo" ]] || continue
    count=$((count + 1))
    if [[ ! -f "$dir/$REPO_DIR/$repo.git/HEAD" ]]; then
      missing+=("$repo")
      continue
    fi
    out=$(bounded "$BLUMEOPS_LONG" "$GIT" --git-dir="$dir/$REPO_DIR/$repo.git" fsck --no-progress --no-dangling 2>&1) ||
      die "git fsck of $repo fails: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')- the repository is damaged" \
        "on the host; repair it (or restore it from the last borgmatic archive) first; nothing was copied"
  done <<<"$listed"
  ((${#missing[@]} == 0)) || die "${#missing[@]} repositories of the database are not in $REPO_DIR:" \
    "${missing[*]:0:10}; the forge would show them broken; restore them first; nothing was copied"
  while IFS= read -r repo; do
    repo=${repo#"$dir/$REPO_DIR/"}
    repo=${repo%.git}
    grep -Fxq -- "$repo" <<<"$listed" || extra+=("$repo")
  done < <(find "$dir/$REPO_DIR" -mindepth 2 -maxdepth 2 -type d -name '*.git' 2>/dev/null)
  ((${#extra[@]} == 0)) || log "WARNING: ${#extra[@]} bare repositories are in no row of the database (copied as" \
    "they are, Forgejo ignores them): ${extra[*]:0:10}"
  printf '%s' "$count"
}

# manifest DIR: "sha256  ./path" of every file under DIR but the marker, sorted by path.
manifest() {
  (cd "$1" && find . -type f ! -name "$MARKER" -print0 | xargs -0 "$SHASUM" -a 256 | LC_ALL=C sort -k 2) ||
    die "cannot checksum the files of $1"
}

# node ARGS...: a command inside the minikube node (its own tools: GNU coreutils), as root.
node() { bounded "$BLUMEOPS_LONG" "$DOCKER" exec "$PROFILE" "$@"; }

# claim_path: where the claim's volume lives in the node.
claim_path() {
  local volume path
  volume=$(bounded "$BLUMEOPS_QUICK" "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" --context "$PROFILE" -n "$NAMESPACE" \
    get pvc "$CLAIM" -o 'jsonpath={.spec.volumeName}') || die "cannot read the claim $NAMESPACE/$CLAIM from the API"
  [[ -n "$volume" ]] || die "the claim $NAMESPACE/$CLAIM is not bound to a volume yet; run again once it is"
  path=$(bounded "$BLUMEOPS_QUICK" "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" --context "$PROFILE" \
    get pv "$volume" -o 'jsonpath={.spec.hostPath.path}') || die "cannot read the volume $volume from the API"
  [[ "$path" == /* ]] || die "the volume $volume of $NAMESPACE/$CLAIM is not a hostPath volume of minikube's" \
    "provisioner (storage class standard): the host cannot copy into it; nothing was copied"
  printf '%s' "$path"
}

# owned_in_node DIR: every entry under DIR (in the node) is OWNER_UID's, or the step stops naming some.
owned_in_node() {
  local wrong
  wrong=$(node find "$1" \( ! -uid "$OWNER_UID" -o ! -gid "$OWNER_UID" \) -print) ||
    die "cannot list the owners of $1 in the node"
  [[ -z "$wrong" ]] || die "$(printf '%s\n' "$wrong" | wc -l | tr -d ' ') files in the claim are not owned by" \
    "$OWNER_UID:$OWNER_UID (e.g. $(printf '%s' "$wrong" | head -n 3 | tr '\n' ' ')): the forge runs as uid" \
    "$OWNER_UID and could not write them; nothing was put in place"
}

# node_manifest DIR: the manifest of DIR computed inside the node, in the host's format ("sha256  ./path").
node_manifest() {
  local out line
  out=$(node find "$1" -type f ! -name "$MARKER" -exec sha256sum {} +) || die "cannot checksum $1 in the node"
  while IFS= read -r line; do
    if [[ -n "$line" ]]; then
      printf '%s  ./%s\n' "${line%%  *}" "${line#*  "$1"/}"
    fi
  done <<<"$out" | LC_ALL=C sort -k 2
}

step_create() {
  local count digest path staging current aside
  legacy_stopped "$LEGACY_URL/api/healthz" "the brew forgejo (it would write under the copy)" copied
  [[ -d "$LEGACY_DATA" ]] || die "$LEGACY_DATA does not exist: set blumeops:forgejo.legacyData to the forge's" \
    "APP_DATA_PATH (app.ini [server]); nothing was copied"
  require_rsync_3
  ensure_dir "$WORK_DIR"
  bounded "$BLUMEOPS_LONG" "$RSYNC" -a --delete --exclude=/tmp/ "$LEGACY_DATA/" "$SNAPSHOT/" ||
    die "cannot copy $LEGACY_DATA to $SNAPSHOT (is the disk full?); nothing reached the cluster"
  count=$(verify_forge "$SNAPSHOT")
  manifest "$SNAPSHOT" >"$MANIFEST.tmp" && mv -f "$MANIFEST.tmp" "$MANIFEST"
  digest=$("$SHASUM" -a 256 <"$MANIFEST")
  digest=${digest%% *}
  log "the snapshot of $LEGACY_DATA is whole: $count repositories, fsck clean, $(wc -l <"$MANIFEST" | tr -d ' ') files"

  path=$(claim_path)
  current=$(node cat "$path/$MARKER" 2>/dev/null) || current=""
  if [[ "$current" == "$digest" ]]; then
    owned_in_node "$path"
    log "the claim already holds this snapshot ($digest): nothing to copy"
    return 0
  fi
  if node test -e "$path/$DB_FILE"; then
    case "$REIMPORT" in
    keep)
      log "WARNING: the claim holds a forge already (import ${current:-unmarked}); blumeops:forgejo.reimport is" \
        "keep: it stays, and what the brew forge got since is NOT carried (it is still in $LEGACY_DATA)"
      owned_in_node "$path"
      return 0
      ;;
    replace)
      aside="$path/.blumeops-previous-$(date -u +%Y%m%dT%H%M%SZ)"
      node mkdir "$aside" || die "cannot create $aside in the node"
      node chown "$OWNER_UID:$OWNER_UID" "$aside" || die "cannot chown $aside in the node"
      node find "$path" -mindepth 1 -maxdepth 1 ! -name '.blumeops-previous-*' -exec mv -t "$aside" {} + ||
        die "cannot move the claim's data aside to $aside"
      log "moved the cluster forge's data aside to $aside (blumeops:forgejo.reimport is replace; nothing deleted)"
      ;;
    *)
      die "the claim $NAMESPACE/$CLAIM holds a forge already (import ${current:-unmarked}) and the host's forge" \
        "changed since: set blumeops:forgejo.reimport to keep (the cluster's data stays) or replace (it is moved" \
        "aside in the claim and the host's copied); nothing was copied"
      ;;
    esac
  fi
  staging="$path/.blumeops-staging"
  node rm -rf "$staging" || die "cannot clear $staging in the node"
  bounded "$BLUMEOPS_LONG" "$DOCKER" cp "$SNAPSHOT/." "$PROFILE:$staging" ||
    die "\`docker cp\` of the snapshot into the node failed; nothing was put in place, the next run copies again"
  node chown -R "$OWNER_UID:$OWNER_UID" "$staging" || die "cannot chown $staging to $OWNER_UID in the node"
  owned_in_node "$staging"
  if [[ "$(node_manifest "$staging")" != "$(cat "$MANIFEST")" ]]; then
    die "the copy in the node differs from the snapshot (checksums): nothing was put in place, run again"
  fi
  node find "$staging" -mindepth 1 -maxdepth 1 -exec mv -t "$path" {} + || die "cannot move the copy into $path"
  node rmdir "$staging" || die "cannot remove $staging"
  printf '%s\n' "$digest" >"$WORK_DIR/$MARKER"
  bounded "$BLUMEOPS_LONG" "$DOCKER" cp "$WORK_DIR/$MARKER" "$PROFILE:$path/$MARKER" ||
    die "cannot write the marker in the claim; the data is in place, the next run checks it again"
  # the volume's own directory too: the provisioner made it root's, and the forge writes in /data
  node chown "$OWNER_UID:$OWNER_UID" "$path" "$path/$MARKER" || die "cannot chown $path to $OWNER_UID in the node"
  owned_in_node "$path"
  log "moved the forge into $NAMESPACE/$CLAIM: $count repositories, verified by checksum inside the node"
}

step_delete() {
  rm -rf "$SNAPSHOT" "$MANIFEST" "$WORK_DIR/$MARKER"
  log "removed the snapshot; the claim $NAMESPACE/$CLAIM keeps its data and $LEGACY_DATA was never written"
}

run_action "$@"
