-- A realistic legacy database for the import tests (run as the superuser `postgres` in a database owned by
-- miniflux; @DATABASE@ is its name). Most objects are created by eblume, as the original hand-run migration
-- did; the application's role miniflux owns a few. Every object class a feed reader's database can hold:
-- a second schema, an enum, a domain, a range type (a multirange with it on 16+), a composite type, a
-- collation, serial, identity and standalone sequences (one never called), a partitioned table, a view, a
-- materialized view, functions and a procedure (EXECUTE revoked from PUBLIC on one), a trigger, grants to
-- a reporting role (table, column, schema, sequence, function, default privileges), database settings and a
-- comment, odd bytes and a few thousand rows.
COMMENT ON DATABASE "@DATABASE@" IS 'the feed reader''s data (odd: tab	and \ backslash)';
ALTER DATABASE "@DATABASE@" SET search_path = "$user", public, reports;
ALTER DATABASE "@DATABASE@" SET statement_timeout = '5min';
ALTER DATABASE "@DATABASE@" SET app.tenant = 'home lab';
ALTER ROLE reporting IN DATABASE "@DATABASE@" SET work_mem = '8MB';

SET ROLE eblume;
CREATE SCHEMA reports;
CREATE TYPE entry_status AS ENUM ('unread', 'read', 'removed');
CREATE DOMAIN url AS text CHECK (VALUE ~ '^https?://');
CREATE TYPE score_range AS RANGE (subtype = float8);
CREATE TYPE reports.pair AS (label text, value numeric(12, 3));
CREATE COLLATION reports.bytewise FROM "C";
CREATE SEQUENCE icon_ids START 100;
CREATE SEQUENCE reports.never_called;
CREATE TABLE schema_version (version text NOT NULL);
CREATE TABLE users (id bigserial PRIMARY KEY, username text NOT NULL UNIQUE, is_admin boolean NOT NULL DEFAULT false,
                    password_hash bytea, settings jsonb);
CREATE TABLE feeds (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  feed_url url NOT NULL, title text COLLATE reports.bytewise NOT NULL, icon_id bigint DEFAULT nextval('icon_ids'));
CREATE TABLE entries (
  id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  feed_id bigint NOT NULL REFERENCES feeds (id) ON DELETE CASCADE, title text NOT NULL, content text,
  status entry_status NOT NULL DEFAULT 'unread', score score_range, tags text[], raw bytea,
  published_at timestamptz NOT NULL DEFAULT now(), changed_at timestamptz);
CREATE INDEX entries_feed_status ON entries (feed_id, status);
CREATE VIEW unread_entries AS SELECT id, title FROM entries WHERE status = 'unread';
CREATE TABLE reports.events (id bigint NOT NULL, at date NOT NULL, payload reports.pair) PARTITION BY RANGE (at);
CREATE TABLE reports.events_2026h1 PARTITION OF reports.events FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
CREATE TABLE reports.events_2026h2 PARTITION OF reports.events FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');
CREATE FUNCTION touch_changed_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.changed_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER entries_touch BEFORE UPDATE ON entries FOR EACH ROW EXECUTE FUNCTION touch_changed_at();
CREATE FUNCTION reports.unread_count(p_user bigint) RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER
  AS $$ SELECT count(*) FROM public.entries WHERE user_id = p_user AND status = 'unread' $$;
REVOKE EXECUTE ON FUNCTION reports.unread_count(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reports.unread_count(bigint) TO reporting;
GRANT USAGE ON SCHEMA reports TO reporting;
GRANT USAGE, CREATE ON SCHEMA reports TO miniflux;
GRANT SELECT ON entries, feeds TO reporting;
GRANT SELECT (id, username) ON users TO reporting;
GRANT USAGE ON SEQUENCE icon_ids TO reporting;
GRANT USAGE ON TYPE entry_status TO reporting;
CREATE MATERIALIZED VIEW reports.feed_stats AS
  SELECT feed_id, count(*) AS entries, count(*) FILTER (WHERE status = 'unread') AS unread FROM public.entries GROUP BY feed_id
  WITH NO DATA;
RESET ROLE;

SET ROLE miniflux;
CREATE PROCEDURE reports.refresh_stats() LANGUAGE sql AS $$ REFRESH MATERIALIZED VIEW reports.feed_stats $$;
ALTER DEFAULT PRIVILEGES IN SCHEMA reports GRANT SELECT ON TABLES TO reporting;
RESET ROLE;
GRANT SELECT ON reports.events, reports.events_2026h1, reports.events_2026h2 TO reporting;

INSERT INTO schema_version VALUES ('112');
INSERT INTO users (username, is_admin, password_hash, settings) VALUES
  ('eblume', true, '\x00ff7f80'::bytea, '{"theme": "dark", "odd": "tab\there \u00e9 \ud83d\ude00"}'),
  ('reader', false, NULL, NULL),
  ('o''brien "quoted" \ back|slash', false, '\x'::bytea, '[]');
INSERT INTO feeds (user_id, feed_url, title) VALUES
  (1, 'https://example.org/feed.xml', 'Example'), (2, 'https://example.net/atom', 'Other'),
  (1, 'http://example.com/rss?q=a|b', E'Tabs\tand\nnewlines'), (3, 'https://example.org/ü', 'Ünïcödé ✓');
INSERT INTO entries (user_id, feed_id, title, content, status, score, tags, raw, published_at)
  SELECT 1 + n % 3, 1 + n % 4, 'entry ' || n,
         CASE n % 5 WHEN 0 THEN NULL WHEN 1 THEN E'line one\nline two\t\\ end' WHEN 2 THEN repeat('x', n % 300)
                    WHEN 3 THEN 'emoji 😀 and ' || chr(1 + n % 30) ELSE '' END,
         (ARRAY['unread', 'read', 'removed'])[1 + n % 3]::entry_status,
         CASE WHEN n % 7 = 0 THEN NULL ELSE numrange(n % 10, n % 10 + 5)::text::score_range END,
         ARRAY['t' || n % 4, NULL, 'x,y'],
         decode(lpad(to_hex(n), 8, '0'), 'hex'),
         timestamptz '2026-01-01 00:00:00+00' + n * interval '37 minutes'
    FROM generate_series(1, 3000) AS n;
INSERT INTO reports.events SELECT n, date '2026-01-01' + n % 360, ROW('event ' || n, n / 7.0)::reports.pair
  FROM generate_series(1, 500) AS n;
SELECT setval('icon_ids', 140, true);
REFRESH MATERIALIZED VIEW reports.feed_stats;
