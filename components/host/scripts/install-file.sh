# ---- components/host/scripts/install-file.sh: one file a LaunchAgent runs (a metrics or serve script) ----
# create: replace FILE_PATH atomically with FILE_CONTENT (mode FILE_MODE) when it differs.
# delete: remove FILE_PATH (or put back the file that was there before the program first wrote it); a file
#         the program did not write is left alone.
# Preamble: FILE_PATH FILE_MODE FILE_CONTENT

step_create() {
  if replace_if_changed "$FILE_PATH" "$FILE_MODE" "$FILE_CONTENT"; then
    log "wrote $FILE_PATH"
  fi
}

step_delete() {
  release_own_file "$FILE_PATH" "$FILE_CONTENT"
}

run_action "$@"
