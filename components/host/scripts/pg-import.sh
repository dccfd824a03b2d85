# ---- components/host/scripts/pg-import.sh: the legacy database moves into the cluster's PostgreSQL ----
# Both modes first check the versions (the client tools' major >= both servers' majors, the restoring side's
# major >= the dumped side's) and compare databases by their fingerprint: per table and materialized view of
# every schema the dump holds its exact row count and an md5 of its rows' md5s in sorted order, each
# sequence's state, every object (kind and name) with its privileges (the owner's own entries read as
# <owner>: ownership moves to OWNER), default privileges, and the database's settings and comment. A copy is
# a dump taken in one REPEATABLE READ snapshot that a psql session exports and keeps open (a fifo feeds it
# its commands) while pg_dump --snapshot runs and the fingerprint is computed in it; the sequences' part is
# read from the dump itself (sequences are not transactional). The restore runs in one transaction that
# also applies the database's settings and comment, makes OWNER own every object and checks that the
# restored fingerprint is the dump's: anything else rolls it back. Grants are carried: a role they (or the
# database's settings) name that the restoring side lacks is refused, with the list, before anything runs.
# MODE=import (phase 3), create: an empty target gets a copy of the source; the marker IMPORTED_MARKER
#         records its fingerprint, the dump, the mode and the time. A target whose fingerprint is the
#         marker's is already done; a target with objects is otherwise refused, naming what differs (with
#         no valid marker it is compared with the source: equal is adopted).
# Either mode, create, after the final sync (marker mode final-sync): the application owns the cluster's
#         database, the legacy server is retired and k8s-pg is gone: nothing is connected to or compared (a
#         changed script re-runs every create). A rollback's delete marks final-sync-rollback. Writes to the source after the
#         snapshot are named in a warning: the final sync carries them.
# MODE=final-sync (phase 4), create: needs the marker. The target equals the source: already in sync. The
#         target equals the marker (untouched since the last copy): its content is replaced by a fresh copy
#         of the source, in one transaction. Otherwise refused, naming what changed in the cluster database.
#         delete (phase 4's rollback): the cluster unchanged since the marker: nothing to carry; the legacy
#         database unchanged since the marker: the cluster's content replaces the legacy's (one transaction)
#         and the marker records it; both changed: nothing is overwritten, a dump of the cluster database is
#         kept under DUMP_DIR and a warning names it and what differs (exit 0: the rollback runs on).
# MODE=import, delete: drops nothing (the cluster database is protected state) and says so.
# Every psql call is bounded: a session as a whole by BLUMEOPS_CHANGE (twice for one that restores), each
# query in it by BLUMEOPS_QUICK (the restore by BLUMEOPS_CHANGE); pg_dump and pg_restore by BLUMEOPS_CHANGE.
# A hang stops the step; it is never read as "no tables".
# Preamble: PG_DUMP PG_RESTORE PSQL SOURCE_HOST SOURCE_PORT SOURCE_USER SOURCE_DATABASE TARGET_HOST TARGET_PORT
#           TARGET_USER TARGET_DATABASE OWNER SCHEMA DUMP_DIR IMPORTED_MARKER MODE TARGET_IMAGE
#           SOURCE_PASSWORD TARGET_PASSWORD (secrets, or empty: written only into a temporary PGPASSFILE)

MARKER_HEADER="blumeops-pg-import-marker 1"

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

# scratch NAME: a new scratch file (its path is printed).
scratch() {
  mktemp "$(blumeops_tmpdir)/$1.XXXXXX" || die "cannot create a scratch file in ${TMPDIR:-/tmp}"
}

# write_sql FILE: this function's stdin (a here-document) into FILE, checked.
write_sql() {
  cat >"$1" || die "cannot write the scratch file $1 (is ${TMPDIR:-/tmp} full?)"
}

# side_conn SIDE: CONN_HOST CONN_PORT CONN_USER CONN_DB of SIDE (source: the legacy server, target: the cluster).
side_conn() {
  case "$1" in
  source) CONN_HOST=$SOURCE_HOST CONN_PORT=$SOURCE_PORT CONN_USER=$SOURCE_USER CONN_DB=$SOURCE_DATABASE ;;
  target) CONN_HOST=$TARGET_HOST CONN_PORT=$TARGET_PORT CONN_USER=$TARGET_USER CONN_DB=$TARGET_DATABASE ;;
  *) die "unknown side $1" ;;
  esac
}

# side_label SIDE: the database in words.
side_label() {
  case "$1" in
  source) printf 'the legacy database %s on %s:%s' "$SOURCE_DATABASE" "$SOURCE_HOST" "$SOURCE_PORT" ;;
  target) printf 'the cluster database %s on %s:%s' "$TARGET_DATABASE" "$TARGET_HOST" "$TARGET_PORT" ;;
  esac
}

other_side() {
  if [[ "$1" == source ]]; then printf target; else printf source; fi
}

# psql_on SIDE BOUND ARGS...: one psql call on SIDE, unaligned, no prompt (-w), stop on the first error.
psql_on() {
  local limit=$2
  side_conn "$1"
  shift 2
  bounded "$limit" "$PSQL" -X -q -At -w -v ON_ERROR_STOP=1 -h "$CONN_HOST" -p "$CONN_PORT" -U "$CONN_USER" \
    -d "$CONN_DB" "$@"
}

# session_open SIDE BOUND: a psql session on SIDE that reads its commands from a fifo (fd 7) and keeps its
# transaction open between them; the whole session is bounded by BOUND seconds (a bounded call in the
# background: its bound stops the step). session_run sends it a file, session_close ends it.
session_open() {
  local side=$1 limit=$2
  SESSION_COUNT=$((${SESSION_COUNT:-0} + 1))
  SESSION_DIR="$(blumeops_tmpdir)/session.$SESSION_COUNT"
  mkdir -m 0700 "$SESSION_DIR" || die "cannot create $SESSION_DIR (is ${TMPDIR:-/tmp} full?)"
  mkfifo -m 0600 "$SESSION_DIR/in" "$SESSION_DIR/out" || die "cannot create fifos in $SESSION_DIR"
  # read-write: opening never blocks, and the session's psql finds a writer (its commands) and a reader
  # (its sync lines) when it opens them
  exec 7<>"$SESSION_DIR/in" 8<>"$SESSION_DIR/out"
  side_conn "$side"
  (
    exec 7>&- 8>&-
    bounded "$limit" "$PSQL" -X -q -At -w -v ON_ERROR_STOP=1 -v owner="$OWNER" -v restore_db="$CONN_DB" \
      -h "$CONN_HOST" -p "$CONN_PORT" -U "$CONN_USER" -d "$CONN_DB" -f "$SESSION_DIR/in"
  ) >"$SESSION_DIR/out" 2>"$SESSION_DIR/err" &
  SESSION_PID=$!
  SESSION_SIDE=$side
  SESSION_SYNC=0
}

# session_failed WHAT: the session's psql is gone: stop, with its message.
session_failed() {
  local status=0
  wait "$SESSION_PID" || status=$?
  exec 7>&- 8>&-
  die "$1 failed on $(side_label "$SESSION_SIDE") (psql exit $status: $(tail -n 4 "$SESSION_DIR/err" | tr '\n' ' '));" \
    "its transaction was rolled back, nothing changed there"
}

