# ---- components/host/scripts/minikube-cluster.sh: the minikube cluster on Docker Desktop ----
# create: require Docker Desktop (`docker info`); read the existing profile's driver, runtime and size (an
#         unreadable or empty value stops the step: nothing is deleted on a guess); refuse a profile with
#         another driver unless it is one of LEGACY_DRIVERS, ALLOW_REPLACE is set and REPLACE_ARCHIVE names an
#         archive of REPLACE_REPOSITORY that holds one of REPLACE_DUMP_PATHS (borg list, bounded; every refusal
#         says what a replacement loses and the exact steps); then say what is lost and how the database
#         comes back (REPLACE_RESTORE), and delete it first;
#         never delete a docker profile (another runtime, or cpus/memory/disk that differ: minikube cannot
#         resize, so the step says what to do); install the containerd hosts.toml mirror files (first line
#         MANAGED_MARK) through minikube's file sync (MINIKUBE_HOME/files/..., copied into the node on every
#         start; copied into a running node with `minikube cp` when they change, after `minikube ssh -- sudo
#         mkdir -p` of their folder: kicbase ships only certs.d/docker.io and `minikube cp` creates no parents);
#         a copy into the node is pending (a marker in MINIKUBE_HOME/blumeops/node-copy-pending) from before
#         the file changes until the copy succeeded, so a failed copy is retried by the next run;
#         `minikube start` only when the profile is firmly Stopped (or absent): `minikube status` is asked up
#         to three times, and any other answer (Paused, Error, no answer) stops the step without a change;
#         then remove the managed hosts.toml of registries no longer mirrored, from the node (`minikube ssh`)
#         and from the file sync. Unmarked files are the operator's: kept, never replaced nor removed.
# delete: `minikube delete` the profile (the cluster and its data) and remove every managed mirror file.
# Preamble: PROFILE DRIVER CONTAINER_RUNTIME CPUS MEMORY_MB DISK_SIZE DISK_SIZE_MB APISERVER_NAMES (one per
#           line) APISERVER_PORT LISTEN_ADDRESS ALLOW_REPLACE LEGACY_DRIVERS (one per line) MANAGED_MARK
#           MINIKUBE_HOME MINIKUBE DOCKER PLUTIL STATUS_RETRY_DELAY MIRROR_COUNT MIRROR_<n>_REGISTRY MIRROR_<n>_TOML
#           (n = 1..MIRROR_COUNT) ALLOW_REPLACE_KEY CONFIRM_ARCHIVE_KEY REPLACE_ARCHIVE REPLACE_BORG REPLACE_JQ
#           REPLACE_REPOSITORY REPLACE_PASSCOMMAND REPLACE_DUMP_PATHS (one per line) REPLACE_RESTORE
#           REPLACE_LOCK_WAIT (the REPLACE_* but REPLACE_ARCHIVE are empty when no backup is known;
#           REPLACE_ARCHIVE is empty until the replacement is confirmed)

# minikube runs `docker` by name: give the SSH shell Docker Desktop's and minikube's directories.
PATH="$(dirname "$DOCKER"):$(dirname "$MINIKUBE"):$PATH"
export PATH MINIKUBE_HOME

CERTS_D="$MINIKUBE_HOME/files/etc/containerd/certs.d"
PROFILE_CONFIG="$MINIKUBE_HOME/profiles/$PROFILE/config.json"
NODE_CERTS_D=/etc/containerd/certs.d
PENDING_DIR="$MINIKUBE_HOME/blumeops/node-copy-pending"
STALE_MIRRORS=()

check_docker() {
  bounded "$BLUMEOPS_QUICK" "$DOCKER" info >/dev/null 2>&1 || die "Docker Desktop is not running (\`$DOCKER info\` failed)." \
    "It needs its GUI: install it with \`brew install --cask docker\`, open Docker Desktop once on this Mac to" \
    "finish its setup, give it 12 GB of memory (Settings > Resources), keep its Kubernetes disabled, turn on" \
    "'Start Docker Desktop when you sign in', then run pulumi up again"
}

