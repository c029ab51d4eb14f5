-- s2s.enqueue_conversion: when an order is enqueued, exactly once, what a delivery holds,
-- bad tracking data (never an error), broken configuration (an error), and an app role
-- without any right on s2s.
SET client_min_messages = warning;
CREATE SCHEMA tr;
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled, currency) VALUES
    ('tr_aff', 'affilae', 'https://lb.affilae.com/', '0123456789abcdef01234567-0123456789abcdef01234567', false, 'EUR'),
    ('tr_sw', 'swaarm_postback', 'https://track.example.swaarm-app.com', 'tok', false, 'USD'),
    ('tr_sev', 'swaarm_s2sevent', 'https://track.example.swaarm-app.com', 'tok', false, 'EUR');
-- Click IDs one hour, two hours and 400 days old (the last is expired); outputs show them
-- as C1, C2 and COLD.
SELECT lpad(to_hex(extract(epoch FROM now())::bigint - 3600), 8, '0') || '0000000000000001' AS c1,
       lpad(to_hex(extract(epoch FROM now())::bigint - 7200), 8, '0') || '0000000000000002' AS c2,
       lpad(to_hex(extract(epoch FROM now())::bigint - 400 * 86400), 8, '0') || '0000000000000003' AS cold
\gset
CREATE TABLE tr.orders (
    id bigint PRIMARY KEY,
    number text NOT NULL,
    customer text,
    amount numeric(12,2),
    currency text,
    status text NOT NULL DEFAULT 'new',
    click_ids text,
    ip text,
    ua text,
    payment text,
    vouchers text[]
);
SELECT s2s.track_orders('tr.orders', 'tr_aff', order_id => 'number', amount => 'amount',
                        currency => 'currency', click_ids => 'click_ids', customer => 'customer',
                        payment => 'payment', voucher => 'vouchers', cv => '''spring''',
                        client_ip => 'ip', user_agent => 'ua', status => 'status',
                        validated_statuses => ARRAY['paid', 'shipped']);
CREATE VIEW tr.d AS
SELECT endpoint, kind, dedupe_key, conversion_id, amount, currency, payment, customer, cv,
       voucher, replace(replace(replace(click_ids, :'c1', 'C1'), :'c2', 'C2'), :'cold', 'COLD') AS cids,
       client_ip, user_agent, status, last_error, finished_at IS NOT NULL AS finished
  FROM s2s.deliveries WHERE endpoint LIKE 'tr\_%' ORDER BY endpoint, dedupe_key;

-- Inserted validated: one pending delivery; the amount is exact, the currency the order's,
-- the click IDs normalised (oldest first), vouchers joined with ';'.
INSERT INTO tr.orders VALUES (1, 'A-1', 'cust-1', 123.45, 'usd', 'paid', :'c1' || '-' || :'c2',
                              '203.0.113.7', 'Mozilla/5.0', 'online', ARRAY['SPRING', 'VIP']);
SELECT * FROM tr.d;
-- Inserted as new: nothing; an UPDATE that does not touch the status: nothing; validated: one.
INSERT INTO tr.orders (id, number, amount, click_ids) VALUES (2, 'A-2', 10, :'c1');
UPDATE tr.orders SET amount = 11 WHERE id = 2;
SELECT count(*) AS deliveries FROM s2s.deliveries WHERE dedupe_key = 'order:A-2';
UPDATE tr.orders SET status = 'paid' WHERE id = 2;
-- The currency column is NULL: the endpoint's currency.
SELECT dedupe_key, amount, currency, status FROM s2s.deliveries WHERE dedupe_key = 'order:A-2';
-- Status back and forth, and from one validated status to another: still one delivery.
UPDATE tr.orders SET status = 'cancelled' WHERE id = 2;
UPDATE tr.orders SET status = 'paid' WHERE id = 2;
UPDATE tr.orders SET status = 'shipped' WHERE id = 2;
UPDATE tr.orders SET status = 'new' WHERE id IN (1, 2);
UPDATE tr.orders SET status = 'shipped' WHERE id IN (1, 2);
SELECT dedupe_key, count(*) FROM s2s.deliveries WHERE endpoint = 'tr_aff' GROUP BY 1 ORDER BY 1;
-- Validated in the same transaction as inserted, then updated again: one.
BEGIN;
INSERT INTO tr.orders (id, number, amount, click_ids) VALUES (3, 'A-3', 5, :'c1');
UPDATE tr.orders SET status = 'paid' WHERE id = 3;
UPDATE tr.orders SET status = 'new' WHERE id = 3;
UPDATE tr.orders SET status = 'paid' WHERE id = 3;
COMMIT;
SELECT count(*) AS deliveries FROM s2s.deliveries WHERE dedupe_key = 'order:A-3';
-- A rolled-back order leaves nothing.
BEGIN;
INSERT INTO tr.orders (id, number, amount, status, click_ids) VALUES (4, 'A-4', 5, 'paid', :'c1');
SELECT count(*) AS inside FROM s2s.deliveries WHERE dedupe_key = 'order:A-4';
ROLLBACK;
SELECT count(*) AS after_rollback FROM s2s.deliveries WHERE dedupe_key = 'order:A-4';
-- ... and so does a rolled-back subtransaction.
BEGIN;
SAVEPOINT s;
INSERT INTO tr.orders (id, number, amount, status, click_ids) VALUES (4, 'A-4', 5, 'paid', :'c1');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT count(*) AS after_savepoint FROM s2s.deliveries WHERE dedupe_key = 'order:A-4';