# session_run FILE OUT BOUND WHAT: the session runs FILE, its results go to OUT; waits BOUND seconds at most.
session_run() {
  local file=$1 out=$2 limit=$3 what=$4 deadline line
  SESSION_SYNC=$((SESSION_SYNC + 1))
  printf '%s\n' "\\o '$out'" "\\i '$file'" '\o' "\\echo blumeops-sync-$SESSION_SYNC" >&7 ||
    die "cannot send $what to the psql session on $(side_label "$SESSION_SIDE")"
  deadline=$((SECONDS + limit))
  while :; do
    # the sync line arrives as soon as psql prints it; every second the session is checked
    if read -r -t 1 line <&8; then
      [[ "$line" != "blumeops-sync-$SESSION_SYNC" ]] || return 0
      continue
    fi
    kill -0 "$SESSION_PID" 2>/dev/null || session_failed "$what"
    ((SECONDS <= deadline)) ||
      die "$what did not finish within ${limit}s on $(side_label "$SESSION_SIDE"): killed; its transaction is rolled back, nothing was decided on it"
  done
}

# session_sql OUT BOUND WHAT: run this function's stdin (SQL) in the session, its results into OUT. (Never in
# a $(...): the session's state lives in this shell.)
session_sql() {
  local query
  query=$(scratch query)
  write_sql "$query"
  session_run "$query" "$1" "$2" "$3"
}

# session_close COMMIT|ROLLBACK: end the transaction and the session.
session_close() {
  local status=0
  printf '%s\n' "$1;" '\q' >&7 || die "cannot end the psql session on $(side_label "$SESSION_SIDE")"
  wait "$SESSION_PID" || status=$?
  exec 7>&- 8>&-
  ((status == 0)) || die "$1 failed on $(side_label "$SESSION_SIDE") (psql exit $status: $(tail -n 4 "$SESSION_DIR/err" | tr '\n' ' '))"
}

# schemas_sql ALIAS: the condition "namespace ALIAS is a schema the dump holds" (not a system schema, not an
# extension's).
schemas_sql() {
  printf "%s.nspname NOT IN ('pg_catalog', 'information_schema') AND %s.nspname !~ '^pg_(toast|temp_)'
     AND NOT EXISTS (SELECT 1 FROM pg_depend WHERE classid = 'pg_namespace'::regclass AND objid = %s.oid AND deptype = 'e')" "$1" "$1" "$1"
}

# not_member CATALOG OID: the condition "the object is not a member of an extension" (those are the extension's).
not_member() {
  printf "NOT EXISTS (SELECT 1 FROM pg_depend WHERE classid = '%s'::regclass AND objid = %s AND deptype = 'e')" "$1" "$2"
}

# fingerprint_sql FILE: the fingerprint query (its lines are sorted by the caller). Session settings first:
# the rows' text must not depend on the server's time zone, date style or float output.
fingerprint_sql() {
  write_sql "$1" <<SQL
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO, YMD';
SET LOCAL IntervalStyle = 'postgres';
SET LOCAL extra_float_digits = 1;
SET LOCAL bytea_output = 'hex';
SET LOCAL lc_monetary = 'C';
SET LOCAL xmloption = 'content';
SET LOCAL search_path = pg_catalog;
-- a materialized view by what its query gives in this snapshot: a dump carries its definition, and the
-- restore refreshes it (content a stale view holds on the source cannot be copied)
SELECT format(\$q\$SELECT %L || '|rows=' || count(*) || ' md5=' || coalesce(md5(string_agg(h, '' ORDER BY h COLLATE "C")), '-') FROM (SELECT md5(t::text) AS h FROM %s AS t) AS s\$q\$,
              CASE c.relkind WHEN 'm' THEN 'matview' ELSE 'table' END || '|' || format('%I.%I', n.nspname, c.relname),
              CASE c.relkind WHEN 'r' THEN format('ONLY %I.%I', n.nspname, c.relname)
                             ELSE '(' || rtrim(btrim(pg_get_viewdef(c.oid)), ';') || ')' END)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'm') AND c.relispopulated AND $(schemas_sql n) AND $(not_member pg_class c.oid)
 ORDER BY n.nspname, c.relname \gexec
SELECT 'matview|' || format('%I.%I', n.nspname, c.relname) || '|not populated'
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'm' AND NOT c.relispopulated AND $(schemas_sql n);
SELECT format(\$q\$SELECT %L || '|last_value=' || last_value || ' is_called=' || is_called FROM %I.%I\$q\$,
              'sequence|' || format('%I.%I', n.nspname, c.relname), n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'S' AND $(schemas_sql n) AND $(not_member pg_class c.oid)
 ORDER BY n.nspname, c.relname \gexec
WITH ns AS (SELECT n.oid, n.nspname, n.nspowner, n.nspacl FROM pg_namespace n WHERE $(schemas_sql n)),
objects (kind, name, acl, owner, aclkind) AS (
  SELECT 'schema', format('%I', nspname), nspacl, nspowner, 'n' FROM ns
  UNION ALL
  SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned-table' WHEN 'v' THEN 'view'
                        WHEN 'm' THEN 'matview' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign-table'
                        WHEN 'i' THEN 'index' ELSE 'partitioned-index' END || '-def',
         format('%I.%I', ns.nspname, c.relname), c.relacl, c.relowner,
         CASE c.relkind WHEN 'S' THEN 's' WHEN 'i' THEN NULL WHEN 'I' THEN NULL ELSE 'r' END
    FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'i', 'I') AND $(not_member pg_class c.oid)
  UNION ALL
  SELECT 'column', format('%I.%I.%I', ns.nspname, c.relname, a.attname), a.attacl, c.relowner, NULL
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN ns ON ns.oid = c.relnamespace
   WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'type-' || t.typtype::text, format('%I.%I', ns.nspname, t.typname), t.typacl, t.typowner, 'T'
    FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
   WHERE t.typtype IN ('b', 'c', 'd', 'e', 'r') AND NOT (t.typtype = 'b' AND t.typelem <> 0)
     AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c') AND $(not_member pg_type t.oid)
  UNION ALL
  SELECT 'routine-' || p.prokind::text, format('%I.%I(%s)', ns.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
         p.proacl, p.proowner, 'f'
    FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace WHERE $(not_member pg_proc p.oid)
  UNION ALL
  SELECT 'collation', format('%I.%I', ns.nspname, co.collname), NULL, NULL, NULL
    FROM pg_collation co JOIN ns ON ns.oid = co.collnamespace WHERE $(not_member pg_collation co.oid)
  UNION ALL
  SELECT 'constraint-' || con.contype::text,
         format('%I.%I.%I', ns.nspname, coalesce(rel.relname, typ.typname), con.conname), NULL, NULL, NULL
    FROM pg_constraint con JOIN ns ON ns.oid = con.connamespace
    LEFT JOIN pg_class rel ON rel.oid = con.conrelid LEFT JOIN pg_type typ ON typ.oid = con.contypid
   WHERE con.contype <> 'n'
  UNION ALL
  SELECT 'trigger', format('%I.%I.%I', ns.nspname, c.relname, tg.tgname), NULL, NULL, NULL
    FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN ns ON ns.oid = c.relnamespace WHERE NOT tg.tgisinternal
  UNION ALL
  SELECT 'policy', format('%I.%I.%I', ns.nspname, c.relname, po.polname), NULL, NULL, NULL
    FROM pg_policy po JOIN pg_class c ON c.oid = po.polrelid JOIN ns ON ns.oid = c.relnamespace
  UNION ALL
  SELECT 'extension', format('%I', extname), NULL, NULL, NULL FROM pg_extension
  UNION ALL
  SELECT 'default-acl', CASE WHEN pg_get_userbyid(d.defaclrole) = :'owner' THEN '<owner>'
                             ELSE pg_get_userbyid(d.defaclrole) END
                        || '.' || coalesce(format('%I', n.nspname), '*') || '.' || d.defaclobjtype::text,
         d.defaclacl, d.defaclrole, NULL
    FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
)
SELECT o.kind || '|' || o.name || '|' || CASE WHEN o.acl IS NULL AND o.aclkind IS NULL THEN '-' ELSE (
         SELECT coalesce(string_agg(DISTINCT s.entry, ',' ORDER BY s.entry), 'none') FROM (
           SELECT CASE WHEN e.grantee = o.owner OR r.rolname = :'owner' THEN '<owner>'
                       WHEN e.grantee = 0 THEN 'PUBLIC' ELSE r.rolname END
                  || ':' || e.privilege_type || CASE WHEN e.is_grantable THEN '*' ELSE '' END AS entry,
                  (e.grantee = o.owner OR r.rolname = :'owner') AS owners, e.privilege_type AS privilege
             FROM aclexplode(coalesce(o.acl, acldefault(o.aclkind::"char", o.owner))) AS e
             LEFT JOIN pg_roles r ON r.oid = e.grantee) AS s
          WHERE NOT (s.owners AND s.privilege = 'MAINTAIN')) END
  FROM objects o;
SELECT 'database-setting|' || CASE WHEN s.setrole = 0 THEN '*' ELSE pg_get_userbyid(s.setrole) END || '.'
       || split_part(c, '=', 1) || '|' || substr(c, strpos(c, '=') + 1)
  FROM pg_db_role_setting s, unnest(s.setconfig) AS c
 WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database());
