-- s2s.preview(): the exact request of a delivery for each endpoint kind, every value
-- percent-encoded, secrets masked. Endpoints are disabled: a running worker leaves these
-- deliveries alone.
\set SHOW_CONTEXT never
SET s2s_tracking.allow_http = on;
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled) VALUES
    ('r_aff', 'affilae', 'https://lb.affilae.com/',
     'aaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbbbbbbbbbb', false),
    ('r_aff_q', 'affilae', 'https://lb.affilae.com/postback?program=12', 'aaaaaaaaaaaaaaaaaaaaaaaa-0', false),
    ('r_aff_amp', 'affilae', 'https://lb.affilae.com/postback?program=12&', 'aaaaaaaaaaaaaaaaaaaaaaaa-1', false),
    ('r_aff_nokey', 'affilae', 'https://lb.affilae.com/', NULL, false),
    ('r_swp', 'swaarm_postback', 'https://track.shop.swaarm-app.com//', 'T0KEN&x=1', false),
    ('r_sws', 'swaarm_s2sevent', 'http://127.0.0.1:9/base/', 'T0KEN', false);
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled, http_method, token_in_query) VALUES
    ('r_swp_q', 'swaarm_postback', 'https://track.shop.swaarm-app.com', 'T0KEN', false, 'GET', true),
    ('r_swp_post', 'swaarm_postback', 'https://track.shop.swaarm-app.com/', 'T0KEN', false, 'POST', false),
    ('r_swp_post_q', 'swaarm_postback', 'https://track.shop.swaarm-app.com', 'T0KEN', false, 'POST', true);
-- no implied currency since 0.4.0: these endpoints name theirs
UPDATE s2s.endpoints SET currency = 'EUR' WHERE name LIKE 'r\_%' AND name <> 'r_aff_q';
UPDATE s2s.endpoints SET currency = 'USD' WHERE name = 'r_aff_q';

-- Hostile values: & = space + % # ? / unicode (2- and 4-byte UTF-8), newline.
CREATE TEMP TABLE v AS SELECT
    E'A&B=1 2+3%#?/é😀\nx' AS hostile,
    E'Mozilla/5.0 (X11; Linux) é\r\nX-Injected: 1' AS ua;

-- Affilae: every parameter; payment always present (empty when unknown), other optional
-- parameters omitted when NULL; the endpoint's currency when the delivery has none.
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, amount, currency,
        payment, customer, cv, voucher, click_ids, client_ip, user_agent, referer)
SELECT 'r_aff', 'conversion', 'all', hostile, 123.45, 'EUR', 'online', hostile, hostile,
       'V1;V2', '603ed1800000000000000000-603ed1800000000000000001', '2001:db8::1',
       ua, 'https://shop.example/p?a=1&b=é' FROM v;
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, amount, click_ids)
VALUES ('r_aff', 'conversion', 'min', 'O-1', 0.10, '603ed1800000000000000000'),
       ('r_aff_q', 'conversion', 'min', 'O-2', 99999999999999.99, '603ed1800000000000000000'),
       ('r_aff_amp', 'conversion', 'min', 'O-3', 5, '603ed1800000000000000000');
\x on
SELECT d.dedupe_key, p.* FROM s2s.deliveries d, s2s.preview(d.id) p
 WHERE d.endpoint LIKE 'r\_aff%' ORDER BY d.id;

-- Swaarm postback: Authorization header by default, s2s_token in the query on request;
-- GET query or POST form body; sale_amount_currency only with a sale_amount.
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, user_id, event_id, client_ip,
        user_agent, amount, currency, aggregated_event_value, event_value)
SELECT e, 'event', 'all', hostile, 'purchase', '10.1.2.3', ua, 12.50, 'EUR', 3,
       '{"sku": "a&b", "n": 1}' FROM v,
       unnest(ARRAY['r_swp', 'r_swp_q', 'r_swp_post', 'r_swp_post_q']) AS e;
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, user_id, event_id, currency)
VALUES ('r_swp', 'event', 'min', 'u1', 'register', 'EUR'),
       ('r_swp_post', 'event', 'min', 'u1', 'register', NULL);
SELECT d.endpoint, d.dedupe_key, p.* FROM s2s.deliveries d, s2s.preview(d.id) p
 WHERE d.endpoint LIKE 'r\_swp%' ORDER BY d.id;

-- Swaarm s2sevent: GET with token, user_id, event_id, user_ip, user_ua, nothing else.
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, user_id, event_id, client_ip,
        user_agent, amount)
SELECT 'r_sws', 'event', 'all', hostile, '__open', '::ffff:10.0.0.1', ua, 1 FROM v;
SELECT d.endpoint, p.* FROM s2s.deliveries d, s2s.preview(d.id) p
 WHERE d.endpoint = 'r_sws' ORDER BY d.id;
\x off

-- Amounts as the networks show them: the currency's ISO 4217 minor unit, trailing zeros
-- beyond it dropped, never a real fraction rounded away; a currency without a minor
-- unit: the shortest exact form. An IPv4-mapped client address goes out as IPv4.
CREATE TEMP TABLE amounts (k text, amount numeric(20,6), currency text);
INSERT INTO amounts VALUES ('eur-4dp', 123.4500, 'EUR'), ('eur-1dp', 123.4, 'EUR'),
    ('jpy', 100, 'JPY'), ('kwd', 1.25, 'KWD'), ('eur-frac', 1.2345, 'EUR'),
    ('clf', 2, 'CLF'), ('xau', 10.5, 'XAU');
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, amount, currency,
        click_ids, client_ip)
