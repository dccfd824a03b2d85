# ---- components/host/scripts/borgmatic-config.sh: borgmatic's configuration and the borgmatic role's .pgpass ----
# create: put PGPASS_LINES in a marked block at the top of PGPASS_PATH (0600; the first matching line wins in
#         libpq, so older unmarked lines of the same host cannot shadow them); write CONFIG to CONFIG_PATH
#         (0600, directory 0700) after `borgmatic config validate` accepted it; the configuration found there
#         before is kept by commit_file (adopted, in ~/.blumeops/adopted).
# delete: remove the block from PGPASS_PATH (the file goes, or comes back as it was, when nothing else is in
#         it) and put the previous configuration back (or remove CONFIG_PATH).
# A PGPASS_PATH that is a symlink (a dotfiles checkout) is written through: the file it points to changes, the
# link stays a link. A block whose BEGIN or END line the operator removed or doubled is refused before anything
# is written: cutting at a lone BEGIN would drop every line after it.
# The nightly dump's pg_dump must be at least each database server's major (pg_dump refuses a newer server,
# and the day the cluster's image moves to 19 the backups would stop): each server that answers (as its
# borgmatic role, through the block just written) is compared, and an older pg_dump fails the step naming
# blumeops:tools.pgDump. A server that does not answer (the brew PostgreSQL while a rollback restores it) is
# named in a warning: borgmatic's nightly run and its metrics tell.
# Preamble: BORGMATIC CONFIG_PATH CONFIG PGPASS_PATH PGPASS_BLOCK PG_DUMP PSQL DATABASE_COUNT
#           DATABASE_<n>_HOST DATABASE_<n>_PORT DATABASE_<n>_NAME DATABASE_<n>_USER PGPASS_LINES (secret)

# resolved_path PATH: the file PATH names, through any symlinks (bash 3.2: no readlink -f on older macOS).
resolved_path() {
  local path=$1 link hops=0
  while [[ -L "$path" ]]; do
    hops=$((hops + 1))
    ((hops <= 40)) || die "$1 is a loop of symbolic links: fix it, then run again"
    link=$(readlink "$path") || die "cannot read the symbolic link $path"
    case "$link" in
    /*) path=$link ;;
    *) path="$(dirname "$path")/$link" ;;
    esac
  done
  printf '%s' "$path"
}

PGPASS_FILE=$(resolved_path "$PGPASS_PATH")

# check_block: the marked block of PGPASS_FILE is whole (one BEGIN, then one END) or absent.
check_block() {
  local marks
  [[ -f "$PGPASS_FILE" ]] || return 0
  marks=$(awk -v begin="# BEGIN $PGPASS_BLOCK" -v end="# END $PGPASS_BLOCK" '
    $0 == begin { printf "B" } $0 == end { printf "E" }' "$PGPASS_FILE") ||
    die "cannot read $PGPASS_FILE"
  [[ -z "$marks" || "$marks" == BE ]] ||
    die "the blumeops block of $PGPASS_FILE is broken (its BEGIN and END lines read '$marks', expected one" \
      "BEGIN then one END): put back the missing '# END $PGPASS_BLOCK' line after the block's lines, or" \
      "delete the block's lines, then run again; nothing was changed"
}

# pgpass_without_block: PGPASS_FILE's lines outside the marked block (nothing when it does not exist).
pgpass_without_block() {
  [[ -f "$PGPASS_FILE" ]] || return 0
  awk -v begin="# BEGIN $PGPASS_BLOCK" -v end="# END $PGPASS_BLOCK" '
    $0 == begin { skip = 1; next }
    $0 == end { skip = 0; next }
    !skip' "$PGPASS_FILE"
}

write_pgpass() {
  local rest content
  check_block
  rest=$(pgpass_without_block)
  content="# BEGIN $PGPASS_BLOCK
$PGPASS_LINES
# END $PGPASS_BLOCK"
  if [[ -n "$rest" ]]; then
    content="$content
$rest"
  fi
  # replace_if_changed stops the step (die) on a failed write, also inside this `if`
  if replace_if_changed "$PGPASS_FILE" 0600 "$content"; then
    if [[ "$PGPASS_FILE" == "$PGPASS_PATH" ]]; then
      log "wrote the borgmatic lines of $PGPASS_PATH"
    else
      log "wrote the borgmatic lines of $PGPASS_PATH (in $PGPASS_FILE, which it links to)"
    fi
  fi
  chmod 0600 "$PGPASS_FILE" || die "cannot chmod 0600 $PGPASS_FILE (read-only?)"
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

# check_dump_versions: PG_DUMP's major against each database server's that answers.
check_dump_versions() {
  local answer dump_major index host port name user number major var
  answer=$(bounded "$BLUMEOPS_QUICK" "$PG_DUMP" --version) || die "$PG_DUMP --version failed: is blumeops:tools.pgDump right?"
  dump_major=$(printf '%s' "$answer" | sed -n 's/^[^0-9]*\([0-9][0-9]*\).*/\1/p' | head -n 1)
  [[ -n "$dump_major" ]] || die "cannot read the version of $PG_DUMP ($answer)"
  index=1
  while ((index <= DATABASE_COUNT)); do
    var="DATABASE_${index}_HOST" && host=${!var}
    var="DATABASE_${index}_PORT" && port=${!var}
    var="DATABASE_${index}_NAME" && name=${!var}
    var="DATABASE_${index}_USER" && user=${!var}
    if number=$(PGPASSFILE="$PGPASS_FILE" bounded "$BLUMEOPS_QUICK" "$PSQL" -X -q -At -w -h "$host" -p "$port" \
      -U "$user" -d "$name" -c 'SHOW server_version_num'); then
      major=$((number / 10000))
      log "pg_dump $dump_major for $name on $host:$port (PostgreSQL $major)"
      ((dump_major >= major)) ||
        die "$PG_DUMP is PostgreSQL $dump_major, older than $name on $host:$port (PostgreSQL $major): borgmatic's nightly dump would fail. Set blumeops:tools.pgDump (and pgRestore, psql) to the client tools of PostgreSQL $major (brew install postgresql@$major), or keep the cluster's image on the tools' major"
    else
      log "WARNING: $name on $host:$port does not answer as $user: its pg_dump version is not compared now (the nightly run will tell)"
    fi
    index=$((index + 1))
  done
}

step_create() {
  write_pgpass
  write_config
  check_dump_versions
}

step_delete() {
  local rest
  if [[ -f "$PGPASS_FILE" ]]; then
    check_block
    rest=$(pgpass_without_block)
    if [[ -z "$rest" && "$PGPASS_FILE" == "$PGPASS_PATH" ]]; then
      release_file "$PGPASS_FILE"
    else
      # The operator's own lines stay as they are now (not as they were when the block went in); a linked
      # file stays, emptied of the block, so the link keeps pointing at something.
      if replace_if_changed "$PGPASS_FILE" 0600 "$rest"; then
        log "removed the borgmatic lines of $PGPASS_FILE"
      fi
      disown_file "$PGPASS_FILE"
    fi
  fi
  release_file "$CONFIG_PATH"
  remove_empty_dir "$(dirname "$CONFIG_PATH")"
}

run_action "$@"