SELECT 'database-comment|-|' || coalesce(md5(shobj_description(oid, 'pg_database')), 'none')
  FROM pg_database WHERE datname = current_database();
SQL
}

# session_fingerprint OUT WHAT: the fingerprint of the session's database, in its transaction, sorted into OUT.
session_fingerprint() {
  local query raw
  query=$(scratch fingerprint)
  raw=$(scratch fingerprint-raw)
  fingerprint_sql "$query"
  session_run "$query" "$raw" "$BLUMEOPS_QUICK" "$2"
  LC_ALL=C sort "$raw" >"$1" || die "cannot write $1 (is ${TMPDIR:-/tmp} full?)"
}

# fingerprint SIDE OUT: the fingerprint of SIDE now (one REPEATABLE READ transaction) into OUT.
fingerprint() {
  session_open "$1" "$BLUMEOPS_CHANGE"
  session_sql "$(scratch result)" "$BLUMEOPS_QUICK" "opening a transaction" <<'SQL'
BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
SQL
  session_fingerprint "$2" "the fingerprint"
  session_close COMMIT
}

# fp_diff A LABEL_A B LABEL_B: the lines that differ between two fingerprints, "kind name: LABEL_A value,
# LABEL_B value", sorted, the data (tables, materialized views, sequences) first.
fp_diff() {
  awk -v la="$2" -v lb="$4" '
    function parse(line,   i, rest) {
      i = index(line, "|"); kind = substr(line, 1, i - 1); rest = substr(line, i + 1)
      i = index(rest, "|"); key = kind " " substr(rest, 1, i - 1); value = substr(rest, i + 1)
    }
    FNR == NR { parse($0); a[key] = value; seen[key] = 1; next }
    { parse($0); b[key] = value; seen[key] = 1 }
    END {
      for (key in seen) {
        va = (key in a) ? a[key] : "missing"; vb = (key in b) ? b[key] : "missing"
        rank = (key ~ /^(table|matview|sequence) /) ? 0 : 1
        if (va != vb) printf "%d %s: %s %s, %s %s\n", rank, key, la, va, lb, vb
      }
    }' "$1" "$3" | LC_ALL=C sort | sed 's/^[01] //'
}

# diff_summary A LABEL_A B LABEL_B: the differences on one line (the first 8; the count of the others).
diff_summary() {
  fp_diff "$@" | awk '{ n++; if (n <= 8) { printf "%s%s", sep, $0; sep = "; " } }
                      END { if (n > 8) printf "; and %d more", n - 8 }'
}

# show_diff A LABEL_A B LABEL_B: every difference on stderr (the die line after it has the first ones).
show_diff() {
  fp_diff "$@" | sed 's/^/  differs: /' >&2
}

same_fingerprint() {
  cmp -s "$1" "$2"
}

# marker_valid: IMPORTED_MARKER is a marker this step wrote (its header and a fingerprint).
marker_valid() {
  [[ -f "$IMPORTED_MARKER" ]] && [[ "$(head -n 1 "$IMPORTED_MARKER")" == "$MARKER_HEADER" ]] &&
    grep -qx 'fingerprint:' "$IMPORTED_MARKER"
}

# marker_field NAME: a field of the marker's header.
marker_field() {
  awk -v name="$1" '$0 == "fingerprint:" { exit } index($0, name ": ") == 1 { print substr($0, length(name) + 3); exit }' \
    "$IMPORTED_MARKER"
}

# marker_fingerprint: the marker's fingerprint in a scratch file (its path is printed).
marker_fingerprint() {
  local out
  out=$(scratch fingerprint-marker)
  awk 'found { print } $0 == "fingerprint:" { found = 1 }' "$IMPORTED_MARKER" >"$out" || die "cannot read $IMPORTED_MARKER"
  printf '%s' "$out"
}

# write_marker MODE DUMP FINGERPRINT FROM INTO: IMPORTED_MARKER (0600): what the cluster database held when
# this step last copied (FINGERPRINT), from where, how and when; checked, atomic.
write_marker() {
  local fingerprint
  fingerprint=$(cat "$3") || die "cannot read $3"
  stage_file "$IMPORTED_MARKER" 0600 "$MARKER_HEADER
mode: $1
time: $(date -u +%Y%m%dT%H%M%SZ)
dump: $2
from: $4
into: $5
fingerprint:
$fingerprint"
  commit_file "$IMPORTED_MARKER"
}

marker_said() {
  printf '%s (mode %s, %s, dump %s)' "$IMPORTED_MARKER" "$(marker_field mode)" "$(marker_field time)" "$(marker_field dump)"
}

check_tools() {
  local tool
  for tool in "$PG_DUMP" "$PG_RESTORE" "$PSQL"; do
    [[ -x "$tool" ]] || die "$tool is missing or not executable: install the PostgreSQL client tools (brew install postgresql@18) or correct the tool path in the stack's settings"
  done
}

# tool_major TOOL: the major version TOOL --version reports.
tool_major() {
  local answer
  answer=$(bounded "$BLUMEOPS_QUICK" "$1" --version) || die "$1 --version failed"
  printf '%s' "$answer" | sed -n 's/^[^0-9]*\([0-9][0-9]*\).*/\1/p' | head -n 1
}

# server_version SIDE: server_version_num of SIDE.
server_version() {
  psql_on "$1" "$BLUMEOPS_QUICK" -c 'SHOW server_version_num' ||
    die "cannot connect to $(side_label "$1") (see psql's message above): is the server running and reachable, and is the password in the stack's secrets right?"
}

