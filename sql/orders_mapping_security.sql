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

DROP SCHEMA ms CASCADE;
DELETE FROM s2s.deliveries WHERE endpoint = 'ms_aff';
DELETE FROM s2s.endpoints WHERE name = 'ms_aff';