# profile_value KEYPATH: the value at KEYPATH of the profile's config.json (read with its nulls blanked: see
# json_value). A value that cannot be read, is missing, null or empty stops the step: what is done to the
# profile (even deleting it) depends on these values.
profile_value() {
  local value
  value=$(json_value "$PROFILE_CONFIG" "$1")
  [[ -n "$value" ]] ||
    die "cannot read $1 from the minikube profile config $PROFILE_CONFIG (missing, null, empty or not JSON)," \
      "so the step stops without changing the profile. Check the file (\`$MINIKUBE profile list\`), then run" \
      "pulumi up again"
  printf '%s' "$value"
}

is_legacy_driver() {
  local legacy
  while IFS= read -r legacy; do
    if [[ -n "$legacy" && "$legacy" == "$1" ]]; then
      return 0
    fi
  done <<<"$LEGACY_DRIVERS"
  return 1
}

# host_status: the profile's host state. `minikube status` exits non-zero for a stopped host too, so its
# output decides: a known state is taken at once; no answer, or an unknown one, is asked again (up to three
# times, STATUS_RETRY_DELAY seconds apart) and then printed as Unknown, which never leads to a start.
host_status() {
  local status attempt
  if [[ ! -f "$PROFILE_CONFIG" ]]; then
    printf 'Nonexistent'
    return 0
  fi
  for attempt in 1 2 3; do
    status=$(bounded "$BLUMEOPS_CHANGE" "$MINIKUBE" status -p "$PROFILE" --format '{{.Host}}' 2>/dev/null) || true
    status=${status%%$'\n'*}
    case "$status" in
    Running | Stopped | Nonexistent | Paused | Starting | Stopping | Error | Saved)
      printf '%s' "$status"
      return 0
      ;;
    esac
    log "\`minikube status -p $PROFILE\` gave no known state ('$status', attempt $attempt)"
    [[ "$attempt" == 3 ]] || sleep "$STATUS_RETRY_DELAY"
  done
  printf 'Unknown'
}

# is_managed FILE: FILE's first line is MANAGED_MARK (the program wrote it). An empty file is nobody's:
# the program may write over it.
is_empty_file() {
  [[ -f "$1" && ! -s "$1" ]]
}

is_managed() {
  local first=""
  IFS= read -r first <"$1" || true
  [[ "$first" == "$MANAGED_MARK" ]]
}

wanted_mirror() {
  local n registry
  for ((n = 1; n <= MIRROR_COUNT; n++)); do
    registry="MIRROR_${n}_REGISTRY"
    if [[ "${!registry}" == "$1" ]]; then
      return 0
    fi
  done
  return 1
}