# check_versions DUMPED RESTORED: the client tools' major is at least both servers' (pg_dump cannot dump a
# newer server, and its output targets its own major), and the restoring side's major at least the
# dumped side's. Prints the majors.
check_versions() {
  local source_num target_num source target tool major newest restored dumped
  source_num=$(server_version source)
  target_num=$(server_version target)
  source=$((source_num / 10000))
  target=$((target_num / 10000))
  newest=$source
  ((target <= newest)) || newest=$target
  printf 'versions: source PostgreSQL %s (%s), target PostgreSQL %s (%s)' "$source" "$source_num" "$target" "$target_num"
  for tool in "$PG_DUMP" "$PG_RESTORE" "$PSQL"; do
    major=$(tool_major "$tool")
    [[ -n "$major" ]] || die "cannot read the version of $tool"
    printf ', %s %s' "${tool##*/}" "$major"
    if ((major < newest)); then
      printf '\n'
      die "$tool is PostgreSQL $major, older than the servers (source $source, target $target): set" \
        "blumeops:tools.pgDump, blumeops:tools.pgRestore and blumeops:tools.psql to the client tools of PostgreSQL $newest" \
        "(brew install postgresql@$newest), or keep the cluster's image ($TARGET_IMAGE) and the legacy server on" \
        "the same major; nothing was dumped or restored"
    fi
  done
  printf '\n'
  dumped=$1 restored=$2
  if (($(side_major "$restored" "$source" "$target") < $(side_major "$dumped" "$source" "$target"))); then
    die "$(side_label "$restored") runs PostgreSQL $(side_major "$restored" "$source" "$target"), older than" \
      "$(side_label "$dumped") (PostgreSQL $(side_major "$dumped" "$source" "$target")): a dump restores into the" \
      "same or a newer major; choose the cluster's image ($TARGET_IMAGE) to match; nothing was dumped or restored"
  fi
}

side_major() {
  if [[ "$1" == source ]]; then printf '%s' "$2"; else printf '%s' "$3"; fi
}

prepare_dump_dir() {
  if [[ ! -d "$DUMP_DIR" ]]; then
    (umask 077 && mkdir -p "$DUMP_DIR") || die "cannot create $DUMP_DIR (read-only, full, or not writable)"
  fi
  chmod 0700 "$DUMP_DIR" || die "cannot chmod 0700 $DUMP_DIR (read-only?)"
}

# generators_sql FILE: run on the dumped side, in its snapshot: writes (as its result) the SQL the
# restoring side runs: first the check of the roles the grants, default privileges and settings name (a
# line for each one missing there), then, after a line "-- settings", the database's settings and comment.
roles_sql() {
  write_sql "$1" <<SQL
WITH ns AS (SELECT n.oid, n.nspowner, n.nspacl FROM pg_namespace n WHERE $(schemas_sql n)),
acls (acl, owner) AS (
  SELECT c.relacl, c.relowner FROM pg_class c JOIN ns ON ns.oid = c.relnamespace WHERE c.relacl IS NOT NULL
  UNION ALL
  SELECT a.attacl, c.relowner FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN ns ON ns.oid = c.relnamespace
   WHERE a.attacl IS NOT NULL
  UNION ALL
  SELECT nspacl, nspowner FROM ns WHERE nspacl IS NOT NULL
  UNION ALL
  SELECT p.proacl, p.proowner FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace WHERE p.proacl IS NOT NULL
  UNION ALL
  SELECT t.typacl, t.typowner FROM pg_type t JOIN ns ON ns.oid = t.typnamespace WHERE t.typacl IS NOT NULL
  UNION ALL
  SELECT defaclacl, defaclrole FROM pg_default_acl
),
roles (role, why) AS (
  SELECT r.rolname, 'grants' FROM acls, aclexplode(acls.acl) AS e JOIN pg_roles r ON r.oid IN (e.grantee, e.grantor)
   WHERE r.oid <> acls.owner AND r.rolname <> :'owner'
  UNION
  SELECT pg_get_userbyid(defaclrole), 'default privileges' FROM pg_default_acl
  UNION
  SELECT pg_get_userbyid(setrole), 'database settings' FROM pg_db_role_setting
   WHERE setrole <> 0 AND setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT format('SELECT %L WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %L);',
              role || ' (' || string_agg(DISTINCT why, ', ') || ')', role)
  FROM roles GROUP BY role
UNION ALL
SELECT format('SELECT %L WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %L) AND NOT pg_catalog.pg_has_role(%L, %L, ''MEMBER'');',
              'default privileges FOR ROLE ' || pg_get_userbyid(defaclrole) || ' (' || :'owner' || ' is not a member of it)',
              pg_get_userbyid(defaclrole), :'owner', pg_get_userbyid(defaclrole))
  FROM pg_default_acl WHERE pg_get_userbyid(defaclrole) <> :'owner'
ORDER BY 1;
SQL
}

settings_sql() {
  write_sql "$1" <<'SQL'
SELECT CASE WHEN s.setrole = 0 THEN 'ALTER DATABASE :"restore_db" SET '
            ELSE format('ALTER ROLE %I IN DATABASE :"restore_db" SET ', pg_get_userbyid(s.setrole)) END
       || CASE WHEN split_part(c, '=', 1) ~ '^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$'
               THEN split_part(c, '=', 1) ELSE 'not_a_setting_name' END
       || ' = '
       || CASE WHEN split_part(c, '=', 1) IN ('search_path', 'temp_tablespaces', 'local_preload_libraries', 'session_preload_libraries')
               THEN (SELECT string_agg(quote_literal(replace(regexp_replace(btrim(e), '^"(.*)"$', '\1'), '""', '"')), ', ' ORDER BY i)
                       FROM unnest(string_to_array(substr(c, strpos(c, '=') + 1), ',')) WITH ORDINALITY AS u (e, i))
               ELSE quote_literal(substr(c, strpos(c, '=') + 1)) END || ';'
  FROM pg_db_role_setting s, unnest(s.setconfig) AS c
 WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database());
SELECT 'COMMENT ON DATABASE :"restore_db" IS ' || coalesce(quote_literal(shobj_description(oid, 'pg_database')), 'NULL') || ';'
  FROM pg_database WHERE datname = current_database();
SQL
}

# snapshot_open SIDE: a session on SIDE holding a REPEATABLE READ snapshot it exports (SNAPSHOT_ID); in it
# the fingerprint (SNAP_FP_LIVE), the role check (SNAP_ROLES) and the settings (SNAP_SETTINGS) for the other
# side. The session stays open for snapshot_dump (or snapshot_close).
snapshot_open() {
  local out
  SNAP_SIDE=$1
  session_open "$1" "$((BLUMEOPS_CHANGE + BLUMEOPS_QUICK))"
  out=$(scratch snapshot)
  session_sql "$out" "$BLUMEOPS_QUICK" "exporting a snapshot" <<'SQL'
BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
SELECT pg_export_snapshot();
SQL
  SNAPSHOT_ID=$(tr -d ' \n' <"$out")
  [[ "$SNAPSHOT_ID" =~ ^[0-9A-F-]+$ ]] || die "$(side_label "$1") exported no snapshot (got '$SNAPSHOT_ID')"
  SNAP_FP_LIVE=$(scratch "fingerprint-$1")
  session_fingerprint "$SNAP_FP_LIVE" "the fingerprint"
  local query
  query=$(scratch roles)
  roles_sql "$query"
  SNAP_ROLES=$(scratch roles-check)
  session_run "$query" "$SNAP_ROLES" "$BLUMEOPS_QUICK" "listing the roles the grants of $(side_label "$1") name"
  query=$(scratch settings)
  settings_sql "$query"
  SNAP_SETTINGS=$(scratch settings-apply)
  session_run "$query" "$SNAP_SETTINGS" "$BLUMEOPS_QUICK" "reading the settings and comment of $(side_label "$1")"
}