-- Bad tracking data never raises.
-- Nothing to attribute (no click ID, an empty one): nothing at all.
INSERT INTO tr.orders (id, number, amount, status) VALUES (10, 'B-10', 5, 'paid');
INSERT INTO tr.orders (id, number, amount, status, click_ids) VALUES (11, 'B-11', 5, 'paid', '');
-- Only invalid or expired click IDs: skipped, with the reason and the raw value.
INSERT INTO tr.orders (id, number, amount, status, click_ids) VALUES (12, 'B-12', 5, 'paid', 'not-a-click-id');
INSERT INTO tr.orders (id, number, amount, status, click_ids) VALUES (13, 'B-13', 5, 'paid', :'cold');
-- Some invalid among valid ones: the valid ones are kept.
INSERT INTO tr.orders (id, number, amount, status, click_ids) VALUES (14, 'B-14', 5, 'paid', 'junk-' || :'c1' || '-' || :'cold');
-- NULL, negative, zero amounts.
INSERT INTO tr.orders (id, number, amount, status, click_ids) VALUES (15, 'B-15', NULL, 'paid', :'c1');
INSERT INTO tr.orders (id, number, amount, status, click_ids) VALUES (16, 'B-16', -0.01, 'paid', :'c1');
INSERT INTO tr.orders (id, number, amount, status, click_ids) VALUES (17, 'B-17', 0, 'paid', :'c1');
-- An order ID too long for the dedupe key: a warning, nothing enqueued, the order is written.
INSERT INTO tr.orders (id, number, amount, status, click_ids) VALUES (9, repeat('x', 513), 5, 'paid', :'c1');
SELECT (SELECT count(*) FROM tr.orders WHERE id = 9) AS orders,
       (SELECT count(*) FROM s2s.deliveries WHERE conversion_id = repeat('x', 513)) AS deliveries;
-- A currency that is not a code; a client IP that is not an address (stored as NULL).
INSERT INTO tr.orders (id, number, amount, status, click_ids, currency) VALUES (18, 'B-18', 5, 'paid', :'c1', 'euros');
INSERT INTO tr.orders (id, number, amount, status, click_ids, ip) VALUES (19, 'B-19', 5, 'paid', :'c1', '1.2.3.4, 10.0.0.1');
INSERT INTO tr.orders (id, number, amount, status, click_ids, ip) VALUES (20, 'B-20', 5, 'paid', :'c1', ' 2001:db8::1 ');
INSERT INTO tr.orders (id, number, amount, status, click_ids, ip) VALUES (21, 'B-21', 5, 'paid', :'c1', '300.1.1.1');
SELECT dedupe_key, amount, currency, client_ip, cids, status, last_error, finished
  FROM tr.d WHERE dedupe_key LIKE 'order:B-%';
-- A skipped delivery also counts as the order's one delivery.
UPDATE tr.orders SET status = 'new', click_ids = :'c1' WHERE id = 12;
UPDATE tr.orders SET status = 'paid' WHERE id = 12;
SELECT count(*), min(status::text) FROM s2s.deliveries WHERE dedupe_key = 'order:B-12';