# managed_mirrors: the registries that have a managed hosts.toml in the file sync, one per line.
managed_mirrors() {
  local file
  for file in "$CERTS_D"/*/hosts.toml; do
    if [[ -f "$file" ]] && is_managed "$file"; then
      basename "$(dirname "$file")"
    fi
  done
}

find_stale_mirrors() {
  local registry
  while IFS= read -r registry; do
    if [[ -n "$registry" ]] && ! wanted_mirror "$registry"; then
      STALE_MIRRORS+=("$registry")
    fi
  done < <(managed_mirrors)
}

remove_mirror_files() {
  release_file "$CERTS_D/$1/hosts.toml"
  remove_empty_dir "$CERTS_D/$1"
}

# remove_stale_mirrors: from the running node first (the file sync only ever adds files), then from the file
# sync; a failure leaves them in the file sync, so the next run retries.
remove_stale_mirrors() {
  local registry
  for registry in "${STALE_MIRRORS[@]+"${STALE_MIRRORS[@]}"}"; do
    bounded "$BLUMEOPS_CHANGE" "$MINIKUBE" -p "$PROFILE" ssh -- sudo rm -f "$NODE_CERTS_D/$registry/hosts.toml" ||
      die "removing the $registry mirror from the node failed (\`minikube ssh\`); the next run retries"
    # an empty directory left in the node is harmless (containerd then uses the registry itself)
    bounded "$BLUMEOPS_CHANGE" "$MINIKUBE" -p "$PROFILE" ssh -- sudo rmdir --ignore-fail-on-non-empty \
      "$NODE_CERTS_D/$registry" || log "left the empty directory $NODE_CERTS_D/$registry in the node"
    rm -f "$PENDING_DIR/$registry" || die "cannot remove $PENDING_DIR/$registry"
    remove_mirror_files "$registry"
    log "removed the mirror of $registry (no longer an upstream)"
  done
}

# install_mirrors: write each wanted hosts.toml into the file sync. Before one changes, its copy into the
# node becomes pending (a marker removed only after `minikube cp` or a start succeeded). An unmarked,
# non-empty hosts.toml is the operator's own: kept as it is (with a warning), the mirror is not installed.
install_mirrors() {
  local n registry toml path
  for ((n = 1; n <= MIRROR_COUNT; n++)); do
    registry="MIRROR_${n}_REGISTRY"
    toml="MIRROR_${n}_TOML"
    path="$CERTS_D/${!registry}/hosts.toml"
    if [[ -f "$path" ]] && ! is_managed "$path" && ! is_empty_file "$path"; then
      log "WARNING: kept $path: it is not marked '$MANAGED_MARK' (the operator's own), so the ${!registry}" \
        "mirror through zot is not installed. Remove the file to let blumeops manage it"
      continue
    fi
    if ! same_content "$path" "${!toml}"; then
      ensure_dir "$PENDING_DIR"
      : >"$PENDING_DIR/${!registry}" || die "cannot write $PENDING_DIR/${!registry} (full or read-only?)"
      replace_if_changed "$path" 0644 "${!toml}" || true
      log "wrote $path"
    fi
  done
}

# copy_pending_mirrors: copy every hosts.toml whose copy into the running node is pending, its folder first.
copy_pending_mirrors() {
  local marker registry
  for marker in "$PENDING_DIR"/*; do
    [[ -e "$marker" ]] || continue
    registry=$(basename "$marker")
    if [[ ! -f "$CERTS_D/$registry/hosts.toml" ]]; then
      rm -f "$marker" || die "cannot remove $marker"
      continue
    fi
    bounded "$BLUMEOPS_CHANGE" "$MINIKUBE" -p "$PROFILE" ssh -- sudo mkdir -p "$NODE_CERTS_D/$registry" ||
      die "creating $NODE_CERTS_D/$registry in the node failed (\`minikube ssh\`); the next run retries"
    # hosts.toml changes need no containerd restart; file sync would only copy them on the next start.
    bounded "$BLUMEOPS_CHANGE" "$MINIKUBE" -p "$PROFILE" cp "$CERTS_D/$registry/hosts.toml" \
      "$NODE_CERTS_D/$registry/hosts.toml" ||
      die "\`minikube cp\` of the $registry mirror into the node failed; the next run retries"
    rm -f "$marker" || die "cannot remove $marker"
    log "copied the $registry mirror into the node"
  done
}

clear_pending_mirrors() {
  local marker
  for marker in "$PENDING_DIR"/*; do
    [[ ! -e "$marker" ]] || rm -f "$marker" || die "cannot remove $marker"
  done
}

remove_mirrors() {
  local registry dir
  while IFS= read -r registry; do
    [[ -z "$registry" ]] || remove_mirror_files "$registry"
  done < <(managed_mirrors)
  clear_pending_mirrors
  for dir in "$CERTS_D" "$MINIKUBE_HOME/files/etc/containerd" "$MINIKUBE_HOME/files/etc" "$MINIKUBE_HOME/files" \
    "$PENDING_DIR" "$MINIKUBE_HOME/blumeops"; do
    remove_empty_dir "$dir"
  done
}

# ---- replacing a legacy profile: what is lost, the steps, the archive the database comes back from ----

# dump_list: REPLACE_DUMP_PATHS on one line (a placeholder when no backup is known).
dump_list() {
  local path list=""
  while IFS= read -r path; do
    [[ -z "$path" ]] || list="${list:+$list or }$path"
  done <<<"$REPLACE_DUMP_PATHS"
  printf '%s' "${list:-<the path of the dump of the cluster database>}"
}

# replace_losses: what a replacement deletes, and how the database comes back.
replace_losses() {
  local restore=${REPLACE_RESTORE:-restore it from your last database dump}
  printf '%s' "Replacing the profile deletes every object of its cluster (every namespace with its workloads," \
    " Secrets, ConfigMaps, Services, Ingresses, custom resources, and every PersistentVolumeClaim with its" \
    " volume); pulumi up then creates the objects of the phases up to the stack's target again (when this" \
    " stack's state already lists cluster objects, run \`pulumi refresh\` after this update, then pulumi up" \
    " again, so that they are created anew). The PostgreSQL data of the cluster goes with its volume:" \
    " ${restore%.}."
}

# replace_how: the exact steps to a replacement (or to doing it by hand), for every refusal.
replace_how() {
  local repository=${REPLACE_REPOSITORY:-<repository>} borg=${REPLACE_BORG:-borg} env=""
  [[ -z "$REPLACE_PASSCOMMAND" ]] || env="BORG_PASSCOMMAND='$REPLACE_PASSCOMMAND' "
  printf '%s' "To replace it: (1) pick the archive the database will be restored from: \`$env$borg list" \
    " $repository\` (newest last), and check that it holds the dump: \`$env$borg list $repository::<archive>" \
    " 'sh:**/<path>'\` for $(dump_list); (2) \`pulumi config set $ALLOW_REPLACE_KEY true\` and" \
    " \`pulumi config set $CONFIRM_ARCHIVE_KEY <archive>\`; (3) run pulumi up again: the step checks the" \
    " archive before it deletes anything. Or back up what you need and \`minikube delete -p $PROFILE\` by hand."
}