snapshot_close() {
  session_close COMMIT
}

# dump_path SIDE: a new dated dump file under DUMP_DIR for SIDE's database.
dump_path() {
  local stamp base n=1 path
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  if [[ "$1" == source ]]; then base="$DUMP_DIR/$SOURCE_DATABASE-$stamp"; else base="$DUMP_DIR/$TARGET_DATABASE-cluster-$stamp"; fi
  path="$base.dump"
  while [[ -e "$path" ]]; do
    n=$((n + 1))
    path="$base-$n.dump"
  done
  printf '%s' "$path"
}

# snapshot_dump: pg_dump of SNAP_SIDE in the open snapshot into a new dated file (DUMPED, written whole or
# not at all), then closes the session; RESTORE_SQL: the dump as SQL for the other side (objects created
# by OWNER); SNAP_FP: the fingerprint of what the dump holds (the sequences as the dump has them).
snapshot_dump() {
  local partial sequences
  prepare_dump_dir
  DUMPED=$(dump_path "$SNAP_SIDE")
  partial="$(dirname "$DUMPED")/.partial-$(basename "$DUMPED")"
  BLUMEOPS_TEMPS+=("$partial")
  side_conn "$SNAP_SIDE"
  (umask 077 && bounded "$BLUMEOPS_CHANGE" "$PG_DUMP" --format=custom --no-password --snapshot="$SNAPSHOT_ID" \
    -h "$CONN_HOST" -p "$CONN_PORT" -U "$CONN_USER" -d "$CONN_DB" -f "$partial") ||
    die "pg_dump of $(side_label "$SNAP_SIDE") into $DUMP_DIR failed (see above: is $DUMP_DIR full or read-only?); nothing was restored"
  mv -f "$partial" "$DUMPED" || die "cannot rename $partial to $DUMPED (read-only?); nothing was restored"
  log "dumped $(side_label "$SNAP_SIDE") to $DUMPED (snapshot $SNAPSHOT_ID)"
  snapshot_close
  RESTORE_SQL="$DUMP_DIR/.restore-$(basename "$DUMPED" .dump).sql"
  BLUMEOPS_TEMPS+=("$RESTORE_SQL")
  (umask 077 && bounded "$BLUMEOPS_CHANGE" "$PG_RESTORE" --no-owner --role="$OWNER" -f "$RESTORE_SQL" "$DUMPED") ||
    die "pg_restore could not read $DUMPED into $RESTORE_SQL (is $DUMP_DIR full?); nothing was restored"
  sequences=$(scratch sequences)
  awk '
    incopy { if ($0 == "\\.") incopy = 0; next }
    /^COPY .* FROM stdin;$/ { incopy = 1; next }
    /^SELECT pg_catalog\.setval\(\x27.*\x27, -?[0-9]+, (true|false)\);$/ {
      line = substr($0, length("SELECT pg_catalog.setval(\x27") + 1)
      line = substr(line, 1, length(line) - 2)
      split(line, parts, ", ")
      called = parts[length(parts)]; value = parts[length(parts) - 1]
      name = substr(line, 1, length(line) - length(value) - length(called) - 5)
      gsub(/\x27\x27/, "\x27", name)
      printf "sequence|%s|last_value=%s is_called=%s\n", name, value, called
    }' "$RESTORE_SQL" >"$sequences" || die "cannot read the sequences of $RESTORE_SQL"
  SNAP_FP=$(scratch fingerprint-dump)
  { grep -v '^sequence|' "$SNAP_FP_LIVE" || true; cat "$sequences"; } | LC_ALL=C sort >"$SNAP_FP" ||
    die "cannot write $SNAP_FP (is ${TMPDIR:-/tmp} full?)"
}

# empty_sql FILE: what the restoring side already holds in the schemas a dump fills (nothing: empty).
empty_sql() {
  write_sql "$1" <<SQL
SELECT format('%s %I.%I', CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                                         WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'c' THEN 'type'
                                         ELSE 'relation' END,
              n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c') AND $(schemas_sql n) AND $(not_member pg_class c.oid)
UNION ALL
SELECT format('routine %I.%I', n.nspname, p.proname) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE $(schemas_sql n) AND $(not_member pg_proc p.oid)
UNION ALL
SELECT format('type %I.%I', n.nspname, t.typname) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE t.typtype IN ('c', 'd', 'e', 'r') AND t.typrelid = 0 AND $(schemas_sql n) AND $(not_member pg_type t.oid)
UNION ALL
SELECT format('schema %I', n.nspname) FROM pg_namespace n WHERE n.nspname <> 'public' AND $(schemas_sql n)
ORDER BY 1 LIMIT 20;
SQL
}

# lock_sql FILE: every table of the restoring side's schemas locked against writes (a writer still connected
# makes the lock wait time out: the step stops, nothing changed).
lock_sql() {
  write_sql "$1" <<SQL
SET LOCAL lock_timeout = '10s';
SELECT format('LOCK TABLE %I.%I IN ACCESS EXCLUSIVE MODE', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND $(schemas_sql n) AND $(not_member pg_class c.oid) \gexec
SQL
}

# drop_sql FILE: every object of the schemas a dump fills goes (the schemas other than public with them);
# extensions and their objects stay.
drop_sql() {
  write_sql "$1" <<SQL
DO \$drop\$
DECLARE
  o record;
BEGIN
  FOR o IN SELECT n.nspname FROM pg_namespace n WHERE n.nspname <> 'public' AND $(schemas_sql n) LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', o.nspname);
  END LOOP;
  FOR o IN SELECT c.oid, c.relkind, format('%I.%I', n.nspname, c.relname) AS name
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND $(schemas_sql n) AND $(not_member pg_class c.oid)
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                 AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') AND c.relkind = 'S')
            ORDER BY CASE c.relkind WHEN 'v' THEN 0 WHEN 'm' THEN 1 ELSE 2 END LOOP
    CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = o.oid);
    EXECUTE format('DROP %s %s CASCADE', CASE o.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                                        WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
                                                        ELSE 'TABLE' END, o.name);
  END LOOP;
  FOR o IN SELECT t.oid, t.typtype, format('%I.%I', n.nspname, t.typname) AS name
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE t.typtype IN ('b', 'c', 'd', 'e', 'r') AND NOT (t.typtype = 'b' AND t.typelem <> 0) AND t.typrelid = 0
              AND $(schemas_sql n) AND $(not_member pg_type t.oid) LOOP
    CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_type WHERE oid = o.oid);
    EXECUTE format('DROP %s %s CASCADE', CASE o.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, o.name);
  END LOOP;
  FOR o IN SELECT p.oid, p.prokind, format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS name
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE $(schemas_sql n) AND $(not_member pg_proc p.oid) LOOP
    CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_proc WHERE oid = o.oid);
    EXECUTE format('DROP %s %s CASCADE', CASE o.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE'
                                                        ELSE 'FUNCTION' END, o.name);
  END LOOP;
  FOR o IN SELECT format('%I.%I', n.nspname, co.collname) AS name FROM pg_collation co
             JOIN pg_namespace n ON n.oid = co.collnamespace WHERE $(schemas_sql n) AND $(not_member pg_collation co.oid) LOOP
    EXECUTE format('DROP COLLATION %s CASCADE', o.name);
  END LOOP;
  FOR o IN SELECT DISTINCT d.defaclrole::regrole::text AS role, n.nspname, d.defaclobjtype,
                  CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE e.grantee::regrole::text END AS grantee
             FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace,
                  aclexplode(d.defaclacl) AS e
            WHERE e.grantee <> d.defaclrole LOOP
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %s %s REVOKE ALL ON %s FROM %s', o.role,
                   CASE WHEN o.nspname IS NULL THEN '' ELSE format('IN SCHEMA %I', o.nspname) END,
                   CASE o.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS'
                                        WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END, o.grantee);
  END LOOP;
