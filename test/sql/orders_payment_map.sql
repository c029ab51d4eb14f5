-- payment_map (the shop's payment values to Affilae's online, bankwire or other), Affilae
-- conversions without a sale (no amount mapping), and the NOTICE for an Affilae mapping
-- without client_ip.
SET client_min_messages = notice;
CREATE SCHEMA pm;
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled, currency) VALUES
    ('pm_aff', 'affilae', 'https://lb.affilae.com/', '0123456789abcdef01234567-0123456789abcdef01234567', false, 'EUR');
CREATE TABLE pm.orders (
    number integer PRIMARY KEY,
    amount numeric,
    payment_method text,
    email text,
    click text,
    ip inet
);
SELECT lpad(to_hex(extract(epoch FROM now())::bigint - 3600), 8, '0') || '0000000000000001' AS c1 \gset

SELECT s2s.track_orders('pm.orders', 'pm_aff', 'number', 'amount', click_ids => 'click',
                        payment => 'payment_method', client_ip => 'ip',
                        payment_map => '{"card": "online", "paypal": "online", "sepa": "bankwire"}');
INSERT INTO pm.orders VALUES
    (1, 10, 'card', NULL, :'c1', '192.0.2.1'),
    (2, 10, 'sepa', NULL, :'c1', '192.0.2.1'),
    (3, 10, 'cheque', NULL, :'c1', '192.0.2.1'),
    (4, 10, '', NULL, :'c1', '192.0.2.1'),
    (5, 10, NULL, NULL, :'c1', '192.0.2.1'),
    (6, 10, 'CARD', NULL, :'c1', '192.0.2.1');
SELECT conversion_id, payment, status FROM s2s.deliveries WHERE endpoint = 'pm_aff' ORDER BY 1;
DELETE FROM s2s.deliveries WHERE endpoint = 'pm_aff';
TRUNCATE pm.orders;

-- What payment_map refuses.
SELECT s2s.track_orders('pm.orders', 'pm_aff', 'number', 'amount', click_ids => 'click',
                        payment => 'payment_method', client_ip => 'ip',
                        payment_map => '{"card": "credit"}');
SELECT s2s.track_orders('pm.orders', 'pm_aff', 'number', 'amount', click_ids => 'click',
                        payment => 'payment_method', client_ip => 'ip',
                        payment_map => '["online"]');
SELECT s2s.track_orders('pm.orders', 'pm_aff', 'number', 'amount', click_ids => 'click',
                        payment => 'payment_method', client_ip => 'ip',
                        payment_map => '{"card": {"x": 1}}');
SELECT s2s.track_orders('pm.orders', 'pm_aff', 'number', 'amount', click_ids => 'click',
                        client_ip => 'ip', payment_map => '{"card": "online"}');

-- A conversion without a sale: no amount mapping; the id may be an e-mail hash. The
-- delivery has no amount and is pending.
SELECT s2s.track_orders('pm.orders', 'pm_aff', order_id => $$md5(lower(email))$$,
                        click_ids => 'click', client_ip => 'ip');
INSERT INTO pm.orders (number, email, click, ip) VALUES (7, 'Lead@example.com', :'c1', '192.0.2.7');
SELECT conversion_id = md5('lead@example.com') AS id_is_hash, amount, status, last_error
  FROM s2s.deliveries WHERE endpoint = 'pm_aff';
-- with an amount mapping, a NULL amount is still a sale without its amount: skipped
DELETE FROM s2s.deliveries WHERE endpoint = 'pm_aff';
SELECT s2s.track_orders('pm.orders', 'pm_aff', 'number', 'amount', click_ids => 'click', client_ip => 'ip');
INSERT INTO pm.orders (number, click, ip) VALUES (8, :'c1', '192.0.2.8');
SELECT conversion_id, amount, status, last_error FROM s2s.deliveries WHERE endpoint = 'pm_aff';

-- An Affilae mapping without client_ip: a NOTICE with a hint.
\set VERBOSITY default
SELECT s2s.track_orders('pm.orders', 'pm_aff', 'number', 'amount', click_ids => 'click');
\set VERBOSITY terse

DROP SCHEMA pm CASCADE;
DELETE FROM s2s.deliveries WHERE endpoint = 'pm_aff';
DELETE FROM s2s.endpoints WHERE name = 'pm_aff';