# require_replace_archive: REPLACE_ARCHIVE is an archive of REPLACE_REPOSITORY and holds one of
# REPLACE_DUMP_PATHS (also below a prefix, as require_recent_archive matches), or the step stops, naming the
# setting and the fix. borg waits up to REPLACE_LOCK_WAIT s for the lock of a running backup: bounded at that
# plus BLUMEOPS_CHANGE; a hang stops the step, never reads as "no archive". Nothing is deleted before it passed.
require_replace_archive() {
  local listing start names path found="" bound=$((REPLACE_LOCK_WAIT + BLUMEOPS_CHANGE))
  [[ -n "$REPLACE_REPOSITORY" && -n "$REPLACE_BORG" && -n "$REPLACE_JQ" ]] ||
    die "$CONFIRM_ARCHIVE_KEY is set, but the step knows no borg repository to check it in; nothing was deleted"
  listing="$(blumeops_tmpdir)/replace-archives.json"
  BORG_PASSCOMMAND="$REPLACE_PASSCOMMAND" bounded "$bound" "$REPLACE_BORG" list \
    --lock-wait "$REPLACE_LOCK_WAIT" --json "$REPLACE_REPOSITORY" >"$listing" ||
    die "borg could not list $REPLACE_REPOSITORY (see above), so $CONFIRM_ARCHIVE_KEY '$REPLACE_ARCHIVE' is" \
      "unchecked and nothing was deleted: is the backup volume mounted, does the passcommand print the" \
      "passphrase? Then run pulumi up again"
  # shellcheck disable=SC2016  # a jq program: its $name is jq's
  start=$(bounded "$BLUMEOPS_QUICK" "$REPLACE_JQ" -r --arg name "$REPLACE_ARCHIVE" \
    '[.archives[] | select(.name == $name) | .start] | first // empty' "$listing") ||
    die "jq could not read the archive list of $REPLACE_REPOSITORY (or ${TMPDIR:-/tmp} is full); nothing was deleted"
  if [[ -z "$start" ]]; then
    names=$(bounded "$BLUMEOPS_QUICK" "$REPLACE_JQ" -r '[.archives[].name] | .[-3:] | join(", ")' "$listing") ||
      names="unreadable"
    die "$CONFIRM_ARCHIVE_KEY is '$REPLACE_ARCHIVE', but $REPLACE_REPOSITORY has no archive of that name" \
      "(its newest: ${names:-none}), so nothing was deleted. Set it to an archive that holds the cluster" \
      "database's dump: \`pulumi config set $CONFIRM_ARCHIVE_KEY <archive>\`, then run pulumi up again." \
      "$(replace_how)"
  fi
  while IFS= read -r path; do
    [[ -n "$path" ]] || continue
    BORG_PASSCOMMAND="$REPLACE_PASSCOMMAND" bounded "$bound" "$REPLACE_BORG" list \
      --lock-wait "$REPLACE_LOCK_WAIT" --short "$REPLACE_REPOSITORY::$REPLACE_ARCHIVE" "sh:**/$path" >"$listing" ||
      die "borg could not list the archive $REPLACE_ARCHIVE of $REPLACE_REPOSITORY (see above); nothing was deleted"
    if awk -v path="$path" '$0 == path || substr($0, length($0) - length(path)) == "/" path { found = 1 }
                            END { exit !found }' "$listing"; then
      found=$path
      break
    fi
  done <<<"$REPLACE_DUMP_PATHS"
  [[ -n "$found" ]] ||
    die "$CONFIRM_ARCHIVE_KEY is '$REPLACE_ARCHIVE', an archive of $REPLACE_REPOSITORY ($start) that holds" \
      "no dump of the cluster database ($(dump_list)), so nothing was deleted. Name an archive that holds it:" \
      "\`pulumi config set $CONFIRM_ARCHIVE_KEY <archive>\` (run the backup first if none does), then pulumi up" \
      "again. $(replace_how)"
  log "the archive $REPLACE_ARCHIVE ($start) of $REPLACE_REPOSITORY holds $found: the database comes back from it"
}