-- Click IDs from a text[] column; integer and money amounts; an inet client IP; no status
-- column: INSERT only; the endpoint's currency, read again after it changes.
CREATE TABLE tr.orders2 (
    id integer PRIMARY KEY,
    cents bigint,
    total money,
    cids text[],
    ip inet
);
SELECT s2s.track_orders('tr.orders2', 'tr_aff', 'id', 'cents', click_ids => 'cids', client_ip => 'ip');
INSERT INTO tr.orders2 VALUES (1, 4200, NULL, ARRAY[:'c1', NULL, 'bad', :'c2'], '198.51.100.1');
UPDATE tr.orders2 SET cents = 4300;
UPDATE s2s.endpoints SET currency = 'GBP' WHERE name = 'tr_aff';
INSERT INTO tr.orders2 VALUES (2, 7, NULL, ARRAY[]::text[], NULL), (3, 8, NULL, ARRAY[:'c1'], NULL);
SELECT s2s.track_orders('tr.orders2', 'tr_aff', 'id', 'total', click_ids => 'cids', client_ip => 'ip');
SET lc_monetary = 'C';
INSERT INTO tr.orders2 VALUES (4, NULL, 1234.56, ARRAY[:'c1'], NULL);
SELECT dedupe_key, amount, currency, cids, client_ip, status FROM tr.d WHERE dedupe_key IN ('order:1', 'order:2', 'order:3', 'order:4');
UPDATE s2s.endpoints SET currency = 'EUR' WHERE name = 'tr_aff';

-- Status as an enum (compared by value) and as char(n) (trailing blanks ignored); a
-- char(3) currency, upper-cased.
CREATE TYPE tr.st AS ENUM ('new', 'paid', 'void');
CREATE TABLE tr.orders4 (id int, amount numeric, cids varchar, st tr.st, cst char(8), cur char(3));
SELECT s2s.track_orders('tr.orders4', 'tr_aff', 'id', 'amount', 'cur', click_ids => 'cids', status => 'st', validated_statuses => '{paid}');
SELECT s2s.track_orders('tr.orders4', 'tr_sw', 'id', user_id => 'cids', event_id => '''sale''', status => 'cst', validated_statuses => '{paid}');
INSERT INTO tr.orders4 VALUES (41, 1, :'c1', 'new', 'new', 'chf'), (42, 2, :'c1', 'paid', 'new', 'chf'),
                              (43, 3, :'c1', 'new', 'paid', NULL);
UPDATE tr.orders4 SET st = 'paid' WHERE id = 41;
UPDATE tr.orders4 SET st = 'void' WHERE id = 42;
UPDATE tr.orders4 SET st = 'paid' WHERE id = 42;
UPDATE tr.orders4 SET cst = 'paid' WHERE id = 41;
SELECT endpoint, dedupe_key, amount, currency, event_id, status FROM s2s.deliveries
 WHERE dedupe_key IN ('order:41', 'order:42', 'order:43') ORDER BY 1, 2;

-- Two endpoints on one table: an Affilae conversion and a Swaarm postback per order.
CREATE TABLE tr.orders3 (
    id text PRIMARY KEY,
    amount numeric,
    cids text,
    device_id text,
    ip inet,
    ua text,
    state text
);
SELECT s2s.track_orders('tr.orders3', 'tr_aff', 'id', 'amount', click_ids => 'cids', status => 'state', validated_statuses => '{ok}');
SELECT s2s.track_orders('tr.orders3', 'tr_sw', 'id', 'amount', user_id => 'device_id', event_id => '''purchase''', client_ip => 'ip', user_agent => 'ua', status => 'state', validated_statuses => '{ok}');
SELECT s2s.track_orders('tr.orders3', 'tr_sev', 'id', user_id => 'device_id', event_id => '''it''''s''', client_ip => 'ip', user_agent => 'ua', status => 'state', validated_statuses => '{ok}');
INSERT INTO tr.orders3 VALUES ('C-1', 99.90, :'c1', 'dev-1', '192.0.2.1', 'UA/1', 'ok');
-- Swaarm: no user ID, nothing to attribute; no user agent, s2sevent skipped; no amount, fine.
INSERT INTO tr.orders3 VALUES ('C-2', 1, NULL, NULL, '192.0.2.1', 'UA/1', 'ok');
INSERT INTO tr.orders3 VALUES ('C-3', NULL, NULL, 'dev-3', '192.0.2.1', NULL, 'ok');
SELECT endpoint, dedupe_key, amount, currency, user_id, event_id, client_ip, user_agent, status, last_error
  FROM s2s.deliveries WHERE endpoint LIKE 'tr\_%' AND dedupe_key LIKE 'order:C-%' ORDER BY 1, 2;

