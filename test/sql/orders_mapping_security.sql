-- Mapping expressions against a database user who may change the functions they call:
-- a replaced function is used at once in every backend (the compiled expression is not
-- kept past it), a polymorphic function outside pg_catalog is refused (a later overload in
-- its schema would be called instead), and a reason quoting a row's data is bounded.
SET client_min_messages = warning;
CREATE SCHEMA ms;
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled, currency) VALUES
    ('ms_aff', 'affilae', 'https://lb.affilae.com/', '0123456789abcdef01234567-0123456789abcdef01234567', false, 'EUR');
CREATE TABLE ms.orders (number integer, aecid text, ip text, total numeric(12,2), metadata jsonb);
SELECT lpad(to_hex(extract(epoch FROM now())::bigint - 3600), 8, '0') || '0000000000000001' AS c1 \gset

-- A function replaced with CREATE OR REPLACE (or altered) after the trigger first fired in
-- this backend: the next order uses its new definition, as a new backend would.
CREATE FUNCTION ms.net(numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS 'SELECT $1';
SELECT s2s.track_orders('ms.orders', 'ms_aff', order_id => 'number', click_ids => 'aecid',
                        amount => 'ms.net(total)', client_ip => 'ip');
INSERT INTO ms.orders VALUES (1, :'c1', '192.0.2.1', 10);
CREATE OR REPLACE FUNCTION ms.net(numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS 'SELECT $1 - 1';
INSERT INTO ms.orders VALUES (2, :'c1', '192.0.2.1', 10);
SELECT conversion_id, amount FROM s2s.deliveries WHERE endpoint = 'ms_aff' ORDER BY conversion_id;

-- A data exception that quotes the row (a cast's input) is kept as the reason, cut to its
-- first 512 bytes: a shopper's 100 kB of metadata is not copied into the queue.
SELECT s2s.track_orders('ms.orders', 'ms_aff', order_id => 'number', click_ids => 'aecid',
                        amount => $$(metadata->>'net')::numeric$$, client_ip => 'ip');
INSERT INTO ms.orders (number, aecid, ip, metadata)
VALUES (4, :'c1', '192.0.2.1', jsonb_build_object('net', repeat('é', 50000)));
SELECT status, octet_length(last_error) BETWEEN 500 AND 600 AS reason_cut,
       left(last_error, 110) AS reason
  FROM s2s.deliveries WHERE endpoint = 'ms_aff' AND conversion_id = '4';

-- Compiling an expression checks the EXECUTE right of the role writing the order: one
-- compiled in this backend for another role is compiled again, so a role without that
-- right never runs the function through a configuration that a superuser's order built.
CREATE FUNCTION ms.label_of(integer) RETURNS text LANGUAGE sql STABLE AS $$SELECT 'label-' || $1$$;
REVOKE EXECUTE ON FUNCTION ms.label_of(integer) FROM PUBLIC;
CREATE ROLE ms_app;
GRANT USAGE ON SCHEMA ms TO ms_app;
GRANT INSERT ON ms.orders TO ms_app;
SELECT s2s.track_orders('ms.orders', 'ms_aff', order_id => 'number', click_ids => 'aecid',
                        cv => 'ms.label_of(number)', client_ip => 'ip');
INSERT INTO ms.orders VALUES (5, :'c1', '192.0.2.1', 10);
SET ROLE ms_app;
INSERT INTO ms.orders VALUES (6, :'c1', '192.0.2.1', 10);
RESET ROLE;
SELECT conversion_id, cv FROM s2s.deliveries
 WHERE endpoint = 'ms_aff' AND conversion_id IN ('5', '6') ORDER BY conversion_id;

-- A polymorphic function or operator outside pg_catalog is refused: the trigger looks it
-- up again by name in every backend, and an overload with the row's exact types, added
-- later by a role that may create in its schema, would then run instead, as whoever writes
-- the order.
CREATE ROLE ms_creator;
GRANT USAGE, CREATE ON SCHEMA ms TO ms_creator;
CREATE FUNCTION ms.label(anyelement) RETURNS text LANGUAGE sql STABLE AS $$SELECT 'label-' || $1$$;
CREATE FUNCTION ms.cat(anyelement, anyelement) RETURNS text LANGUAGE sql STABLE AS $$SELECT $1 || '-' || $2$$;
CREATE OPERATOR ms.### (LEFTARG = anyelement, RIGHTARG = anyelement, FUNCTION = ms.cat);
\set VERBOSITY default
SELECT s2s.track_orders('ms.orders', 'ms_aff', order_id => 'number', click_ids => 'aecid',
                        cv => 'ms.label(number)', client_ip => 'ip');
SELECT s2s.track_orders('ms.orders', 'ms_aff', order_id => 'number', click_ids => 'aecid',
                        cv => 'number OPERATOR(ms.###) number', client_ip => 'ip');
\set VERBOSITY terse
SET ROLE ms_creator;
CREATE FUNCTION ms.label(integer) RETURNS text LANGUAGE sql IMMUTABLE AS $$SELECT 'planted, run as ' || current_user$$;
CREATE FUNCTION ms.cat2(integer, integer) RETURNS text LANGUAGE sql IMMUTABLE AS $$SELECT 'planted, run as ' || current_user$$;
CREATE OPERATOR ms.### (LEFTARG = integer, RIGHTARG = integer, FUNCTION = ms.cat2);
RESET ROLE;
-- a new backend, as every connection of the shop's pool will be one day
\c
SET client_min_messages = warning;
INSERT INTO ms.orders VALUES (3, :'c1', '192.0.2.1', 10);
SELECT conversion_id, cv FROM s2s.deliveries WHERE endpoint = 'ms_aff' AND conversion_id = '3';

DROP SCHEMA ms CASCADE;
DROP ROLE ms_creator;
DROP ROLE ms_app;
DELETE FROM s2s.deliveries WHERE endpoint = 'ms_aff';
DELETE FROM s2s.endpoints WHERE name = 'ms_aff';
