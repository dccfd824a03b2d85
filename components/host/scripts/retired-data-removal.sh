# ---- components/host/scripts/retired-data-removal.sh: data directories of retired services, removed ----
# create: removes each PATH_<n>_DIR that exists (the phase checked first that a borgmatic archive of the last day
#         holds it); one already gone is done. Nothing else is touched.
# delete: restores nothing (the data is in borgmatic's archives only): names each directory and the command that
#         brings it back.
# Preamble: PATH_COUNT PATH_<n>_DIR

step_create() {
  local index name path
  for ((index = 1; index <= PATH_COUNT; index++)); do
    name="PATH_${index}_DIR"
    path=${!name}
    [[ "$path" == /?* && "$path" != *"/.."* ]] || die "$path is not an absolute path"
    if [[ -e "$path" ]]; then
      rm -rf -- "$path" || die "cannot remove $path"
      log "removed $path (blumeops:cleanup.removeData; a borgmatic archive of the last day holds it)"
    else
      log "$path is gone already"
    fi
  done
}

step_delete() {
  local index name path
  for ((index = 1; index <= PATH_COUNT; index++)); do
    name="PATH_${index}_DIR"
    path=${!name}
    log "WARNING: $path was removed in phase 9 and is not restored by a rollback:" \
      "\`borgmatic extract --archive latest --path ${path#/}\` brings it back"
  done
}

run_action "$@"
