# ---- components/host/scripts/pg-import.sh: the legacy database moves into the cluster's PostgreSQL ----
# create: dump SOURCE_* (custom format, a dated file under DUMP_DIR) and restore it into TARGET_* as
#         TARGET_USER with every object created by OWNER (pg_restore --no-owner --role), then compare the
#         exact row count of every table of SCHEMA on both sides and make OWNER own every table, sequence,
#         view and type of SCHEMA. Never overwrites: a target that has user tables is only compared
#         (equal counts: already done; otherwise it fails naming the tables that differ), or, when this
#         step imported it before (IMPORTED_MARKER), left to the application that owns it now.
# delete: drops nothing (the cluster database is protected state) and says so.
# Every psql call is bounded by BLUMEOPS_QUICK (queries) or BLUMEOPS_CHANGE (ownership changes), pg_dump and
# pg_restore by BLUMEOPS_CHANGE: the legacy database is a feed reader's (tens of MB; a dump or a restore over
# loopback/the tailnet takes seconds). A hang stops the step; it is never read as "no tables".
# Preamble: PG_DUMP PG_RESTORE PSQL SOURCE_HOST SOURCE_PORT SOURCE_USER SOURCE_DATABASE TARGET_HOST TARGET_PORT
#           TARGET_USER TARGET_DATABASE OWNER SCHEMA DUMP_DIR IMPORTED_MARKER
#           SOURCE_PASSWORD TARGET_PASSWORD (secrets, or empty: written only into a temporary PGPASSFILE)

