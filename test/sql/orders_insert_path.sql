-- How the orders trigger writes its delivery (src/delivery_insert.c): the statement
-- INSERT ... ON CONFLICT (endpoint, dedupe_key) DO NOTHING, so the table's own defaults,
-- constraints, triggers and generated columns apply to it as to any insert.
SET client_min_messages = warning;
CREATE SCHEMA ip;
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled)
    VALUES ('ip_aff', 'affilae', 'https://lb.affilae.com/', 'k', false);
-- no implied currency since 0.4.0: these endpoints name theirs
UPDATE s2s.endpoints SET currency = 'EUR' WHERE name = 'ip_aff';
SELECT lpad(to_hex(extract(epoch FROM now())::bigint - 3600), 8, '0') || '0000000000000001' AS c1
\gset
CREATE TABLE ip.orders (number text, amount numeric, status text, cids text, ua text);
SELECT s2s.track_orders('ip.orders', 'ip_aff', 'number', 'amount', click_ids => 'cids',
                        user_agent => 'ua', status => 'status',
                        validated_statuses => ARRAY['paid']) AS trigger_name;
-- a delivery without its per-row values, to compare the two paths
CREATE VIEW ip.d AS
SELECT to_jsonb(d) - '{id,dedupe_key,conversion_id,created_at,next_attempt_at}'::text[] AS row
  FROM s2s.deliveries d WHERE endpoint = 'ip_aff';

-- The table's defaults: the identity, the transaction's time, no attempt yet.
BEGIN;
INSERT INTO ip.orders VALUES ('D-1', 10.50, 'paid', :'c1', 'UA');
SELECT id = currval(pg_get_serial_sequence('s2s.deliveries', 'id')) AS id_from_identity,
       created_at = now() AS created_now, next_attempt_at = now() AS due_now,
       attempts, status, kind, amount, first_attempt_at, lease_until, sent_at
  FROM s2s.deliveries WHERE dedupe_key = 'order:D-1';
COMMIT;

-- Two rows with one order number in one statement, and a status that goes back and forth
-- in one transaction: one delivery (the second finds the first, its own transaction's).
INSERT INTO ip.orders VALUES ('D-2', 1, 'paid', :'c1', 'UA'), ('D-2', 2, 'paid', :'c1', 'UA');
BEGIN;
UPDATE ip.orders SET status = 'new' WHERE number = 'D-2';
UPDATE ip.orders SET status = 'paid' WHERE number = 'D-2';
COMMIT;
SELECT dedupe_key, amount FROM s2s.deliveries WHERE dedupe_key = 'order:D-2';

-- A shop's trigger on s2s.deliveries fires; the row is the same as without it, and still
-- enqueued once.
CREATE TABLE ip.seen (dedupe_key text);
CREATE FUNCTION ip.remember() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO ip.seen VALUES (NEW.dedupe_key); RETURN NULL; END $$;
CREATE TRIGGER ip_remember AFTER INSERT ON s2s.deliveries
    FOR EACH ROW EXECUTE FUNCTION ip.remember();
INSERT INTO ip.orders VALUES ('D-3', 10.50, 'paid', :'c1', 'UA');
UPDATE ip.orders SET status = 'new' WHERE number = 'D-3';
UPDATE ip.orders SET status = 'paid' WHERE number = 'D-3';
SELECT * FROM ip.seen;
SELECT count(DISTINCT row) AS distinct_rows, count(*) AS deliveries
  FROM ip.d WHERE row ->> 'amount' = '10.50';
DROP TRIGGER ip_remember ON s2s.deliveries;
INSERT INTO ip.orders VALUES ('D-4', 10.50, 'paid', :'c1', 'UA');
SELECT count(*) AS seen FROM ip.seen;
SELECT count(DISTINCT row) AS distinct_rows, count(*) AS deliveries
  FROM ip.d WHERE row ->> 'amount' = '10.50';

-- Another unique index that the delivery of an order validated again would also violate:
-- nothing is raised (the statement checks its arbiter first and stops there), still one.
CREATE UNIQUE INDEX ip_conversion ON s2s.deliveries (endpoint, conversion_id);
UPDATE ip.orders SET status = 'new' WHERE number = 'D-1';
UPDATE ip.orders SET status = 'paid' WHERE number = 'D-1';
SELECT count(*) AS deliveries FROM s2s.deliveries WHERE dedupe_key = 'order:D-1';
DROP INDEX s2s.ip_conversion;

-- An index that becomes ready for inserts: CREATE INDEX CONCURRENTLY does it by updating
-- the index's pg_index row, which invalidates the index alone, not the table (here that
-- very update, made by hand so that it happens between two orders of one session). The
-- next delivery must go into the index: amcheck finds any row missing from it.
CREATE EXTENSION amcheck;
CREATE INDEX ip_ready ON s2s.deliveries (conversion_id);
UPDATE pg_index SET indisready = false, indisvalid = false WHERE indexrelid = 's2s.ip_ready'::regclass;
INSERT INTO ip.orders VALUES ('R-1', 1, 'paid', :'c1', 'UA');
UPDATE pg_index SET indisready = true WHERE indexrelid = 's2s.ip_ready'::regclass;
INSERT INTO ip.orders VALUES ('R-2', 1, 'paid', :'c1', 'UA');
DELETE FROM s2s.deliveries WHERE dedupe_key = 'order:R-1';  -- never indexed, by design
UPDATE pg_index SET indisvalid = true WHERE indexrelid = 's2s.ip_ready'::regclass;
SELECT bt_index_check('s2s.ip_ready', true);
DROP INDEX s2s.ip_ready;
DROP EXTENSION amcheck;

