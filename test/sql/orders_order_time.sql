-- The attribution window: measured at the time the order was placed (order_time), never
-- at validation; per endpoint (endpoints.attribution_window, NULL: s2s_tracking.click_ttl);
-- s2s.retry judges with the same time and window.
SET client_min_messages = warning;
CREATE SCHEMA otm;
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled, currency, attribution_window) VALUES
    ('otm_aff', 'affilae', 'https://lb.affilae.com/', '0123456789abcdef01234567-0123456789abcdef01234567', false, 'EUR', '7 days');
CREATE TABLE otm.orders (
    number integer PRIMARY KEY,
    status text NOT NULL DEFAULT 'pending',
    amount numeric NOT NULL DEFAULT 10,
    click text,
    created_at timestamp NOT NULL DEFAULT now()
);
-- a click 6 days old now (within the 7-day window), and one 9 days old
SELECT lpad(to_hex(extract(epoch FROM now())::bigint - 6 * 86400), 8, '0') || '0000000000000001' AS c6,
       lpad(to_hex(extract(epoch FROM now())::bigint - 9 * 86400), 8, '0') || '0000000000000002' AS c9 \gset
SELECT s2s.track_orders('otm.orders', 'otm_aff', 'number', 'amount', click_ids => 'click',
                        status => 'status', validated_statuses => ARRAY['paid'],
                        order_time => 'created_at');
-- placed 5 days ago with the 9-day-old click (4 days old then): validated now, sent
INSERT INTO otm.orders (number, click, created_at) VALUES (1, :'c9', now() - interval '5 days');
-- placed now with the 9-day-old click: outside the endpoint's window
INSERT INTO otm.orders (number, click) VALUES (2, :'c9');
-- placed now with the 6-day-old click: inside it
INSERT INTO otm.orders (number, click) VALUES (3, :'c6');
UPDATE otm.orders SET status = 'paid';
SELECT conversion_id, status, last_error, ordered_at IS NOT NULL AS has_ordered_at
  FROM s2s.deliveries WHERE endpoint = 'otm_aff' ORDER BY 1;
-- a narrower window for the endpoint: order 3's click (6 days old when placed) is too old
DELETE FROM s2s.deliveries WHERE endpoint = 'otm_aff';
UPDATE s2s.endpoints SET attribution_window = '2 days' WHERE name = 'otm_aff';
UPDATE otm.orders SET status = 'pending';
UPDATE otm.orders SET status = 'paid';
SELECT conversion_id, status FROM s2s.deliveries WHERE endpoint = 'otm_aff' ORDER BY 1;
-- without a window of its own, the cluster setting (30 days by default): all three pass
DELETE FROM s2s.deliveries WHERE endpoint = 'otm_aff';
UPDATE s2s.endpoints SET attribution_window = NULL WHERE name = 'otm_aff';
UPDATE otm.orders SET status = 'pending';
UPDATE otm.orders SET status = 'paid';
SELECT conversion_id, status FROM s2s.deliveries WHERE endpoint = 'otm_aff' ORDER BY 1;

-- s2s.retry judges by the order time and the endpoint's window, as the trigger did: a
-- failed delivery of order 1 (placed 5 days ago, click 4 days old then) may be retried
-- under a 7-day window although its click is 9 days old now, but not under a 2-day one.
UPDATE s2s.deliveries SET status = 'failed', finished_at = now()
 WHERE endpoint = 'otm_aff' AND conversion_id = '1';
CREATE FUNCTION otm.try_retry() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    s2s_detail text;
BEGIN
    PERFORM s2s.retry(id) FROM s2s.deliveries WHERE endpoint = 'otm_aff' AND conversion_id = '1';
    RETURN 'retried';
EXCEPTION WHEN object_not_in_prerequisite_state THEN
    GET STACKED DIAGNOSTICS s2s_detail = PG_EXCEPTION_DETAIL;
    RETURN 'refused: ' || s2s_detail;
END
$$;
UPDATE s2s.endpoints SET attribution_window = '2 days' WHERE name = 'otm_aff';
SELECT otm.try_retry();
UPDATE s2s.endpoints SET attribution_window = '7 days' WHERE name = 'otm_aff';
SELECT otm.try_retry();
SELECT status FROM s2s.deliveries WHERE endpoint = 'otm_aff' AND conversion_id = '1';

-- the window must be positive
\set VERBOSITY terse
UPDATE s2s.endpoints SET attribution_window = '0 days' WHERE name = 'otm_aff';

DROP SCHEMA otm CASCADE;
DELETE FROM s2s.deliveries WHERE endpoint = 'otm_aff';
DELETE FROM s2s.endpoints WHERE name = 'otm_aff';