check_existing_profile() {
  local driver runtime cpus memory disk
  [[ -f "$PROFILE_CONFIG" ]] || return 0
  driver=$(profile_value Driver) || exit 1
  runtime=$(profile_value KubernetesConfig.ContainerRuntime) || exit 1
  if [[ "$driver" != "$DRIVER" ]]; then
    if ! is_legacy_driver "$driver"; then
      die "the minikube profile $PROFILE runs the '$driver' driver, which this step does not replace (it" \
        "replaces only $(tr '\n' ' ' <<<"$LEGACY_DRIVERS")profiles); this stack wants '$DRIVER' with" \
        "'$CONTAINER_RUNTIME'. Back up what you need, \`minikube delete -p $PROFILE\` by hand, and run pulumi" \
        "up again"
    fi
    if [[ "$ALLOW_REPLACE" != true ]]; then
      die "the minikube profile $PROFILE runs the '$driver' driver with the '$runtime' runtime; this stack" \
        "wants '$DRIVER' with '$CONTAINER_RUNTIME', so the step stops and deletes nothing. $(replace_losses)" \
        "$(replace_how)"
    fi
    if [[ -z "$REPLACE_ARCHIVE" ]]; then
      die "the minikube profile $PROFILE runs the legacy '$driver' driver and $ALLOW_REPLACE_KEY is true, but" \
        "$CONFIRM_ARCHIVE_KEY is not set: a replacement also needs the name of the borgmatic archive the" \
        "database will be restored from, so nothing was deleted. $(replace_losses) $(replace_how)"
    fi
    require_replace_archive
    log "REPLACING the minikube profile $PROFILE (legacy driver '$driver', runtime '$runtime'):" \
      "$ALLOW_REPLACE_KEY is true and $CONFIRM_ARCHIVE_KEY is '$REPLACE_ARCHIVE'. What is lost: $(replace_losses)"
    log "deleting the profile $PROFILE now (\`minikube delete -p $PROFILE\`), then starting it with the $DRIVER driver"
    bounded "$BLUMEOPS_LONG" "$MINIKUBE" delete -p "$PROFILE" || die "\`minikube delete -p $PROFILE\` failed"
    return 0
  fi
  if [[ "$runtime" != "$CONTAINER_RUNTIME" ]]; then
    die "the minikube profile $PROFILE runs the '$driver' driver with the '$runtime' runtime; this stack wants" \
      "'$CONTAINER_RUNTIME'. The program never deletes a $DRIVER profile (allowReplace covers legacy drivers" \
      "only): back up what you need (e.g. \`kubectl get all -A -o yaml\`, database dumps), then" \
      "\`minikube delete -p $PROFILE\` by hand and run pulumi up again"
  fi
  cpus=$(profile_value CPUs) || exit 1
  memory=$(profile_value Memory) || exit 1
  disk=$(profile_value DiskSize) || exit 1
  if [[ "$cpus" != "$CPUS" || "$memory" != "$MEMORY_MB" || "$disk" != "$DISK_SIZE_MB" ]]; then
    die "the minikube profile $PROFILE has cpus=$cpus memory=${memory}MB disk=${disk}MB, the stack wants" \
      "cpus=$CPUS memory=${MEMORY_MB}MB disk=${DISK_SIZE_MB}MB ($DISK_SIZE). minikube cannot resize an" \
      "existing cluster: set blumeops:minikube.cpus/memoryMb/diskSize back to the running values, or" \
      "\`minikube delete -p $PROFILE\` (this deletes the cluster and its data) and run pulumi up again"
  fi
}