END
\$drop\$;
SQL
}

# own_sql FILE: OWNER owns every object of the schemas the dump holds, every class of them: schemas (public
# stays with pg_database_owner, which the database's owner is), tables (their indexes and owned sequences
# follow), partitions, views, materialized views, sequences, foreign tables, types (enums, domains, ranges
# with their multiranges, composite and base types; arrays follow), functions, procedures, aggregates,
# collations, conversions, operators, text search configurations and dictionaries, statistics objects.
# Extensions and their objects stay with their owners. Then every object is checked: one OWNER does not own
# is an error (the transaction rolls back).
own_sql() {
  write_sql "$1" <<SQL
SELECT set_config('blumeops.owner', :'owner', true) \gset
DO \$own\$
DECLARE
  owner name := current_setting('blumeops.owner');
  owner_oid oid := (SELECT oid FROM pg_roles WHERE rolname = current_setting('blumeops.owner'));
  o record;
  leftover text;
BEGIN
  IF owner_oid IS NULL THEN
    RAISE EXCEPTION 'role % does not exist here', owner;
  END IF;
  FOR o IN SELECT n.nspname FROM pg_namespace n
            WHERE n.nspname <> 'public' AND n.nspowner <> owner_oid AND $(schemas_sql n) LOOP
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', o.nspname, owner);
  END LOOP;
  FOR o IN SELECT c.oid, c.relkind, format('%I.%I', n.nspname, c.relname) AS name
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND $(schemas_sql n) AND $(not_member pg_class c.oid)
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                 AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') AND c.relkind = 'S')
            ORDER BY CASE WHEN c.relkind IN ('r', 'p') THEN 0 ELSE 1 END, c.oid LOOP
    CONTINUE WHEN (SELECT relowner FROM pg_class WHERE oid = o.oid) = owner_oid;
    EXECUTE format('ALTER %s %s OWNER TO %I', CASE o.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                                             WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
                                                             ELSE 'TABLE' END, o.name, owner);
  END LOOP;
  FOR o IN SELECT t.typtype, format('%I.%I', n.nspname, t.typname) AS name
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE t.typowner <> owner_oid AND t.typtype IN ('b', 'c', 'd', 'e', 'r') AND NOT (t.typtype = 'b' AND t.typelem <> 0)
              AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
              AND $(schemas_sql n) AND $(not_member pg_type t.oid) LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I', CASE o.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, o.name, owner);
  END LOOP;
  FOR o IN SELECT p.prokind, p.oid::regprocedure::text AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE p.proowner <> owner_oid AND $(schemas_sql n) AND $(not_member pg_proc p.oid) LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I', CASE o.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE'
                                                             ELSE 'FUNCTION' END, o.name, owner);
  END LOOP;
  FOR o IN SELECT 'COLLATION' AS kind, format('%I.%I', n.nspname, x.collname) AS name FROM pg_collation x
             JOIN pg_namespace n ON n.oid = x.collnamespace
            WHERE x.collowner <> owner_oid AND $(schemas_sql n) AND $(not_member pg_collation x.oid)
           UNION ALL
           SELECT 'CONVERSION', format('%I.%I', n.nspname, x.conname) FROM pg_conversion x
             JOIN pg_namespace n ON n.oid = x.connamespace
            WHERE x.conowner <> owner_oid AND $(schemas_sql n) AND $(not_member pg_conversion x.oid)
           UNION ALL
           SELECT 'OPERATOR', x.oid::regoperator::text FROM pg_operator x JOIN pg_namespace n ON n.oid = x.oprnamespace
            WHERE x.oprowner <> owner_oid AND $(schemas_sql n) AND $(not_member pg_operator x.oid)
           UNION ALL
           SELECT 'TEXT SEARCH CONFIGURATION', format('%I.%I', n.nspname, x.cfgname) FROM pg_ts_config x
             JOIN pg_namespace n ON n.oid = x.cfgnamespace
            WHERE x.cfgowner <> owner_oid AND $(schemas_sql n) AND $(not_member pg_ts_config x.oid)
           UNION ALL
           SELECT 'TEXT SEARCH DICTIONARY', format('%I.%I', n.nspname, x.dictname) FROM pg_ts_dict x
             JOIN pg_namespace n ON n.oid = x.dictnamespace
            WHERE x.dictowner <> owner_oid AND $(schemas_sql n) AND $(not_member pg_ts_dict x.oid)
           UNION ALL
           SELECT 'STATISTICS', format('%I.%I', n.nspname, x.stxname) FROM pg_statistic_ext x
             JOIN pg_namespace n ON n.oid = x.stxnamespace
            WHERE x.stxowner <> owner_oid AND $(schemas_sql n) LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I', o.kind, o.name, owner);
  END LOOP;
  SELECT string_agg(what, '; ' ORDER BY what) INTO leftover FROM (
    SELECT format('schema %I (owner %s)', n.nspname, pg_get_userbyid(n.nspowner)) AS what FROM pg_namespace n
     WHERE n.nspname <> 'public' AND n.nspowner <> owner_oid AND $(schemas_sql n)
    UNION ALL
    SELECT format('relation %I.%I (owner %s)', n.nspname, c.relname, pg_get_userbyid(c.relowner))
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relowner <> owner_oid AND c.relkind <> 't' AND $(schemas_sql n) AND $(not_member pg_class c.oid)
    UNION ALL
    SELECT format('type %I.%I (owner %s)', n.nspname, t.typname, pg_get_userbyid(t.typowner))
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE t.typowner <> owner_oid AND $(schemas_sql n) AND $(not_member pg_type t.oid)
    UNION ALL
    SELECT format('routine %s (owner %s)', p.oid::regprocedure, pg_get_userbyid(p.proowner))
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE p.proowner <> owner_oid AND $(schemas_sql n) AND $(not_member pg_proc p.oid)
    UNION ALL
    SELECT format('collation %I.%I (owner %s)', n.nspname, x.collname, pg_get_userbyid(x.collowner))
      FROM pg_collation x JOIN pg_namespace n ON n.oid = x.collnamespace
     WHERE x.collowner <> owner_oid AND $(schemas_sql n) AND $(not_member pg_collation x.oid)) AS f;
  IF leftover IS NOT NULL THEN
    RAISE EXCEPTION '% does not own: %', owner, leftover;
  END IF;
END
\$own\$;
SQL
}