# pgpass_field VALUE: VALUE with the .pgpass format's \ and : escaped.
pgpass_field() {
  local value=${1//\\/\\\\}
  printf '%s' "${value//:/\\:}"
}

# open_pgpass: a PGPASSFILE (0600, removed on exit) with the passwords this run needs. printf is a bash
# builtin: the passwords reach no process's arguments or environment.
open_pgpass() {
  local file
  file=$(mktemp "${TMPDIR:-/tmp}/blumeops-pgpass.XXXXXX") || die "cannot create a temporary PGPASSFILE in ${TMPDIR:-/tmp}"
  BLUMEOPS_TEMPS+=("$file")
  chmod 0600 "$file" || die "cannot chmod 0600 $file (read-only?)"
  {
    if [[ -n "$SOURCE_PASSWORD" ]]; then
      printf '%s:%s:%s:%s:%s\n' "$(pgpass_field "$SOURCE_HOST")" "$SOURCE_PORT" \
        "$(pgpass_field "$SOURCE_DATABASE")" "$(pgpass_field "$SOURCE_USER")" "$(pgpass_field "$SOURCE_PASSWORD")"
    fi
    if [[ -n "$TARGET_PASSWORD" ]]; then
      printf '%s:%s:%s:%s:%s\n' "$(pgpass_field "$TARGET_HOST")" "$TARGET_PORT" \
        "$(pgpass_field "$TARGET_DATABASE")" "$(pgpass_field "$TARGET_USER")" "$(pgpass_field "$TARGET_PASSWORD")"
    fi
  } >"$file" || die "cannot write the temporary PGPASSFILE $file (is ${TMPDIR:-/tmp} full?)"
  export PGPASSFILE="$file"
}

# sql_file: a new scratch file for an SQL text (its path is printed). bounded gives a command /dev/null as
# stdin, so psql reads its SQL with -f (variables are interpolated as from stdin).
sql_file() {
  mktemp "$(blumeops_tmpdir)/query.XXXXXX" || die "cannot create a scratch file in ${TMPDIR:-/tmp}"
}

# write_sql FILE: this function's stdin (a here-document) into FILE, checked.
write_sql() {
  cat >"$1" || die "cannot write the scratch file $1 (is ${TMPDIR:-/tmp} full?)"
}

# on_source / on_target BOUND ARGS...: psql on that side, unaligned, no prompt (-w), stop on the first error,
# bounded by BOUND seconds.
on_source() {
  local limit=$1
  shift
  bounded "$limit" "$PSQL" -X -q -At -w -v ON_ERROR_STOP=1 -h "$SOURCE_HOST" -p "$SOURCE_PORT" -U "$SOURCE_USER" \
    -d "$SOURCE_DATABASE" "$@"
}
on_target() {
  local limit=$1
  shift
  bounded "$limit" "$PSQL" -X -q -At -w -v ON_ERROR_STOP=1 -h "$TARGET_HOST" -p "$TARGET_PORT" -U "$TARGET_USER" \
    -d "$TARGET_DATABASE" "$@"
}

# row_counts SIDE: "table|rows" for every table of SCHEMA, exact (count(*), not the planner's estimate).
row_counts() {
  local query
  query=$(sql_file)
  write_sql "$query" <<'SQL'
SELECT c.relname || '|' || (xpath('/row/n/text()', query_to_xml(
         format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :'schema' AND c.relkind IN ('r', 'p');
SQL
  "on_$1" "$BLUMEOPS_QUICK" -v schema="$SCHEMA" -f "$query" | LC_ALL=C sort
}

# user_tables: the target's tables outside the system schemas, one per line.
user_tables() {
  local query
  query=$(sql_file)
  write_sql "$query" <<'SQL'
SELECT n.nspname || '.' || c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1;
SQL
  on_target "$BLUMEOPS_QUICK" -f "$query"
}

# compare_counts SOURCE_FILE TARGET_FILE: print "table source target" for every table; fail (status 1)
# when a table is missing on one side or its counts differ.
compare_counts() {
  LC_ALL=C join -t'|' -a1 -a2 -e missing -o 0,1.2,2.2 "$1" "$2" | awk -F'|' '
    BEGIN { printf "%-32s %12s %12s\n", "table", "source", "target"; bad = 0 }
    { printf "%-32s %12s %12s%s\n", $1, $2, $3, ($2 == $3 ? "" : "   <- differs"); if ($2 != $3) bad = 1 }
    END { exit bad }'
}

# differing_tables SOURCE_FILE TARGET_FILE: the names of the tables whose counts differ, comma-separated.
differing_tables() {
  LC_ALL=C join -t'|' -a1 -a2 -e missing -o 0,1.2,2.2 "$1" "$2" \
    | awk -F'|' '$2 != $3 { printf "%s%s (source %s, target %s)", sep, $1, $2, $3; sep = ", " }'
}

# own_schema: OWNER owns every table (with its indexes and owned sequences), view, materialized view,
# sequence and type of SCHEMA on the target. Changes only what another role owns; data stays untouched.
own_schema() {
  local query
  query=$(sql_file)
  write_sql "$query" <<'SQL'
SELECT set_config('blumeops.schema', :'schema', false), set_config('blumeops.owner', :'owner', false) \gset
DO $own$
DECLARE
  schema text := current_setting('blumeops.schema');
  owner text := current_setting('blumeops.owner');
  owner_oid oid := (SELECT oid FROM pg_roles WHERE rolname = owner);
  object record;
BEGIN
  IF owner_oid IS NULL THEN
    RAISE EXCEPTION 'role % does not exist on the target', owner;
  END IF;
  FOR object IN
      SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = schema AND c.relowner <> owner_oid AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
       ORDER BY CASE WHEN c.relkind IN ('r', 'p') THEN 0 ELSE 1 END, c.relname LOOP
    -- a table's owned sequences follow it: skip them once their table moved
    CONTINUE WHEN (SELECT relowner FROM pg_class WHERE relname = object.relname
                     AND relnamespace = schema::regnamespace) = owner_oid;
    EXECUTE format('ALTER %s %I.%I OWNER TO %I',
                   CASE object.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                       WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                   schema, object.relname, owner);
  END LOOP;
  FOR object IN
      SELECT t.typname, t.typtype FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
       WHERE n.nspname = schema AND t.typowner <> owner_oid AND t.typcategory <> 'A'
         AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c') LOOP
    EXECUTE format('ALTER %s %I.%I OWNER TO %I', CASE object.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                   schema, object.typname, owner);
  END LOOP;
END
$own$;
SQL
  on_target "$BLUMEOPS_CHANGE" -v schema="$SCHEMA" -v owner="$OWNER" -f "$query"
}

# foreign_owned: every relation and type of SCHEMA on the target that OWNER does not own ("kind name owner").
foreign_owned() {
  local query
  query=$(sql_file)
  write_sql "$query" <<'SQL'
SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                      WHEN 'm' THEN 'materialized-view' WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index'
                      WHEN 'I' THEN 'index' WHEN 'c' THEN 'type' ELSE c.relkind::text END
       || ' ' || c.relname || ' (owner ' || pg_get_userbyid(c.relowner) || ')'
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :'schema' AND pg_get_userbyid(c.relowner) <> :'owner'
UNION ALL
SELECT 'type ' || t.typname || ' (owner ' || pg_get_userbyid(t.typowner) || ')'
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname = :'schema' AND pg_get_userbyid(t.typowner) <> :'owner' AND t.typrelid = 0
ORDER BY 1;
SQL
  on_target "$BLUMEOPS_QUICK" -v schema="$SCHEMA" -v owner="$OWNER" -f "$query"
}

ensure_owned_by_owner() {
  local foreign
  own_schema || die "could not make $OWNER own the objects of $SCHEMA in $TARGET_DATABASE on $TARGET_HOST"
  foreign=$(foreign_owned) || die "could not read the owners of $SCHEMA in $TARGET_DATABASE on $TARGET_HOST"
  if [[ -n "$foreign" ]]; then
    die "$OWNER does not own everything in $SCHEMA of $TARGET_DATABASE on $TARGET_HOST: $(printf '%s' "$foreign" | tr '\n' ';')"
  fi
  printf 'every table, sequence, view and type in %s of %s is owned by %s\n' "$SCHEMA" "$TARGET_DATABASE" "$OWNER"
}

check_tools() {
  local tool
  for tool in "$PG_DUMP" "$PG_RESTORE" "$PSQL"; do
    [[ -x "$tool" ]] || die "$tool is missing or not executable: install the PostgreSQL client tools (brew install postgresql@18) or correct the tool path in the stack's settings"
  done
}

reach() {
  "on_$1" "$BLUMEOPS_QUICK" -c 'SELECT 1' >/dev/null \
    || die "cannot connect to the $1 database $2 (see psql's message above): is the server running and reachable, and is the password in the stack's secrets right?"
}

save_counts() {
  local file
  file=$(mktemp "$(blumeops_tmpdir)/counts.XXXXXX") || die "cannot create a scratch file in ${TMPDIR:-/tmp}"
  row_counts "$1" >"$file" || die "could not count the rows of $SCHEMA on the $1 side (or ${TMPDIR:-/tmp} is full)"
  printf '%s' "$file"
}

# write_marker HEADLINE COUNTS_FILE: IMPORTED_MARKER (0600) holds HEADLINE and the row counts, checked.
write_marker() {
  local counts
  counts=$(cat "$2") || die "cannot read $2"
  stage_file "$IMPORTED_MARKER" 0600 "$1
$counts"
  commit_file "$IMPORTED_MARKER"
}

target_name() {
  printf '%s on %s:%s' "$TARGET_DATABASE" "$TARGET_HOST" "$TARGET_PORT"
}

step_create() {
  local tables source_counts target_counts stamp dump partial
  check_tools
  open_pgpass
  reach target "$(target_name)"
  tables=$(user_tables) || die "could not list the tables of $(target_name)"
  if [[ -n "$tables" ]]; then
    if [[ -f "$IMPORTED_MARKER" ]]; then
      printf 'already done: %s was imported and verified by this step before (%s); it is not compared again, the application owns its data now\n' \
        "$(target_name)" "$IMPORTED_MARKER"
      cat "$IMPORTED_MARKER"
      ensure_owned_by_owner
      return 0
    fi
    reach source "$SOURCE_DATABASE on $SOURCE_HOST:$SOURCE_PORT"
    source_counts=$(save_counts source)
    target_counts=$(save_counts target)
    if compare_counts "$source_counts" "$target_counts"; then
      printf 'already done: %s already holds every table of %s with the same row counts; nothing restored\n' \
        "$(target_name)" "$SOURCE_DATABASE"
      ensure_owned_by_owner
      # verified now: from here on the application owns the data (a marker that could not be written by the
      # run that restored is written here)
      write_marker "verified $(target_name) against $SOURCE_DATABASE on $SOURCE_HOST:$SOURCE_PORT at $(date -u +%Y%m%dT%H%M%SZ); row counts:" "$source_counts"
      return 0
    fi
    die "$(target_name) already has tables and they differ from $SOURCE_DATABASE on $SOURCE_HOST:$SOURCE_PORT: $(differing_tables "$source_counts" "$target_counts"). Nothing was restored (the import never overwrites); inspect the target and empty it by hand if the source is the truth"
  fi

  reach source "$SOURCE_DATABASE on $SOURCE_HOST:$SOURCE_PORT"
  source_counts=$(save_counts source)
  [[ -s "$source_counts" ]] || die "$SOURCE_DATABASE on $SOURCE_HOST:$SOURCE_PORT has no table in $SCHEMA: is it the right database?"
  if [[ ! -d "$DUMP_DIR" ]]; then
    (umask 077 && mkdir -p "$DUMP_DIR") || die "cannot create $DUMP_DIR (read-only, full, or not writable)"
  fi
  chmod 0700 "$DUMP_DIR" || die "cannot chmod 0700 $DUMP_DIR (read-only?)"
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  dump="$DUMP_DIR/$SOURCE_DATABASE-$stamp.dump"
  partial="$DUMP_DIR/.partial-$SOURCE_DATABASE-$stamp.dump"
  BLUMEOPS_TEMPS+=("$partial")
  (umask 077 && bounded "$BLUMEOPS_CHANGE" "$PG_DUMP" --format=custom --no-password -h "$SOURCE_HOST" \
    -p "$SOURCE_PORT" -U "$SOURCE_USER" -d "$SOURCE_DATABASE" -f "$partial") ||
    die "pg_dump of $SOURCE_DATABASE on $SOURCE_HOST:$SOURCE_PORT into $DUMP_DIR failed (see above: is $DUMP_DIR full or read-only?); nothing was restored"
  mv -f "$partial" "$dump" || die "cannot rename $partial to $dump (read-only?); nothing was restored"
  log "dumped $SOURCE_DATABASE to $dump"
  # One transaction: a failed restore leaves the target empty, so the next run starts over cleanly.
  bounded "$BLUMEOPS_CHANGE" "$PG_RESTORE" --no-owner --no-privileges --role="$OWNER" --single-transaction --exit-on-error --no-password \
    -h "$TARGET_HOST" -p "$TARGET_PORT" -U "$TARGET_USER" -d "$TARGET_DATABASE" "$dump" \
    || die "pg_restore of $dump into $(target_name) failed and was rolled back (see above); the dump stays"
  target_counts=$(save_counts target)
  printf 'row counts after the restore of %s into %s:\n' "$dump" "$(target_name)"
  compare_counts "$source_counts" "$target_counts" \
    || die "the restore into $(target_name) is incomplete: $(differing_tables "$source_counts" "$target_counts")"
  ensure_owned_by_owner
  # the marker is written last, checked (a full or read-only disk stops the step: the next run finds the
  # target holding the same counts, says "already done" and writes it then)
  write_marker "imported $dump from $SOURCE_DATABASE on $SOURCE_HOST:$SOURCE_PORT into $(target_name) at $stamp; row counts:" \
    "$source_counts"
  printf 'imported and verified: %s\n' "$(target_name)"
}

step_delete() {
  printf 'nothing dropped: %s is protected state and keeps its data; the dumps in %s stay\n' "$(target_name)" "$DUMP_DIR"
}

run_action "$@"