start_flags() {
  local name
  printf '%s\n' "--profile=$PROFILE" "--driver=$DRIVER" "--container-runtime=$CONTAINER_RUNTIME" \
    "--cpus=$CPUS" "--memory=$MEMORY_MB" "--disk-size=$DISK_SIZE"
  while IFS= read -r name; do
    [[ -z "$name" ]] || printf '%s\n' "--apiserver-names=$name"
  done <<<"$APISERVER_NAMES"
  printf '%s\n' "--apiserver-port=$APISERVER_PORT" "--listen-address=$LISTEN_ADDRESS"
}

step_create() {
  local status flag flags=()
  check_docker
  check_existing_profile
  install_mirrors
  find_stale_mirrors
  status=$(host_status)
  if [[ "$status" == Running ]]; then
    copy_pending_mirrors
    remove_stale_mirrors
    return 0
  fi
  case "$status" in
  Stopped | Nonexistent) ;;
  *)
    die "the minikube profile $PROFILE is '$status' (not Running, not Stopped), so the step starts nothing." \
      "Look at \`$MINIKUBE status -p $PROFILE\` (\`minikube unpause -p $PROFILE\` for Paused; wait for" \
      "Starting/Stopping to finish), then run pulumi up again"
    ;;
  esac
  while IFS= read -r flag; do
    flags+=("$flag")
  done < <(start_flags)
  log "starting minikube profile $PROFILE (was: $status)"
  bounded "$BLUMEOPS_LONG" "$MINIKUBE" start "${flags[@]}" || die "\`minikube start -p $PROFILE\` failed: read its output above;" \
    "\`minikube logs -p $PROFILE\` has more"
  status=$(host_status)
  [[ "$status" == Running ]] || die "minikube profile $PROFILE is '$status' after start"
  # the start copied the file sync into the node: every pending copy is done
  clear_pending_mirrors
  remove_stale_mirrors
}

step_delete() {
  if [[ -f "$PROFILE_CONFIG" ]]; then
    bounded "$BLUMEOPS_LONG" "$MINIKUBE" delete -p "$PROFILE" || die "\`minikube delete -p $PROFILE\` failed"
    log "deleted the minikube profile $PROFILE"
  fi
  remove_mirrors
}

run_action "$@"
