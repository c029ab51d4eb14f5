-- s2s.track_event(): Swaarm events enqueued as deliveries, with clear errors for what
-- Swaarm would refuse. Endpoints are disabled: a running worker leaves them alone.
\set SHOW_CONTEXT never
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled, currency) VALUES
    ('t_swp', 'swaarm_postback', 'https://track.shop.swaarm-app.com', 'T0KEN', false, 'USD'),
    ('t_sws', 'swaarm_s2sevent', 'https://track.shop.swaarm-app.com', 'T0KEN', false, 'EUR'),
    ('t_aff', 'affilae', 'https://lb.affilae.com/', 'k', false, 'EUR');

-- A postback event with every parameter, one with the least (ip and user agent may be
-- NULL for a postback), and an attribution event.
SELECT s2s.track_event('t_swp', 'user-1', 'purchase', '192.0.2.1', 'UA/1', 19.99, 'EUR',
                       2, '{"sku":"x"}', 'order-1') AS id1 \gset
SELECT s2s.track_event('t_swp', 'user-2', 'register', NULL, NULL) AS id2 \gset
SELECT s2s.track_event('t_sws', 'user-3', '__open', '2001:db8::7', 'UA/3') AS id3 \gset
SELECT endpoint, kind, user_id, event_id, client_ip, user_agent, amount, currency,
       aggregated_event_value, event_value, status, attempts,
       dedupe_key = 'order-1' AS given_key, dedupe_key LIKE 'event:%' AS generated_key
  FROM s2s.deliveries WHERE id IN (:id1, :id2, :id3) ORDER BY id;
SELECT p.* FROM s2s.preview(:id1) p;

-- A sale amount without a currency is in the endpoint's currency, fixed at enqueue time.
SELECT s2s.track_event('t_swp', 'user-4', 'purchase', NULL, NULL, 5) AS id4 \gset
UPDATE s2s.endpoints SET currency = 'GBP' WHERE name = 't_swp';
SELECT amount, currency FROM s2s.deliveries WHERE id = :id4;

-- The same dedupe_key on the same endpoint returns the first delivery and adds nothing;
-- without a dedupe_key every call is a new event.
SELECT s2s.track_event('t_swp', 'user-1', 'purchase', '192.0.2.1', 'UA/1', 19.99, 'EUR',
                       2, '{"sku":"x"}', 'order-1') = :id1 AS same_id;
SELECT s2s.track_event('t_swp', 'someone-else', 'other', NULL, NULL,
                       dedupe_key => 'order-1') = :id1 AS same_id_whatever_the_values;
SELECT count(*) AS order_1_deliveries FROM s2s.deliveries
 WHERE endpoint = 't_swp' AND dedupe_key = 'order-1';
SELECT s2s.track_event('t_swp', 'user-2', 'register', NULL, NULL) <> :id2 AS new_id;
-- the same key on another endpoint is another delivery
SELECT s2s.track_event('t_sws', 'user-1', 'purchase', '192.0.2.1', 'UA/1',
                       dedupe_key => 'order-1') <> :id1 AS other_endpoint_other_id;
-- a rolled-back event leaves nothing
BEGIN;
SELECT s2s.track_event('t_swp', 'user-9', 'rolled-back', NULL, NULL) > 0 AS enqueued;
ROLLBACK;
SELECT count(*) AS rolled_back FROM s2s.deliveries WHERE event_id = 'rolled-back';

-- Errors: unknown or non-Swaarm endpoint, missing user_id / event_id, and for s2sevent a
-- missing IP or user agent; each with its SQLSTATE.
SELECT s2s.track_event('nope', 'u', 'e', NULL, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT s2s.track_event(NULL, 'u', 'e', NULL, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT s2s.track_event('t_aff', 'u', 'e', NULL, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT s2s.track_event('t_swp', NULL, 'e', NULL, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT s2s.track_event('t_swp', '', 'e', NULL, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT s2s.track_event('t_swp', 'u', NULL, NULL, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT s2s.track_event('t_swp', 'u', '', NULL, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT s2s.track_event('t_sws', 'u', '__open', NULL, 'UA');
\echo :LAST_ERROR_SQLSTATE
SELECT s2s.track_event('t_sws', 'u', '__open', '192.0.2.1', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT s2s.track_event('t_sws', 'u', '__open', '192.0.2.1', '');
\echo :LAST_ERROR_SQLSTATE
SELECT s2s.track_event('t_swp', 'u', 'e', NULL, NULL, 1, 'euro');
\echo :LAST_ERROR_SQLSTATE
SELECT s2s.track_event('t_swp', 'u', 'e', NULL, NULL, 'NaN');
\echo :LAST_ERROR_SQLSTATE
SELECT s2s.track_event('t_swp', 'u', 'e', NULL, NULL, '-Infinity');
\echo :LAST_ERROR_SQLSTATE
SELECT s2s.track_event('t_swp', 'u', 'e', NULL, NULL, aggregated_event_value => 'NaN');
\echo :LAST_ERROR_SQLSTATE
SELECT s2s.track_event('t_swp', 'u', 'e', NULL, NULL, dedupe_key => '');
\echo :LAST_ERROR_SQLSTATE
-- an order's key: the event would stand for that order's conversion
SELECT s2s.track_event('t_swp', 'u', 'e', NULL, NULL, dedupe_key => 'order:1001');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS deliveries_from_errors FROM s2s.deliveries WHERE user_id IN ('u', '');

-- No implied currency: a sale_amount without one, to an endpoint that names none, is
-- refused (22023, with a hint); given a currency, or without an amount, it is fine.
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled) VALUES
    ('t_swp_nocur', 'swaarm_postback', 'https://track.shop.swaarm-app.com', 'T0KEN', false);
SELECT currency IS NULL AS no_currency FROM s2s.endpoints WHERE name = 't_swp_nocur';
SELECT s2s.track_event('t_swp_nocur', 'u-nc', 'purchase', NULL, NULL, 5);
\echo :LAST_ERROR_SQLSTATE
SELECT s2s.track_event('t_swp_nocur', 'u-nc', 'purchase', NULL, NULL, 5, 'CHF') AS id_chf \gset
SELECT s2s.track_event('t_swp_nocur', 'u-nc', 'register', NULL, NULL) AS id_noamount \gset
SELECT id = :id_chf AS chf, amount, currency FROM s2s.deliveries
 WHERE id IN (:id_chf, :id_noamount) ORDER BY id;
SELECT p.url FROM s2s.preview(:id_chf) p;

-- Swaarm's attribution-only s2sevent: an empty event_id, for swaarm_s2sevent endpoints
-- only (sent as "event_id="); a postback still refuses it.
SELECT s2s.track_event('t_sws', 'user-attr', '', '::ffff:192.0.2.44', 'UA/attr') AS id_attr \gset
SELECT event_id = '' AS empty_event_id, status FROM s2s.deliveries WHERE id = :id_attr;
SELECT p.url FROM s2s.preview(:id_attr) p;
SELECT s2s.track_event('t_swp', 'user-attr', '', NULL, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT s2s.track_event('t_sws', 'user-attr', NULL, '192.0.2.44', 'UA/attr');
\echo :LAST_ERROR_SQLSTATE
-- a retry judges it by the same rule (an empty event_id is fine for an s2sevent)
UPDATE s2s.deliveries SET status = 'failed' WHERE id = :id_attr;
SELECT s2s.retry(:id_attr) AS retried;

DELETE FROM s2s.deliveries WHERE endpoint LIKE 't\_%';
DELETE FROM s2s.endpoints WHERE name LIKE 't\_%';