# restore_into SIDE EXPECT: the dump (RESTORE_SQL) into SIDE in one transaction. EXPECT "empty": SIDE holds
# nothing in the schemas a dump fills; otherwise EXPECT is the fingerprint SIDE must still have (checked
# with its tables locked), and its objects are dropped first. In the same transaction: the database's
# settings and comment, ownership, and the check that SIDE's fingerprint is now the dump's (SNAP_FP):
# anything else rolls everything back.
restore_into() {
  local side=$1 expect=$2 missing out query after
  missing=$(psql_on "$side" "$BLUMEOPS_QUICK" -f "$SNAP_ROLES") ||
    die "cannot check the roles the grants name on $(side_label "$side")"
  query=$(scratch owner)
  write_sql "$query" <<'SQL'
SELECT 1 FROM pg_roles WHERE rolname = :'owner';
SQL
  if [[ -z "$(psql_on "$side" "$BLUMEOPS_QUICK" -v owner="$OWNER" -f "$query")" ]]; then
    die "the role $OWNER does not exist on $(side_label "$side"); nothing was restored"
  fi
  if [[ -n "$missing" ]]; then
    die "$(side_label "$side") lacks roles that $(side_label "$(other_side "$side")") grants to or names: $(printf '%s' "$missing" | tr '\n' ';' | sed 's/;/; /g')." \
      "Declare them on the cluster (CloudNativePG managed roles) or revoke those grants on the source; nothing was restored ($DUMPED stays)"
  fi
  session_open "$side" "$((2 * BLUMEOPS_CHANGE))"
  session_sql "$(scratch result)" "$BLUMEOPS_QUICK" "opening the restore's transaction" <<'SQL'
BEGIN;
SQL
  if [[ "$expect" == empty ]]; then
    query=$(scratch empty)
    empty_sql "$query"
    out=$(scratch empty-result)
    session_run "$query" "$out" "$BLUMEOPS_QUICK" "looking for objects on $(side_label "$side")"
    [[ ! -s "$out" ]] ||
      die "$(side_label "$side") is no longer empty ($(tr '\n' ';' <"$out")); nothing was restored"
  else
    query=$(scratch lock)
    lock_sql "$query"
    session_run "$query" "$(scratch lock-result)" "$BLUMEOPS_QUICK" "locking the tables of $(side_label "$side")"
    after=$(scratch fingerprint-locked)
    session_fingerprint "$after" "the fingerprint"
    if ! same_fingerprint "$expect" "$after"; then
      show_diff "$expect" marker "$after" now
      die "$(side_label "$side") changed while this step ran: $(diff_summary "$expect" marker "$after" now); nothing was restored"
    fi
    query=$(scratch drop)
    drop_sql "$query"
    session_run "$query" "$(scratch drop-result)" "$BLUMEOPS_QUICK" "emptying $(side_label "$side") for the copy"
  fi
  query=$(scratch reset-settings)
  write_sql "$query" <<'SQL'
DO $reset$
DECLARE
  r record;
BEGIN
  EXECUTE format('ALTER DATABASE %I RESET ALL', current_database());
  FOR r IN SELECT setrole::regrole::text AS role FROM pg_db_role_setting
            WHERE setrole <> 0 AND setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) LOOP
    EXECUTE format('ALTER ROLE %s IN DATABASE %I RESET ALL', r.role, current_database());
  END LOOP;
END
$reset$;
SQL
  session_run "$query" "$(scratch reset-result)" "$BLUMEOPS_QUICK" "resetting the database settings of $(side_label "$side")"
  session_run "$SNAP_SETTINGS" "$(scratch settings-result)" "$BLUMEOPS_QUICK" "applying the database settings and comment"
  session_run "$RESTORE_SQL" "$(scratch restore-result)" "$BLUMEOPS_CHANGE" "the restore of $DUMPED"
  query=$(scratch own)
  {
    printf '%s\n' 'RESET ROLE;'
  } >"$query" || die "cannot write $query"
  own_sql "$query.own"
  cat "$query.own" >>"$query" || die "cannot write $query"
  session_run "$query" "$(scratch own-result)" "$BLUMEOPS_QUICK" "making $OWNER the owner of every object"
  after=$(scratch fingerprint-restored)
  session_fingerprint "$after" "the fingerprint of the restored copy"
  if ! same_fingerprint "$SNAP_FP" "$after"; then
    show_diff "$SNAP_FP" dump "$after" restored
    die "the restore of $DUMPED into $(side_label "$side") does not hold what the dump holds: $(diff_summary "$SNAP_FP" dump "$after" restored);" \
      "rolled back, nothing changed there (the dump stays)"
  fi
  session_close COMMIT
  awk -F'|' '$1 == "table" || $1 == "matview" {
      if (!n++) printf "%-44s %10s  %s\n", "table or materialized view", "rows", "md5 of the rows"
      split($3, v, " "); sub(/^rows=/, "", v[1]); sub(/^md5=/, "", v[2]); printf "%-44s %10s  %s\n", $2, v[1], v[2] }' "$SNAP_FP"
  printf 'restored %s into %s and verified: %s tables and materialized views, %s sequences and %s objects as the dump holds them\n' \
    "$DUMPED" "$(side_label "$side")" "$(grep -c -E '^(table|matview)\|' "$SNAP_FP" || true)" \
    "$(grep -c '^sequence|' "$SNAP_FP" || true)" "$(grep -c -v -E '^(table|matview|sequence)\|' "$SNAP_FP" || true)"
  owned_said
}

owned_said() {
  printf 'every object of the schemas the dump holds is owned by %s (public stays with pg_database_owner; extensions and their objects stay with their owner, the superuser that created them)\n' "$OWNER"
}

# ensure_owned SIDE: ownership (own_sql) in a transaction of its own, for a database this step copied before.
ensure_owned() {
  local query
  query=$(scratch own)
  own_sql "$query"
  session_open "$1" "$BLUMEOPS_CHANGE"
  session_sql "$(scratch result)" "$BLUMEOPS_QUICK" "opening a transaction" <<'SQL'
BEGIN;
SQL
  session_run "$query" "$(scratch own-result)" "$BLUMEOPS_QUICK" "making $OWNER the owner of every object"
  session_close COMMIT
  owned_said
}

# warn_if_written_since SIDE: SIDE's fingerprint now against the copy's: writes after the snapshot are named.
warn_if_written_since() {
  local now
  now=$(scratch fingerprint-now)
  fingerprint "$1" "$now"
  if ! same_fingerprint "$SNAP_FP" "$now"; then
    log "WARNING: $(side_label "$1") was written after the snapshot of this copy; the copy holds the snapshot, the later writes are not in it:"
    show_diff "$SNAP_FP" copied "$now" now
    log "WARNING: phase 4's final sync (mode final-sync) carries them, after the legacy application stops"
  fi
}

