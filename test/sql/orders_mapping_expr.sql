-- s2s.track_orders mappings given as SQL expressions over the orders row: what is
-- accepted and how it is kept, what is refused and why, and a row whose expression
-- raises on its data (skipped with the reason; the order goes through).
SET client_min_messages = notice;
CREATE SCHEMA me;
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled, currency) VALUES
    ('me_aff', 'affilae', 'https://lb.affilae.com/', '0123456789abcdef01234567-0123456789abcdef01234567', false, 'EUR');
CREATE TABLE me.orders (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    number integer NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    total_gross numeric(12,4) NOT NULL,
    total_tax numeric(12,4) NOT NULL,
    currency_code text,
    ip text
);
CREATE FUNCTION me.vol(text) RETURNS text LANGUAGE sql VOLATILE AS 'SELECT $1';
CREATE FUNCTION me.stab(text) RETURNS text LANGUAGE sql STABLE AS 'SELECT $1';
CREATE TABLE me.other (x int);

-- Accepted: each expression is kept in its canonical (deparsed) text; a plain column stays
-- a column; a function outside pg_catalog must be schema-qualified and stays so.
SELECT s2s.track_orders('me.orders', 'me_aff', order_id => 'number',
                        amount => 'total_gross - total_tax',
                        currency => $$upper(currency_code)$$,
                        click_ids => $$metadata->>'aecid'$$,
                        cv => $$me.stab(metadata->>'cv')$$,
                        client_ip => 'ip');
SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'me.orders'::regclass;

-- Refused, each naming the mapping.
\set VERBOSITY default
SELECT s2s.track_orders('me.orders', 'me_aff', 'number', click_ids => $$(SELECT 'x')$$, client_ip => 'ip');
SELECT s2s.track_orders('me.orders', 'me_aff', 'number', click_ids => $$me.vol(metadata->>'aecid')$$, client_ip => 'ip');
SELECT s2s.track_orders('me.orders', 'me_aff', 'number', click_ids => $$random()::text$$, client_ip => 'ip');
SELECT s2s.track_orders('me.orders', 'me_aff', 'number', click_ids => $$string_agg(ip, '-')$$, client_ip => 'ip');
SELECT s2s.track_orders('me.orders', 'me_aff', 'number', click_ids => $$row_number() over ()$$, client_ip => 'ip');
SELECT s2s.track_orders('me.orders', 'me_aff', 'number', click_ids => $$jsonb_object_keys(metadata)$$, client_ip => 'ip');
SELECT s2s.track_orders('me.orders', 'me_aff', 'number', click_ids => $$other.x::text$$, client_ip => 'ip');
SELECT s2s.track_orders('me.orders', 'me_aff', 'number', click_ids => $$xmin::text$$, client_ip => 'ip');
SELECT s2s.track_orders('me.orders', 'me_aff', 'number', click_ids => $$$1$$, client_ip => 'ip');
SELECT s2s.track_orders('me.orders', 'me_aff', 'number', click_ids => $$ip; DROP TABLE me.other$$, client_ip => 'ip');
SELECT s2s.track_orders('me.orders', 'me_aff', 'number', click_ids => $$ip FROM me.other$$, client_ip => 'ip');
SELECT s2s.track_orders('me.orders', 'me_aff', 'number', click_ids => $$stab(ip)$$, client_ip => 'ip');
SELECT s2s.track_orders('me.orders', 'me_aff', 'number', click_ids => 'ip', amount => $$(total_gross - total_tax)::float8$$, client_ip => 'ip');
SELECT s2s.track_orders('me.orders', 'me_aff', 'number', click_ids => 'ip', amount => $$metadata->>'x'$$, client_ip => 'ip');
SELECT s2s.track_orders('me.orders', 'me_aff', 'number', click_ids => 'ip', order_time => $$metadata->>'t'$$, client_ip => 'ip');
SELECT s2s.track_orders('me.orders', 'me_aff', 'number', click_ids => 'ip', validated_when => $$metadata->>'paid'$$, client_ip => 'ip');
SELECT s2s.track_orders('me.orders', 'me_aff', 'number', click_ids => 'ip', status => $$upper(ip)$$, validated_statuses => '{X}', client_ip => 'ip');
SELECT s2s.track_orders('me.orders', 'me_aff', 'numbr', click_ids => 'ip', client_ip => 'ip');
\set VERBOSITY terse
-- the first configuration is still in place
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'me.orders'::regclass;

-- Orders through the expressions.
SELECT lpad(to_hex(extract(epoch FROM now())::bigint - 3600), 8, '0') || '0000000000000001' AS c1 \gset
INSERT INTO me.orders (number, metadata, total_gross, total_tax, currency_code, ip)
VALUES (1001, jsonb_build_object('aecid', :'c1', 'cv', 'spring'), 120.0000, 20.0000, 'usd', '192.0.2.1'),
       (1002, '{}', 50, 10, 'eur', NULL),
       (1003, jsonb_build_object('aecid', 'not-a-click'), 50, 10, 'eur', NULL);
SELECT conversion_id, amount, currency, click_ids = :'c1' AS click_ok, cv, client_ip, status, last_error
  FROM s2s.deliveries WHERE endpoint = 'me_aff' ORDER BY conversion_id;

-- An expression that raises on one row's data: the order is inserted all the same, its
-- delivery skipped with the reason.
SELECT s2s.track_orders('me.orders', 'me_aff', order_id => 'number',
                        amount => $$(metadata->>'net')::numeric$$,
                        click_ids => $$metadata->>'aecid'$$, client_ip => 'ip');
INSERT INTO me.orders (number, metadata, total_gross, total_tax, currency_code)
VALUES (2001, jsonb_build_object('aecid', :'c1', 'net', 'twelve'), 1, 0, 'EUR'),
       (2002, jsonb_build_object('aecid', :'c1', 'net', '12.5'), 1, 0, 'EUR');
SELECT conversion_id, amount, status, last_error FROM s2s.deliveries
 WHERE endpoint = 'me_aff' AND conversion_id LIKE '200%' ORDER BY conversion_id;
SELECT count(*) AS orders FROM me.orders WHERE number IN (2001, 2002);

-- An order_id expression that raises: a WARNING, nothing enqueued, the order inserted.
SELECT s2s.track_orders('me.orders', 'me_aff', order_id => $$(metadata->>'n')::int::text$$,
                        click_ids => $$metadata->>'aecid'$$, client_ip => 'ip');
INSERT INTO me.orders (number, metadata, total_gross, total_tax)
VALUES (3001, jsonb_build_object('aecid', :'c1', 'n', 'x'), 1, 0);
SELECT count(*) FROM me.orders WHERE number = 3001;
SELECT count(*) AS deliveries FROM s2s.deliveries WHERE endpoint = 'me_aff';

DROP SCHEMA me CASCADE;
DELETE FROM s2s.deliveries WHERE endpoint = 'me_aff';
DELETE FROM s2s.endpoints WHERE name = 'me_aff';
