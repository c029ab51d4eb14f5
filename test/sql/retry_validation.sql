-- s2s.retry and s2s.retry_failed judge a delivery by the rules the orders trigger applied
-- (one copy of them, in C): what the trigger skipped is refused, with the reason, until it
-- is corrected; what passes is made due. Endpoints are disabled: a running worker leaves
-- these deliveries alone.
\set SHOW_CONTEXT never
SET client_min_messages = notice;
CREATE SCHEMA tv;
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled, currency) VALUES
    ('tv_aff', 'affilae', 'https://lb.affilae.com/', '0123456789abcdef01234567-0123456789abcdef01234567', false, 'EUR'),
    ('tv_sw', 'swaarm_postback', 'https://track.example.swaarm-app.com', 'tok', false, 'EUR'),
    ('tv_sev', 'swaarm_s2sevent', 'https://track.example.swaarm-app.com', 'tok', false, 'EUR');
SELECT lpad(to_hex(extract(epoch FROM now())::bigint - 3600), 8, '0') || '0000000000000001' AS c1,
       lpad(to_hex(extract(epoch FROM now())::bigint - 40 * 86400), 8, '0') || '0000000000000003' AS cold
\gset
CREATE TABLE tv.orders (number text PRIMARY KEY, amount numeric, currency text,
                        click_ids text, user_id text, event_id text, ip text, ua text);
SELECT s2s.track_orders('tv.orders', 'tv_aff', order_id => 'number', amount => 'amount',
                        currency => 'currency', click_ids => 'click_ids');
SELECT s2s.track_orders('tv.orders', 'tv_sw', order_id => 'number', amount => 'amount',
                        currency => 'currency', user_id => 'user_id', event_id => 'event_id');
SELECT s2s.track_orders('tv.orders', 'tv_sev', order_id => 'number', user_id => 'user_id',
                        event_id => 'event_id', client_ip => 'ip', user_agent => 'ua');
-- an error as SQLSTATE, message and detail
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, 'delivery -?\d+', 'delivery N')
           || ' / ' || detail;
END $$;
CREATE FUNCTION pg_temp.id(ep text, number text) RETURNS bigint LANGUAGE sql AS $$
    SELECT id FROM s2s.deliveries WHERE endpoint = ep AND dedupe_key = 'order:' || number $$;
CREATE FUNCTION pg_temp.retry(ep text, number text) RETURNS text LANGUAGE sql AS $$
    SELECT pg_temp.try(format('SELECT s2s.retry(%s)', pg_temp.id(ep, number))) $$;
CREATE VIEW tv.d AS
SELECT endpoint, substr(dedupe_key, 7) AS number, status, amount, currency,
       replace(replace(click_ids, :'c1', 'C1'), :'cold', 'COLD') AS cids, last_error
  FROM s2s.deliveries WHERE endpoint LIKE 'tv\_%' ORDER BY endpoint, dedupe_key;

-- Skipped by the trigger: expired click ID, NaN, negative and NULL amounts, a currency
-- that is not ISO 4217 (kept, never replaced by the endpoint's EUR), a Swaarm order
-- without an event ID, an s2sevent without a client IP.
INSERT INTO tv.orders (number, amount, currency, click_ids) VALUES
    ('R-1', 10, 'EUR', :'cold'),
    ('R-2', 'NaN', 'EUR', :'c1'),
    ('R-3', -5, 'EUR', :'c1'),
    ('R-4', NULL, 'EUR', :'c1'),
    ('R-5', 10, 'US$', :'c1'),
    ('R-6', 10, NULL, 'not-a-click-id');
INSERT INTO tv.orders (number, amount, user_id, event_id, ip, ua) VALUES
    ('S-1', 10, 'user-1', NULL, '192.0.2.1', 'ua'),
    ('S-2', NULL, 'user-2', 'purchase', 'not an ip', 'ua');
SELECT * FROM tv.d;

-- Each retry is refused (55000) with the trigger's reason; nothing changes.
SELECT n, pg_temp.retry('tv_aff', n) FROM unnest(ARRAY['R-1', 'R-2', 'R-3', 'R-4', 'R-5', 'R-6']) n;
SELECT pg_temp.retry('tv_sw', 'S-1');
SELECT pg_temp.retry('tv_sev', 'S-2');
SELECT count(*) AS still_skipped FROM s2s.deliveries WHERE endpoint LIKE 'tv\_%' AND status = 'skipped';

-- Corrected, it passes: a currency fixed by hand, an amount fixed, an event ID filled in.
UPDATE s2s.deliveries SET currency = 'USD' WHERE id = pg_temp.id('tv_aff', 'R-5');
UPDATE s2s.deliveries SET amount = 5 WHERE id = pg_temp.id('tv_aff', 'R-3');
UPDATE s2s.deliveries SET event_id = 'purchase' WHERE id = pg_temp.id('tv_sw', 'S-1');
SELECT n, pg_temp.retry('tv_aff', n) FROM unnest(ARRAY['R-3', 'R-5']) n;
SELECT pg_temp.retry('tv_sw', 'S-1');
-- A longer attribution window (the setting the trigger judged by) makes the expired click
-- valid: judged at the order's time, it is kept, normalised.
SET s2s_tracking.click_ttl = '60d';
SELECT pg_temp.retry('tv_aff', 'R-1');
RESET s2s_tracking.click_ttl;
SELECT * FROM tv.d WHERE status = 'pending';

-- retry_failed: failed deliveries that no longer pass (edited since) stay failed, counted
-- in a NOTICE; the others are made due.
UPDATE s2s.deliveries SET status = 'failed', finished_at = now(), last_error = 'HTTP 400'
 WHERE endpoint LIKE 'tv\_%' AND status = 'pending';
UPDATE s2s.deliveries SET amount = -1 WHERE id = pg_temp.id('tv_aff', 'R-3');
UPDATE s2s.deliveries SET currency = 'dollars' WHERE id = pg_temp.id('tv_aff', 'R-5');
-- (the NOTICE's detail names the first delivery by its id, which varies: terse here)
\set VERBOSITY terse
SELECT s2s.retry_failed('tv_aff') AS requeued;
SELECT s2s.retry_failed() AS requeued_all;
\set VERBOSITY default
SELECT number, status, last_error FROM tv.d WHERE status IN ('failed', 'pending') ORDER BY 1;

-- A delivery whose endpoint is gone cannot be sent either (the guards of 0.3.0 keep this
-- from happening; a hand-made row shows it).
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, user_id, event_id, status, finished_at)
VALUES ('tv_gone', 'event', 'gone', 'u', 'e', 'failed', now());
SELECT pg_temp.try(format('SELECT s2s.retry(%s)', id)) FROM s2s.deliveries WHERE endpoint = 'tv_gone';
DELETE FROM s2s.deliveries WHERE endpoint = 'tv_gone';

SET client_min_messages = warning;
DROP SCHEMA tv CASCADE;
DELETE FROM s2s.deliveries WHERE endpoint LIKE 'tv\_%';
DELETE FROM s2s.endpoints WHERE name LIKE 'tv\_%';