-- A broken configuration raises a clear error (and the order is not written).
ALTER TABLE tr.orders3 RENAME COLUMN ua TO user_agent;
INSERT INTO tr.orders3 VALUES ('C-4', 1, :'c1', 'dev-4', NULL, 'UA', 'ok');
ALTER TABLE tr.orders3 RENAME COLUMN user_agent TO ua;
ALTER TABLE tr.orders3 ALTER COLUMN amount TYPE real;
INSERT INTO tr.orders3 VALUES ('C-4', 1, :'c1', 'dev-4', NULL, 'UA', 'ok');
ALTER TABLE tr.orders3 ALTER COLUMN amount TYPE numeric;
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled) VALUES ('tr_gone', 'affilae', 'https://lb.affilae.com/', 'k', false);
SELECT s2s.track_orders('tr.orders3', 'tr_gone', 'id', 'amount', click_ids => 'cids');
INSERT INTO tr.orders3 VALUES ('C-5', 1, :'c1', 'dev-5', NULL, 'UA', 'ok');
DELETE FROM s2s.deliveries WHERE endpoint = 'tr_gone';
-- a tracked endpoint cannot be deleted (endpoints_tracked.sql): untrack it first
DELETE FROM s2s.endpoints WHERE name = 'tr_gone';
SELECT s2s.untrack_orders('tr.orders3', 'tr_gone');
DELETE FROM s2s.endpoints WHERE name = 'tr_gone';
INSERT INTO tr.orders3 VALUES ('C-6', 1, :'c1', 'dev-6', NULL, 'UA', 'ok');
SELECT endpoint, count(*) FROM s2s.deliveries WHERE dedupe_key = 'order:C-6' GROUP BY 1 ORDER BY 1;
-- Not a row trigger after INSERT or UPDATE: refused.
CREATE TRIGGER wrong BEFORE INSERT ON tr.orders3 FOR EACH ROW
    EXECUTE FUNCTION s2s.enqueue_conversion('endpoint=tr_aff', 'order_id=id', 'amount=amount', 'click_ids=cids');
INSERT INTO tr.orders3 VALUES ('C-7', 1, :'c1', 'dev-7', NULL, 'UA', 'ok');
DROP TRIGGER wrong ON tr.orders3;
SELECT s2s.enqueue_conversion();

-- Hand-written triggers are held to the same rules as track_orders's.
CREATE TRIGGER hand AFTER INSERT ON tr.orders3 FOR EACH ROW
    EXECUTE FUNCTION s2s.enqueue_conversion('order_id=id', 'amount=amount', 'click_ids=cids');
INSERT INTO tr.orders3 VALUES ('C-8', 1, :'c1', 'dev-8', NULL, 'UA', 'ok');
DROP TRIGGER hand ON tr.orders3;
CREATE TRIGGER hand AFTER INSERT ON tr.orders3 FOR EACH ROW
    EXECUTE FUNCTION s2s.enqueue_conversion('endpoint=tr_aff', 'order_id=id', 'amount=amount', 'click_ids=cids', 'amount=amount');
INSERT INTO tr.orders3 VALUES ('C-8', 1, :'c1', 'dev-8', NULL, 'UA', 'ok');
DROP TRIGGER hand ON tr.orders3;
CREATE TRIGGER hand AFTER INSERT ON tr.orders3 FOR EACH ROW
    EXECUTE FUNCTION s2s.enqueue_conversion('endpoint=tr_aff', 'order_id=id', 'amount=amount', 'clickids=cids');