import_create() {
  local marked target_fp
  if [[ -f "$IMPORTED_MARKER" ]]; then
    if marker_valid; then
      marked=$(marker_fingerprint)
      target_fp=$(scratch fingerprint-target)
      fingerprint target "$target_fp"
      if same_fingerprint "$marked" "$target_fp"; then
        printf 'already done: %s holds exactly what this step copied into it (%s)\n' "$(side_label target)" "$(marker_said)"
        ensure_owned target
        return 0
      fi
      show_diff "$marked" copied "$target_fp" now
      die "$(side_label target) differs from what this step copied into it ($(marker_said)): $(diff_summary "$marked" copied "$target_fp" now)." \
        "Nothing was restored (the import never overwrites); inspect it, and to import again drop and recreate the database and remove $IMPORTED_MARKER"
    fi
    log "$IMPORTED_MARKER is not a marker this step wrote (or one of an older version): $(side_label target) is compared with the source"
  fi
  local present
  present=$(psql_on target "$BLUMEOPS_QUICK" -f "$(empty_file)") || die "could not list the objects of $(side_label target)"
  if [[ -n "$present" ]]; then
    snapshot_open source
    snapshot_close
    target_fp=$(scratch fingerprint-target)
    fingerprint target "$target_fp"
    if same_fingerprint "$SNAP_FP_LIVE" "$target_fp"; then
      printf 'already done: %s holds exactly what %s holds; nothing restored\n' "$(side_label target)" "$(side_label source)"
      ensure_owned target
      write_marker import "none (found equal to the source)" "$SNAP_FP_LIVE" "$(side_label source)" "$(side_label target)"
      return 0
    fi
    show_diff "$SNAP_FP_LIVE" source "$target_fp" target
    die "$(side_label target) already has objects ($(printf '%s' "$present" | head -n 3 | tr '\n' ';')...) and no marker of this step, and they differ from $(side_label source): $(diff_summary "$SNAP_FP_LIVE" source "$target_fp" target)." \
      "Nothing was restored (the import never overwrites); inspect the target and empty it by hand if the source is the truth"
  fi
  snapshot_open source
  grep -q "^table|$SCHEMA\." "$SNAP_FP_LIVE" ||
    die "$(side_label source) has no table in $SCHEMA: is it the right database? Nothing was dumped"
  snapshot_dump
  restore_into target empty
  write_marker import "$DUMPED" "$SNAP_FP" "$(side_label source)" "$(side_label target)"
  printf 'imported and verified: %s on %s:%s (from %s)\n' "$TARGET_DATABASE" "$TARGET_HOST" "$TARGET_PORT" "$(side_label source)"
  warn_if_written_since source
}

empty_file() {
  local query
  query=$(scratch empty)
  empty_sql "$query"
  printf '%s' "$query"
}

require_marker() {
  marker_valid ||
    die "no marker of a copy at $IMPORTED_MARKER: phase 3's import (mode import) has not run, or its marker is gone; run the import first"
}

final_sync_create() {
  local marked target_fp
  require_marker
  marked=$(marker_fingerprint)
  target_fp=$(scratch fingerprint-target)
  fingerprint target "$target_fp"
  snapshot_open source
  if same_fingerprint "$SNAP_FP_LIVE" "$target_fp"; then
    snapshot_close
    printf 'already in sync: %s holds exactly what %s holds; nothing restored\n' "$(side_label target)" "$(side_label source)"
    if [[ "$(marker_field mode)" != final-sync ]] || ! same_fingerprint "$marked" "$target_fp"; then
      write_marker final-sync "none (found equal to the source)" "$SNAP_FP_LIVE" "$(side_label source)" "$(side_label target)"
    fi
    return 0
  fi
  if ! same_fingerprint "$marked" "$target_fp"; then
    snapshot_close
    show_diff "$marked" copied "$target_fp" now
    die "$(side_label target) was written since the last copy ($(marker_said)): $(diff_summary "$marked" copied "$target_fp" now)." \
      "Nothing was restored: the final sync never overwrites writes it did not copy. If the cluster's writes must be kept, carry" \
      "them into the legacy database by hand and empty the cluster database; to discard them, drop and recreate the cluster" \
      "database, remove $IMPORTED_MARKER and run the import (phase 3) again"
  fi
  snapshot_dump
  restore_into target "$marked"
  write_marker final-sync "$DUMPED" "$SNAP_FP" "$(side_label source)" "$(side_label target)"
  printf 'final sync done: %s holds %s as of the snapshot of %s\n' "$(side_label target)" "$(side_label source)" "$DUMPED"
}

final_sync_delete() {
  local marked legacy_fp
  if ! marker_valid; then
    printf 'nothing to carry back: no copy recorded at %s; %s and %s stay as they are\n' "$IMPORTED_MARKER" \
      "$(side_label source)" "$(side_label target)"
    return 0
  fi
  marked=$(marker_fingerprint)
  legacy_fp=$(scratch fingerprint-legacy)
  fingerprint source "$legacy_fp"
  snapshot_open target
  if same_fingerprint "$marked" "$SNAP_FP_LIVE"; then
    snapshot_close
    printf 'nothing to carry back: %s is unchanged since the last copy (%s)\n' "$(side_label target)" "$(marker_said)"
    # the legacy application owns its database again: the next final sync copies what it writes from now on
    write_marker final-sync-rollback "none (the cluster was unchanged)" "$marked" "$(side_label target)" "$(side_label source)"
    return 0
  fi
  if same_fingerprint "$legacy_fp" "$SNAP_FP_LIVE"; then
    snapshot_close
    printf 'nothing to carry back: %s already holds what %s holds\n' "$(side_label source)" "$(side_label target)"
    write_marker final-sync-rollback "none (found equal)" "$SNAP_FP_LIVE" "$(side_label target)" "$(side_label source)"
    return 0
  fi
  if same_fingerprint "$legacy_fp" "$marked"; then
    printf 'carrying back the writes to %s since the last copy: %s\n' "$(side_label target)" \
      "$(diff_summary "$marked" copied "$SNAP_FP_LIVE" cluster)"
    snapshot_dump
    restore_into source "$marked"
    write_marker final-sync-rollback "$DUMPED" "$SNAP_FP" "$(side_label target)" "$(side_label source)"
    printf 'carried back: %s holds what %s held at the snapshot of %s\n' "$(side_label source)" "$(side_label target)" "$DUMPED"
    return 0
  fi
  snapshot_dump
  log "WARNING: both databases were written since the last copy ($(marker_said)); nothing is overwritten, both stay as they are."
  log "WARNING: the cluster database's content is kept in $DUMPED (pg_restore it by hand into a scratch database to merge)."
  log "WARNING: what changed in $(side_label source):"
  show_diff "$marked" copied "$legacy_fp" legacy
  log "WARNING: what changed in $(side_label target):"
  show_diff "$marked" copied "$SNAP_FP" cluster
  # the legacy application owns its database again; the marker keeps the last copy's fingerprint, so raising
  # the target again refuses until someone merged the two (the cluster's writes are in the dump above)
  write_marker final-sync-rollback "$DUMPED" "$marked" "$(side_label target)" "$(side_label source)"
  printf 'both changed: kept the cluster database in %s; nothing overwritten\n' "$DUMPED"
}

# handed_over: the final sync handed the cluster's database to the application (the marker says final-sync)
# and no rollback took it back since. From then on neither mode's create needs, or compares, anything: the
# legacy server is retired and the tailnet name this step reached the cluster at (k8s-pg) is gone, so a re-run
# (a changed script re-runs every create) must not connect. A rollback's delete rewrites the marker
# (final-sync-rollback), so raising the target again syncs for real.
handed_over() {
  marker_valid && [[ "$(marker_field mode)" == final-sync ]]
}

step_create() {
  if handed_over; then
    printf 'already done: the final sync handed %s to the application (%s); nothing is compared or copied again\n' \
      "$TARGET_DATABASE" "$(marker_said)"
    return 0
  fi
  check_tools
  open_pgpass
  check_versions source target
  case "$MODE" in
  import) import_create ;;
  final-sync) final_sync_create ;;
  *) die "unknown MODE '$MODE' (import or final-sync)" ;;
  esac
}

step_delete() {
  case "$MODE" in
  import)
    printf 'nothing dropped: %s is protected state and keeps its data; the dumps in %s stay\n' "$(side_label target)" "$DUMP_DIR"
    ;;
  final-sync)
    check_tools
    open_pgpass
    check_versions target source
    final_sync_delete
    ;;
  *) die "unknown MODE '$MODE' (import or final-sync)" ;;
  esac
}

run_action "$@"