-- A CHECK constraint added to s2s.deliveries holds for the trigger's rows too.
ALTER TABLE s2s.deliveries ADD CONSTRAINT ip_small CHECK (amount < 1000);
\set VERBOSITY terse
INSERT INTO ip.orders VALUES ('D-5', 5000, 'paid', :'c1', 'UA');
\set VERBOSITY default
ALTER TABLE s2s.deliveries DROP CONSTRAINT ip_small;
-- A column default changed after the first rows: the new one is used.
ALTER TABLE s2s.deliveries ALTER COLUMN next_attempt_at SET DEFAULT now() + interval '1 day';
BEGIN;
INSERT INTO ip.orders VALUES ('D-6', 6, 'paid', :'c1', 'UA');
SELECT next_attempt_at - now() AS due_in FROM s2s.deliveries WHERE dedupe_key = 'order:D-6';
COMMIT;
ALTER TABLE s2s.deliveries ALTER COLUMN next_attempt_at SET DEFAULT now();
SELECT dedupe_key, status FROM s2s.deliveries WHERE endpoint = 'ip_aff' ORDER BY dedupe_key;

-- A generated column on s2s.deliveries, virtual where the server has them (18 on), stored
-- before: computed for the trigger's row, and a constraint on it checked.
DO $$
BEGIN
    EXECUTE format('ALTER TABLE s2s.deliveries ADD COLUMN ip_gen text'
                   ' GENERATED ALWAYS AS (upper(dedupe_key)) %s',
                   CASE WHEN current_setting('server_version_num')::int >= 180000
                        THEN 'VIRTUAL' ELSE 'STORED' END);
END
$$;
ALTER TABLE s2s.deliveries ADD CONSTRAINT ip_gen_check CHECK (ip_gen <> 'ORDER:G-2');
INSERT INTO ip.orders VALUES ('G-1', 1, 'paid', :'c1', 'UA');
SELECT dedupe_key, ip_gen FROM s2s.deliveries WHERE dedupe_key = 'order:G-1';
\set VERBOSITY terse
INSERT INTO ip.orders VALUES ('G-2', 1, 'paid', :'c1', 'UA');
\set VERBOSITY default
ALTER TABLE s2s.deliveries DROP COLUMN ip_gen;
INSERT INTO ip.orders VALUES ('G-3', 1, 'paid', :'c1', 'UA');
SELECT dedupe_key FROM s2s.deliveries WHERE dedupe_key LIKE 'order:G-%' ORDER BY 1;

DROP SCHEMA ip CASCADE;
DELETE FROM s2s.deliveries WHERE endpoint = 'ip_aff';
DELETE FROM s2s.endpoints WHERE name = 'ip_aff';
