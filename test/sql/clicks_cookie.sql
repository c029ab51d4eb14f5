-- The click-ID cookie: s2s.click_ids, s2s.cookie_merge and s2s.set_cookie_header, with
-- normal, hostile and megabyte-long input. Test IDs are built from now() and shown by
-- name (clicks_cookie.names) so that the output is the same on every run.
CREATE SCHEMA clicks_cookie;
CREATE FUNCTION clicks_cookie.id(age interval, n integer) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT lpad(to_hex(floor(extract(epoch FROM now()) - extract(epoch FROM age))::bigint), 8, '0')
           || lpad(to_hex(n), 16, '0')
$$;
CREATE TABLE clicks_cookie.ids AS
SELECT 'a'::text AS name, clicks_cookie.id('3 hours', 1) AS id
UNION ALL SELECT 'b', clicks_cookie.id('2 hours', 2)
UNION ALL SELECT 'c', clicks_cookie.id('1 hour', 3)
UNION ALL SELECT 'expired', clicks_cookie.id('31 days', 4)
UNION ALL SELECT 'future', clicks_cookie.id('-1 hour', 5);
CREATE FUNCTION clicks_cookie.id(name text) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT id FROM clicks_cookie.ids WHERE ids.name = $1 $$;
-- A '-'-joined value with each known ID replaced by its name ('?' marks an unknown part).
CREATE FUNCTION clicks_cookie.names(v text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(string_agg(coalesce((SELECT name FROM clicks_cookie.ids WHERE id = part),
                                        '?' || part), '-' ORDER BY ord), '')
      FROM unnest(string_to_array(v, '-')) WITH ORDINALITY AS u(part, ord)
$$;
\set a 'clicks_cookie.id(\'a\')'
\set b 'clicks_cookie.id(\'b\')'
\set c 'clicks_cookie.id(\'c\')'
\set expired 'clicks_cookie.id(\'expired\')'
\set future 'clicks_cookie.id(\'future\')'

-- click_ids: the valid, unexpired, distinct IDs, lower-cased, oldest first (STRICT).
SELECT s2s.click_ids(NULL) IS NULL AS null_in_null_out, s2s.click_ids('') AS empty,
       s2s.click_ids('-') AS dash, s2s.click_ids('603ed1800000000000000000') AS year_2021;
SELECT label, clicks_cookie.names(array_to_string(s2s.click_ids(v), '-')) AS ids
  FROM (VALUES
    ('one', :a),
    ('sorted oldest first', :c || '-' || :a || '-' || :b),
    ('duplicates, any case', :a || '-' || upper(:a) || '-' || :a),
    ('invalid parts dropped', '-' || :a || '--xyz-' || :expired || '-' || :future || '-' || :b || '-'),
    ('23 and 25 characters', left(:a, 23) || '-' || :b || '0'),
    ('spaces are not trimmed', ' ' || :a || '-' || :b || ' '),
    ('other separators', :a || ',' || :b || ';' || :c),
    ('control characters', :a || E'\r\n' || '-' || :b),
    ('non-ASCII', :a || '-é-' || :c)
  ) AS t(label, v);
-- No cap here: click_ids reports every valid ID.
SELECT array_length(s2s.click_ids(string_agg(clicks_cookie.id('1 hour', n), '-')), 1) AS ids
  FROM generate_series(1, 25) AS n;

-- cookie_merge: old IDs plus the new one; NULL cookie means none yet, a NULL or invalid
-- click ID adds nothing (the old value is still cleaned); never NULL.
SELECT label, clicks_cookie.names(s2s.cookie_merge(cookie, click_id)) AS merged
  FROM (VALUES
    ('first click', NULL, :a),
    ('no click', :a, NULL),
    ('nothing at all', NULL, NULL),
    ('empty cookie', '', :a),
    ('second click', :a, :b),
    ('older click later', :b, :a),
    ('same click again', :a || '-' || :b, :a),
    ('same click, upper case', :a, upper(:b)),
    ('expired dropped', :expired || '-' || :a, :c),
    ('future dropped', :future || '-' || :a, :c),
    ('expired new click', :a, :expired),
    ('invalid new click', :a, 'not-a-click'),
    ('injection in new click', :a, E'x\r\nSet-Cookie: admin=1'),
    ('garbage cookie', E'\r\n;,= ', :b),
    ('new click with separators', :a, :b || '-' || :c)
  ) AS t(label, cookie, click_id);
SELECT s2s.cookie_merge(NULL, NULL) = '' AS empty_not_null,
       s2s.cookie_merge(upper(:a), NULL) = :a AS lower_cased;

-- The cap (s2s_tracking.cookie_max_ids, default 10) keeps the newest by embedded time,
-- whatever their order in the value.
CREATE TABLE clicks_cookie.twelve AS
SELECT n, clicks_cookie.id(make_interval(mins => 13 - n), 100 + n) AS id
  FROM generate_series(1, 12) AS n;
SELECT (SELECT string_agg(n::text, ',' ORDER BY n) FROM clicks_cookie.twelve
         WHERE position(id IN s2s.cookie_merge(v, NULL)) > 0) AS kept,
       length(s2s.cookie_merge(v, NULL)) AS length
  FROM (SELECT string_agg(id, '-' ORDER BY n DESC) AS v FROM clicks_cookie.twelve) AS t;
SET s2s_tracking.cookie_max_ids = 2;
SELECT (SELECT string_agg(n::text, ',' ORDER BY n) FROM clicks_cookie.twelve
         WHERE position(id IN s2s.cookie_merge(v, NULL)) > 0) AS kept
  FROM (SELECT string_agg(id, '-' ORDER BY random()) AS v FROM clicks_cookie.twelve) AS t;
-- The new click is kept when it is the newest, dropped when older than all kept ones.
SELECT clicks_cookie.names(s2s.cookie_merge(:a || '-' || :b, :c)) AS newest_added,
       clicks_cookie.names(s2s.cookie_merge(:b || '-' || :c, :a)) AS oldest_dropped;
-- Clicks of the same second: the rest of the ObjectId (its counter) breaks the tie.
SELECT s2s.cookie_merge(v, NULL) = substr(v, 26) AS highest_counters_kept
  FROM (SELECT string_agg(clicks_cookie.id('1 hour', n), '-' ORDER BY n) AS v
          FROM generate_series(1, 3) AS n) AS t;
SET s2s_tracking.cookie_max_ids = 1;
SELECT clicks_cookie.names(s2s.cookie_merge(:c || '-' || :a, :b)) AS only_newest;
RESET s2s_tracking.cookie_max_ids;
-- The attribution window applies: shorter click_ttl, fewer IDs.
SET s2s_tracking.click_ttl = '150min';
SELECT clicks_cookie.names(s2s.cookie_merge(:a || '-' || :b, :c)) AS within_150min,
       clicks_cookie.names(array_to_string(s2s.click_ids(:a || '-' || :b), '-')) AS ids;
RESET s2s_tracking.click_ttl;

-- Megabyte-long values: bounded work, results asserted without printing them.
SELECT octet_length(v) AS bytes, s2s.click_ids(v) AS ids,
       clicks_cookie.names(s2s.cookie_merge(v, :a)) AS merged
  FROM (SELECT repeat('603ed1800000000000000000-', 50000) AS v) AS t;
SELECT octet_length(v) AS bytes, clicks_cookie.names(array_to_string(s2s.click_ids(v), '-')) AS ids,
       clicks_cookie.names(s2s.cookie_merge(v, :b)) AS merged
  FROM (SELECT repeat(upper(:a) || '-' || :a || '-', 25000) AS v) AS t;
SELECT label, octet_length(v) AS bytes, s2s.click_ids(v) AS ids,
       s2s.cookie_merge(v, NULL) AS merged
  FROM (VALUES ('no separator', repeat('a', 1000000)),
               ('only separators', repeat('-', 1000000)),
               ('24 non-hex', repeat('zzzzzzzzzzzzzzzzzzzzzzzz-', 40000)),
               ('control characters', repeat(E'\r\n', 500000))) AS t(label, v);
-- 45,000 distinct valid IDs: click_ids returns them all; cookie_merge keeps the 10 newest.
CREATE TABLE clicks_cookie.many AS
SELECT n, clicks_cookie.id(make_interval(secs => 50000 - n), 200000 + n) AS id
  FROM generate_series(1, 45000) AS n;
SELECT octet_length(v) AS bytes,
       array_length(s2s.click_ids(v), 1) AS ids,
       s2s.click_ids(v) = (SELECT array_agg(id ORDER BY n) FROM clicks_cookie.many) AS all_in_order,
       s2s.cookie_merge(v, NULL) = (SELECT string_agg(id, '-' ORDER BY n) FROM clicks_cookie.many
                                     WHERE n > 44990) AS newest_ten
  FROM (SELECT string_agg(id, '-' ORDER BY md5(id)) AS v FROM clicks_cookie.many) AS t;

-- Random values against a reference written in SQL: same IDs, same order, same cap.
-- 800 possible IDs (200 ages, none within 10 minutes of a window edge, 4 counters) in
-- values of up to 30 parts: duplicates, case variants, expired, future and malformed parts.
CREATE FUNCTION clicks_cookie.reference(v text, max_ids integer) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(string_agg(id, '-' ORDER BY id), '')
      FROM (SELECT id
              FROM (SELECT DISTINCT lower(part) AS id
                      FROM unnest(string_to_array(v, '-')) AS part
                     WHERE part ~ '^[0-9a-fA-F]{24}$') AS d
             WHERE ('x' || left(id, 8))::bit(32)::bigint
                   BETWEEN floor(extract(epoch FROM now()))::bigint - 2592000
                       AND floor(extract(epoch FROM now()))::bigint + 300
             ORDER BY id DESC LIMIT max_ids) AS k
$$;
SELECT setseed(0.25);
CREATE TABLE clicks_cookie.random_values AS
SELECT v, (SELECT string_agg(CASE WHEN r < 0.6 THEN
                                       CASE WHEN random() < 0.3 THEN upper(x) ELSE x END
                                  WHEN r < 0.7 THEN ''
                                  WHEN r < 0.8 THEN left(x, 23)
                                  WHEN r < 0.9 THEN x || 'f'
                                  ELSE 'zz' || substr(x, 3) END, '-')
             FROM (SELECT random() AS r,
                          clicks_cookie.id(make_interval(secs => floor(random() * 200)::int * 15000 - 3600),
                                           floor(random() * 4)::int) AS x
                     FROM generate_series(1, (random() * 30)::int + v * 0)) AS parts) AS value
  FROM generate_series(1, 2000) AS v;
SELECT count(*) AS values,
       count(*) FILTER (WHERE array_to_string(s2s.click_ids(value), '-')
                              <> clicks_cookie.reference(value, NULL)) AS click_ids_mismatches,
       count(*) FILTER (WHERE s2s.cookie_merge(value, NULL)
                              <> clicks_cookie.reference(value, 10)) AS cookie_merge_mismatches,
       count(*) FILTER (WHERE clicks_cookie.reference(value, NULL) = '') > 20 AS some_with_no_valid_id,
       count(*) FILTER (WHERE array_length(s2s.click_ids(value), 1) > 10) > 20 AS some_over_the_cap
  FROM clicks_cookie.random_values;
SET s2s_tracking.cookie_max_ids = 3;
SELECT count(*) FILTER (WHERE s2s.cookie_merge(value, NULL)
                              <> clicks_cookie.reference(value, 3)) AS cap_3_mismatches
  FROM clicks_cookie.random_values;
RESET s2s_tracking.cookie_max_ids;

-- set_cookie_header: a complete Set-Cookie value; max_age NULL (the default) means
-- s2s_tracking.click_ttl, capped at the 400 days browsers keep a cookie.
SELECT s2s.set_cookie_header('603ed1800000000000000000');
SELECT s2s.set_cookie_header('603ed1800000000000000000-603ed1810000000000000000', 'clk', '1 day');
SELECT s2s.set_cookie_header('x', '__Host-aecid', '0') AS zero_deletes,
       s2s.set_cookie_header('', max_age => '0.9 seconds') AS empty_value_fraction_down,
       s2s.set_cookie_header('x', max_age => '1 year') AS year_is_365_25_days;
SELECT s2s.set_cookie_header('x', max_age => '400 days') AS longest,
       s2s.set_cookie_header('x', max_age => '1 mon 1 day 00:00:01.999') AS month_is_30_days;
SET s2s_tracking.click_ttl = '1h';
SELECT s2s.set_cookie_header('x') AS ttl_1h;
SET s2s_tracking.click_ttl = '500d';
SELECT s2s.set_cookie_header('x') AS ttl_500d_capped;
RESET s2s_tracking.click_ttl;
SELECT s2s.set_cookie_header(NULL) IS NULL AS null_value_no_header,
       s2s.set_cookie_header(s2s.cookie_merge(NULL, :a)) = 'aecid=' || :a
           || '; Path=/; Max-Age=2592000; HttpOnly; Secure; SameSite=Lax' AS from_cookie_merge;
SELECT length(s2s.set_cookie_header(repeat('v', 4091))) AS longest_value_header;
-- Refused (22023): anything that could end the header or add an attribute or a cookie.
\set VERBOSITY default
SELECT s2s.set_cookie_header(E'x\r\nSet-Cookie: admin=1');
SELECT s2s.set_cookie_header(E'x\nLocation: https://evil.example/');
SELECT s2s.set_cookie_header('x; Domain=evil.example');
SELECT s2s.set_cookie_header('a,b');
SELECT s2s.set_cookie_header('a b');
SELECT s2s.set_cookie_header(E'a\tb');
SELECT s2s.set_cookie_header('"quoted"');
SELECT s2s.set_cookie_header('back\slash');
SELECT s2s.set_cookie_header(E'a\x01b');
SELECT s2s.set_cookie_header(E'a\x7fb');
SELECT s2s.set_cookie_header('café');
SELECT s2s.set_cookie_header('x', 'a=b');
SELECT s2s.set_cookie_header('x', 'a b');
SELECT s2s.set_cookie_header('x', 'aecid; Domain=evil.example');
SELECT s2s.set_cookie_header('x', E'aecid\r\nX-Injected');
SELECT s2s.set_cookie_header('x', 'a,b');
SELECT s2s.set_cookie_header('x', '(aecid)');
SELECT s2s.set_cookie_header('x', 'a/b');
SELECT s2s.set_cookie_header('x', 'é');
SELECT s2s.set_cookie_header('x', '');
SELECT s2s.set_cookie_header('x', NULL);
SELECT s2s.set_cookie_header(repeat('v', 4092));
SELECT s2s.set_cookie_header(repeat('v', 1000000));
SELECT s2s.set_cookie_header('x', max_age => '-1 second');
SELECT s2s.set_cookie_header('x', max_age => '-0.5 second');
SELECT s2s.set_cookie_header('x', max_age => '400 days 1 second');
SELECT s2s.set_cookie_header('x', max_age => '100 years');
SELECT s2s.set_cookie_header('x', max_age => '178000000 years');
SELECT s2s.set_cookie_header('x', max_age => '-178000000 years');

-- Clean up.
DROP SCHEMA clicks_cookie CASCADE;
