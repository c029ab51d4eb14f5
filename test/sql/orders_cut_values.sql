-- Values the orders trigger shortens are cut between characters, never inside one: the
-- raw click IDs kept on a skipped delivery (1 KB) and a bad currency (16 bytes), quoted in
-- the reason too. Every stored value is valid in the database encoding (UTF-8 here), so
-- that pg_dump writes what pg_restore reads back.
SET client_min_messages = warning;
CREATE SCHEMA tc;
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled) VALUES
    ('tc_aff', 'affilae', 'https://lb.affilae.com/', '0123456789abcdef01234567-0123456789abcdef01234567', false);
SELECT lpad(to_hex(extract(epoch FROM now())::bigint - 3600), 8, '0') || '0000000000000001' AS c1
\gset
CREATE TABLE tc.orders (number text PRIMARY KEY, amount numeric, currency text, click_ids text);
SELECT s2s.track_orders('tc.orders', 'tc_aff', order_id => 'number', amount => 'amount',
                        currency => 'currency', click_ids => 'click_ids');
-- valid in the database encoding: converting it raises otherwise
CREATE FUNCTION pg_temp.valid(t text) RETURNS boolean LANGUAGE sql AS $$
    SELECT convert_from(convert_to(t, 'UTF8'), 'UTF8') = t $$;

-- 1023 ASCII bytes then a 2-byte, a 3-byte or a 4-byte character: the 1 KB kept stops
-- before the character.
INSERT INTO tc.orders VALUES
    ('C-2', 1, NULL, repeat('x', 1023) || 'é'),
    ('C-3', 1, NULL, repeat('x', 1023) || '€'),
    ('C-4', 1, NULL, repeat('x', 1022) || '😀'),
    ('C-5', 1, NULL, repeat('é', 600));
SELECT dedupe_key, status, pg_temp.valid(click_ids) AS valid, octet_length(click_ids) AS bytes,
       length(click_ids) AS chars, last_error
  FROM s2s.deliveries WHERE endpoint = 'tc_aff' ORDER BY dedupe_key;

-- A bad currency: kept upper-cased and cut to whole characters within 16 bytes, in the
-- delivery and in its reason.
INSERT INTO tc.orders VALUES
    ('K-1', 5, 'ÉÉÉÉÉÉÉÉÉ', :'c1'),
    ('K-2', 5, 'x€€€€€€', :'c1'),
    ('K-3', 5, '€€€€€€', :'c1'),
    ('K-4', 5, 'us$', :'c1');
SELECT dedupe_key, status, currency, pg_temp.valid(currency) AS valid_currency,
       octet_length(currency) AS bytes, pg_temp.valid(last_error) AS valid_reason, last_error
  FROM s2s.deliveries WHERE endpoint = 'tc_aff' AND dedupe_key LIKE 'order:K-%'
 ORDER BY dedupe_key;

DROP SCHEMA tc CASCADE;
DELETE FROM s2s.deliveries WHERE endpoint = 'tc_aff';
DELETE FROM s2s.endpoints WHERE name = 'tc_aff';