INSERT INTO tr.orders3 VALUES ('C-8', 1, :'c1', 'dev-8', NULL, 'UA', 'ok');
DROP TRIGGER hand ON tr.orders3;
CREATE TRIGGER hand AFTER INSERT ON tr.orders3 FOR EACH ROW
    EXECUTE FUNCTION s2s.enqueue_conversion('endpoint=tr_aff', 'order_id', 'amount=amount', 'click_ids=cids');
INSERT INTO tr.orders3 VALUES ('C-8', 1, :'c1', 'dev-8', NULL, 'UA', 'ok');
DROP TRIGGER hand ON tr.orders3;
-- untrack_orders also finds a hand-written trigger by its endpoint argument.
CREATE TRIGGER hand AFTER INSERT ON tr.orders3 FOR EACH ROW
    EXECUTE FUNCTION s2s.enqueue_conversion('order_id=id', 'endpoint=tr_aff', 'amount=amount', 'click_ids=cids');
SELECT s2s.untrack_orders('tr.orders3', 'tr_aff');
SELECT tgname FROM pg_trigger WHERE tgrelid = 'tr.orders3'::regclass ORDER BY 1;

-- Partitioned orders: the trigger reaches every partition, whatever its column order.
CREATE TABLE tr.porders (id bigint, amount numeric, cids text, status text) PARTITION BY RANGE (id);
CREATE TABLE tr.porders_1 PARTITION OF tr.porders FOR VALUES FROM (0) TO (100);
CREATE TABLE tr.porders_2 (status text, cids text, amount numeric, id bigint);
ALTER TABLE tr.porders ATTACH PARTITION tr.porders_2 FOR VALUES FROM (100) TO (200);
SELECT s2s.track_orders('tr.porders', 'tr_aff', 'id', 'amount', click_ids => 'cids', status => 'status', validated_statuses => '{paid}');
INSERT INTO tr.porders VALUES (50, 1.5, :'c1', 'paid'), (150, 2.5, :'c1', 'paid'), (151, 3, :'c1', 'new');
SELECT dedupe_key, amount FROM s2s.deliveries WHERE dedupe_key IN ('order:50', 'order:150', 'order:151') ORDER BY 1;

-- The shop's app role writes orders with no right at all on schema s2s.
CREATE ROLE tr_app;
GRANT USAGE ON SCHEMA tr TO tr_app;
GRANT SELECT, INSERT, UPDATE ON tr.orders TO tr_app;
SELECT has_schema_privilege('tr_app', 's2s', 'USAGE') AS app_uses_s2s,
       has_table_privilege('tr_app', 's2s.deliveries', 'INSERT') AS app_inserts_deliveries;
SET ROLE tr_app;
INSERT INTO tr.orders (id, number, amount, status, click_ids) VALUES (30, 'D-30', 30, 'new', :'c1');
UPDATE tr.orders SET status = 'paid' WHERE id = 30;
SELECT count(*) FROM s2s.deliveries;
RESET ROLE;
SELECT dedupe_key, amount, status FROM s2s.deliveries WHERE dedupe_key = 'order:D-30';
-- A fresh session whose search_path puts the app role's own "=" operator before
-- pg_catalog: the trigger's statements never use it.
CREATE SCHEMA tr_evil AUTHORIZATION tr_app;
SET ROLE tr_app;
CREATE FUNCTION tr_evil.eq(text, text) RETURNS boolean LANGUAGE plpgsql
    AS $$BEGIN RAISE EXCEPTION 'the app role''s operator was used'; END$$;
CREATE OPERATOR tr_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = tr_evil.eq);
RESET ROLE;
\c
SET client_min_messages = warning;
SET ROLE tr_app;
SET search_path = tr_evil, pg_catalog, tr;
SELECT 'a'::text = 'a'::text AS shadowed;
INSERT INTO orders (id, number, amount, status, click_ids) VALUES (31, 'D-31', 31, 'paid', :'c1');
RESET search_path;
RESET ROLE;
SELECT dedupe_key, amount, status FROM s2s.deliveries WHERE dedupe_key = 'order:D-31';

-- Clean up.
DELETE FROM s2s.deliveries WHERE endpoint LIKE 'tr\_%';
DROP SCHEMA tr CASCADE;
DELETE FROM s2s.endpoints WHERE name LIKE 'tr\_%';
DROP SCHEMA tr_evil CASCADE;
DROP OWNED BY tr_app;
DROP ROLE tr_app;