SELECT 'r_aff', 'conversion', 'amount-' || k, k, amount, currency,
       '603ed1800000000000000000', '::ffff:192.0.2.1' FROM amounts;
SELECT d.dedupe_key, d.amount, d.currency, substring(p.url from 'amount=([^&]*)') AS sent,
       p.headers
  FROM s2s.deliveries d, s2s.preview(d.id) p
 WHERE d.endpoint = 'r_aff' AND d.dedupe_key LIKE 'amount-%' ORDER BY d.id;
-- Swaarm: sale_amount the same way; a POST carries its parameters in the query, no body;
-- the attribution-only s2sevent sends an empty event_id.
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, user_id, event_id, amount, currency,
        client_ip, user_agent)
VALUES ('r_swp_post', 'event', 'amount-jpy', 'u', 'purchase', 1500.0000, 'JPY',
        '::ffff:10.9.8.7', 'ua'),
       ('r_swp_post_q', 'event', 'amount-kwd', 'u', 'purchase', 0.5, 'KWD', NULL, NULL),
       ('r_sws', 'event', 'attribution', 'u', '', NULL, NULL, '::FFFF:10.0.0.2', 'ua'),
       ('r_sws', 'event', 'v6', 'u', 'e', NULL, NULL, '2001:db8::ffff:10.0.0.2', 'ua');
\x on
SELECT d.endpoint, d.dedupe_key, p.* FROM s2s.deliveries d, s2s.preview(d.id) p
 WHERE d.dedupe_key IN ('amount-jpy', 'amount-kwd', 'attribution', 'v6')
   AND d.endpoint IN ('r_swp_post', 'r_swp_post_q', 'r_sws') ORDER BY d.id;
\x off

-- The mask hides the secret wherever it goes, and the real value appears nowhere.
SELECT count(*) AS previews_showing_a_secret
  FROM s2s.deliveries d, s2s.preview(d.id) p
 WHERE d.endpoint LIKE 'r\_%'
   AND (p.url || array_to_string(p.headers, ' ') || coalesce(p.body, ''))
       ~ '(aaaaaaaaaaaa|T0KEN)';

-- What cannot be rendered is said, without the secret.
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, amount, click_ids)
VALUES ('r_aff_nokey', 'conversion', 'x', 'O-9', 1, '603ed1800000000000000000'),
       ('r_aff', 'conversion', 'no-cids', 'O-9', 1, NULL),
       ('r_aff', 'conversion', 'no-id', NULL, 1, '603ed1800000000000000000');
-- no implied currency: an endpoint that names none, a delivery that gives none
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled) VALUES
    ('r_aff_nocur', 'affilae', 'https://lb.affilae.com/', 'k', false),
    ('r_swp_nocur', 'swaarm_postback', 'https://track.shop.swaarm-app.com', 'T', false);
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, amount, click_ids,
        user_id, event_id)
VALUES ('r_aff_nocur', 'conversion', 'no-currency', 'O-9', 1, '603ed1800000000000000000',
        NULL, NULL),
       ('r_swp_nocur', 'event', 'amount-no-currency', NULL, 1, NULL, 'u', 'e'),
       ('r_swp_nocur', 'event', 'no-amount-no-currency', NULL, NULL, NULL, 'u', 'e');
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, user_id, event_id, client_ip, user_agent)
VALUES ('r_swp', 'event', 'no-user', NULL, 'e', NULL, NULL),
       ('r_sws', 'event', 'null-event', 'u', NULL, '10.0.0.1', 'ua'),
       ('r_swp', 'event', 'no-event', 'u', '', NULL, NULL),
       ('r_sws', 'event', 'no-ip', 'u', 'e', NULL, 'ua'),
       ('r_sws', 'event', 'no-ua', 'u', 'e', '10.0.0.1', NULL);
-- (ids vary with the tests run before: the message shows them as N)
CREATE FUNCTION pg_temp.preview_error(key text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM s2s.preview(d.id) FROM s2s.deliveries d
      WHERE d.endpoint LIKE 'r\_%' AND d.dedupe_key = key;
    RETURN 'rendered';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, 'delivery -?\d+', 'delivery N');
END $$;
SELECT k, pg_temp.preview_error(k)
  FROM unnest(ARRAY['x', 'no-cids', 'no-id', 'no-user', 'no-event', 'no-ip', 'no-ua',
                    'null-event', 'no-currency', 'amount-no-currency',
                    'no-amount-no-currency']) AS k;
SELECT * FROM s2s.preview(-1);
\echo :LAST_ERROR_SQLSTATE
-- NULL in, NULL out (the function is strict)
SELECT * FROM s2s.preview(NULL);

DELETE FROM s2s.deliveries WHERE endpoint LIKE 'r\_%';
DELETE FROM s2s.endpoints WHERE name LIKE 'r\_%';
RESET s2s_tracking.allow_http;
