-- Percent-encoding, as a property: for many random values (any Unicode character but
-- NUL, including reserved ASCII, controls and 4-byte UTF-8), what preview shows decodes
-- back to exactly the value, and the encoded form has unreserved characters and %XX only.
-- Header values never keep a control character. Deterministic (setseed).
\set SHOW_CONTEXT never
CREATE FUNCTION pg_temp.pct_decode(s text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT convert_from(coalesce(string_agg(
               CASE WHEN m[1] IS NOT NULL THEN decode(substr(m[1], 2), 'hex')
                    ELSE convert_to(m[2], 'UTF8') END, ''::bytea ORDER BY n), ''), 'UTF8')
      FROM regexp_matches(s, '(%[0-9A-Fa-f]{2})|([^%])', 'g') WITH ORDINALITY AS t(m, n) $$;
CREATE FUNCTION pg_temp.random_text(len int) RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT string_agg(chr(CASE (random() * 4)::int
                              WHEN 0 THEN 1 + (random() * 126)::int            -- ASCII
                              WHEN 1 THEN 32 + (random() * 94)::int            -- printable
                              WHEN 2 THEN 128 + (random() * 1900)::int         -- 2-byte
                              WHEN 3 THEN 65536 + (random() * 100000)::int     -- 4-byte
                              ELSE 19968 + (random() * 1000)::int END), '')   -- 3-byte
      FROM generate_series(1, len) $$;
-- the query parameter named p of a URL or form body, still encoded
CREATE FUNCTION pg_temp.param(q text, p text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT substring(q FROM '(?:^|[?&])' || p || '=([^&]*)') $$;

SELECT setseed(0.42);
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled) VALUES
    ('rt_aff', 'affilae', 'https://lb.affilae.com/', 'K', false),
    ('rt_swp', 'swaarm_postback', 'https://track.example.com', 'T', false);
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled, http_method) VALUES
    ('rt_post', 'swaarm_postback', 'https://track.example.com', 'T', false, 'POST');
-- no implied currency since 0.4.0: these endpoints name theirs
UPDATE s2s.endpoints SET currency = 'EUR' WHERE name LIKE 'rt\_%';
CREATE TEMP TABLE rt AS
SELECT i, pg_temp.random_text(1 + (random() * 40)::int) AS a,
          pg_temp.random_text(1 + (random() * 40)::int) AS b,
          pg_temp.random_text(1 + (random() * 40)::int) AS c
  FROM generate_series(1, 300) AS i;
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, amount, customer, cv,
                            click_ids, user_agent, referer)
SELECT 'rt_aff', 'conversion', 'rt' || i, a, 1, b, c, '603ed1800000000000000000', b, c FROM rt;
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, user_id, event_id, event_value)
SELECT e, 'event', 'rt' || i, a, b, c FROM rt, unnest(ARRAY['rt_swp', 'rt_post']) AS e;

CREATE TEMP TABLE rendered AS
SELECT d.endpoint, r.a, r.b, r.c, p.*,
       CASE WHEN p.body IS NULL THEN substring(p.url FROM '\?(.*)$') ELSE p.body END AS params
  FROM rt r
  JOIN s2s.deliveries d ON d.dedupe_key = 'rt' || r.i AND d.endpoint LIKE 'rt\_%',
       s2s.preview(d.id) p;
SELECT endpoint, count(*) AS rendered,
       count(*) FILTER (WHERE params !~ '^([A-Za-z0-9._~-]|%[0-9A-F]{2}|[=&*])*$') AS badly_encoded,
       count(*) FILTER (WHERE endpoint = 'rt_aff' AND (
               pg_temp.pct_decode(pg_temp.param(params, 'id')) <> a
            OR pg_temp.pct_decode(pg_temp.param(params, 'customer')) <> b
            OR pg_temp.pct_decode(pg_temp.param(params, 'cv')) <> c))
     + count(*) FILTER (WHERE endpoint <> 'rt_aff' AND (
               pg_temp.pct_decode(pg_temp.param(params, 'user_id')) <> a
            OR pg_temp.pct_decode(pg_temp.param(params, 'event_id')) <> b
            OR pg_temp.pct_decode(pg_temp.param(params, 'event_value')) <> c)) AS not_round_trip,
       count(*) FILTER (WHERE array_to_string(headers, '') ~ '[\x01-\x1f\x7f]') AS header_with_control
  FROM rendered GROUP BY endpoint ORDER BY endpoint;
-- the values did contain what needs encoding
SELECT count(*) FILTER (WHERE a ~ '[&=%+ ]') > 0 AS reserved_ascii,
       count(*) FILTER (WHERE a ~ '[\x01-\x1f]') > 0 AS controls,
       count(*) FILTER (WHERE a ~ '[\U00010000-\U0010FFFF]') > 0 AS four_byte_utf8
  FROM rt;

DELETE FROM s2s.deliveries WHERE endpoint LIKE 'rt\_%';
DELETE FROM s2s.endpoints WHERE name LIKE 'rt\_%';
