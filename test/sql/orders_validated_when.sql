-- Validation by a payment-status column (status => 'charge_status') and by a boolean
-- expression (validated_when), alone and together: both must hold, and the conversion is
-- enqueued when the order becomes validated, whatever changed.
SET client_min_messages = warning;
CREATE SCHEMA vw;
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled, currency) VALUES
    ('vw_aff', 'affilae', 'https://lb.affilae.com/', '0123456789abcdef01234567-0123456789abcdef01234567', false, 'EUR');
CREATE TABLE vw.orders (
    number integer PRIMARY KEY,
    status text NOT NULL DEFAULT 'pending',
    charge_status text NOT NULL DEFAULT 'none',
    amount numeric NOT NULL DEFAULT 10,
    click text
);
SELECT lpad(to_hex(extract(epoch FROM now())::bigint - 3600), 8, '0') || '0000000000000001' AS c1 \gset

-- A payment-status column as status.
SELECT s2s.track_orders('vw.orders', 'vw_aff', 'number', 'amount', click_ids => 'click',
                        status => 'charge_status', validated_statuses => ARRAY['full', 'overcharged']);
INSERT INTO vw.orders (number, click) VALUES (1, :'c1'), (2, :'c1');
INSERT INTO vw.orders (number, click, charge_status) VALUES (3, :'c1', 'overcharged');
UPDATE vw.orders SET charge_status = 'partial' WHERE number = 1;
SELECT conversion_id FROM s2s.deliveries WHERE endpoint = 'vw_aff' ORDER BY 1;
UPDATE vw.orders SET charge_status = 'full' WHERE number = 1;
SELECT conversion_id FROM s2s.deliveries WHERE endpoint = 'vw_aff' ORDER BY 1;
DELETE FROM s2s.deliveries WHERE endpoint = 'vw_aff';
TRUNCATE vw.orders;

-- validated_when alone: an expression over two columns; the trigger fires on UPDATE.
SELECT s2s.track_orders('vw.orders', 'vw_aff', 'number', 'amount', click_ids => 'click',
                        validated_when => $$charge_status = 'full' AND status <> 'canceled'$$);
SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'vw.orders'::regclass;
INSERT INTO vw.orders (number, click) VALUES (1, :'c1'), (2, :'c1'), (3, :'c1');
INSERT INTO vw.orders (number, click, charge_status, status) VALUES (4, :'c1', 'full', 'canceled');
INSERT INTO vw.orders (number, click, charge_status) VALUES (5, :'c1', 'full');
SELECT conversion_id FROM s2s.deliveries WHERE endpoint = 'vw_aff' ORDER BY 1;
-- becomes true through either column
UPDATE vw.orders SET charge_status = 'full' WHERE number IN (1, 2);
UPDATE vw.orders SET status = 'canceled' WHERE number = 2;
UPDATE vw.orders SET status = 'shipped' WHERE number = 4;
SELECT conversion_id FROM s2s.deliveries WHERE endpoint = 'vw_aff' ORDER BY 1;
-- back and forth: still one delivery
UPDATE vw.orders SET status = 'pending' WHERE number = 2;
UPDATE vw.orders SET status = 'canceled' WHERE number = 1;
UPDATE vw.orders SET status = 'pending' WHERE number = 1;
SELECT conversion_id, count(*) FROM s2s.deliveries WHERE endpoint = 'vw_aff' GROUP BY 1 ORDER BY 1;
DELETE FROM s2s.deliveries WHERE endpoint = 'vw_aff';
TRUNCATE vw.orders;

-- Both: the status must be a validated one and validated_when must hold.
SELECT s2s.track_orders('vw.orders', 'vw_aff', 'number', 'amount', click_ids => 'click',
                        status => 'status', validated_statuses => ARRAY['paid'],
                        validated_when => $$charge_status = 'full'$$);
INSERT INTO vw.orders (number, click, status) VALUES (1, :'c1', 'paid');
INSERT INTO vw.orders (number, click, charge_status) VALUES (2, :'c1', 'full');
INSERT INTO vw.orders (number, click, status, charge_status) VALUES (3, :'c1', 'paid', 'full');
SELECT conversion_id FROM s2s.deliveries WHERE endpoint = 'vw_aff' ORDER BY 1;
UPDATE vw.orders SET charge_status = 'full' WHERE number = 1;
UPDATE vw.orders SET status = 'paid' WHERE number = 2;
SELECT conversion_id FROM s2s.deliveries WHERE endpoint = 'vw_aff' ORDER BY 1;

-- validated_when must be boolean
SELECT s2s.track_orders('vw.orders', 'vw_aff', 'number', 'amount', click_ids => 'click',
                        validated_when => $$charge_status$$);
SELECT s2s.track_orders('vw.orders', 'vw_aff', 'number', 'amount', click_ids => 'click',
                        validated_when => $$length(charge_status)$$);

DROP SCHEMA vw CASCADE;
DELETE FROM s2s.deliveries WHERE endpoint = 'vw_aff';
DELETE FROM s2s.endpoints WHERE name = 'vw_aff';
