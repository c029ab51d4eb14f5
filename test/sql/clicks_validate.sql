-- Click-ID validation: s2s.is_valid_click_id and s2s.click_time, normal and hostile input.
--
-- Real clicks must be recent, so test IDs are built from now(): clicks_validate.id(age, n)
-- is an Affilae ID whose embedded time is now() - age. Output never prints such an ID or
-- its time, only what is derived from them, so that it is the same on every run. Ages
-- are counted in seconds (a day is 86400 s even across a daylight-saving change).
SET timezone = 'UTC';
CREATE SCHEMA clicks_validate;
CREATE FUNCTION clicks_validate.id(age interval, n integer DEFAULT 1) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT lpad(to_hex(floor(extract(epoch FROM now()) - extract(epoch FROM age))::bigint), 8, '0')
           || lpad(to_hex(n), 16, '0')
$$;

-- Valid: recent, lower or upper case; the default network is affilae.
SELECT s2s.is_valid_click_id(clicks_validate.id('1 hour')) AS lower_case,
       s2s.is_valid_click_id(upper(clicks_validate.id('1 hour', 171))) AS upper_case,
       s2s.is_valid_click_id(clicks_validate.id('1 hour'), 'affilae') AS explicit_network;

-- NULL in, NULL out (STRICT): use "IS TRUE" or coalesce(..., false) in conditions.
SELECT s2s.is_valid_click_id(NULL) IS NULL AS null_id,
       s2s.is_valid_click_id('603ed1800000000000000000', NULL) IS NULL AS null_network;

-- Malformed: empty, 23 and 25 characters, non-hex, spaces, separators, non-ASCII.
SELECT v AS input, s2s.is_valid_click_id(v) AS valid
  FROM (VALUES (''), ('603ed180000000000000000'), ('603ed18000000000000000000'),
               ('603ed18000000000000000g0'), (' 603ed1800000000000000000'),
               ('603ed180000000000000000 '), ('603ed1800000000000000000-'),
               ('0x3ed1800000000000000000'), ('603ed18000000000000000é'),
               (E'603ed1800000000000000\n00')) AS t(v);

-- Time window: the default attribution window (s2s_tracking.click_ttl) is 30 days and
-- the clock-skew allowance (s2s_tracking.click_max_skew) 5 minutes; both ends included.
SELECT s2s.is_valid_click_id(clicks_validate.id('30 days')) AS exactly_ttl,
       s2s.is_valid_click_id(clicks_validate.id('30 days 1 second')) AS ttl_plus_1s,
       s2s.is_valid_click_id(clicks_validate.id('-5 minutes')) AS skew_ahead,
       s2s.is_valid_click_id(clicks_validate.id('-5 minutes -1 second')) AS skew_plus_1s,
       s2s.is_valid_click_id('603ed1800000000000000000') AS year_2021,
       s2s.is_valid_click_id('ffffffff0000000000000000') AS year_2106,
       s2s.is_valid_click_id('000000000000000000000000') AS epoch_zero;

-- The settings move the window.
SET s2s_tracking.click_ttl = '1h';
SET s2s_tracking.click_max_skew = 0;
SELECT s2s.is_valid_click_id(clicks_validate.id('59 minutes')) AS age_59min,
       s2s.is_valid_click_id(clicks_validate.id('61 minutes')) AS age_61min,
       s2s.is_valid_click_id(clicks_validate.id('0')) AS now,
       s2s.is_valid_click_id(clicks_validate.id('-1 second')) AS one_second_ahead;
RESET s2s_tracking.click_ttl;
RESET s2s_tracking.click_max_skew;

-- Swaarm clkid: 1 to 256 visible ASCII characters (what swaarm_click may return), case
-- kept, no time.
SELECT left(v, 12) AS input, length(v) AS len, s2s.is_valid_click_id(v, 'swaarm') AS valid
  FROM (VALUES ('abc'), ('A-b_c.d~e'), ('603ed1800000000000000000'), ('x'),
               (repeat('z', 256)), (repeat('z', 257)), (''), ('a b'), ('a;b'), ('a/b'),
               ('a%20b'), (E'a\rb'), ('é')) AS t(v);

-- An unknown network is a programming error, not bad data: it raises.
SELECT s2s.is_valid_click_id('603ed1800000000000000000', 'Affilae');
SELECT s2s.is_valid_click_id('603ed1800000000000000000', 'facebook');

-- click_time: the first 8 hex digits as Unix seconds, whatever the window (STRICT).
SELECT s2s.click_time('603ed1800000000000000000') AS example,
       s2s.click_time('603ED180ABCDEFABCDEFABCD') AS upper_case,
       s2s.click_time('000000000000000000000000') AS zero,
       s2s.click_time('ffffffffffffffffffffffff') AS largest,
       s2s.click_time(NULL) IS NULL AS null_in_null_out;
SELECT s2s.click_time(clicks_validate.id('1 hour')) = date_trunc('second', now()) - interval '1 hour'
       AS round_trip;
-- ... and malformed IDs raise 22023 with what is wrong.
\set VERBOSITY default
SELECT s2s.click_time('');
SELECT s2s.click_time('603ed180000000000000000');
SELECT s2s.click_time('603ed18000000000000000000');
SELECT s2s.click_time('603ed18000000000000000zz');
SELECT s2s.click_time('603ed180 0000000000000000');
SELECT s2s.click_time(E'603ed180\r\n0000000000000000');
SELECT s2s.click_time('603ed1800000000000000000é');
SELECT s2s.click_time('603ed18000000000000000é');
SELECT s2s.click_time('é603ed1800000000000000000');
SELECT s2s.click_time(repeat('a', 1000000));

-- Clean up.
DROP SCHEMA clicks_validate CASCADE;
RESET timezone;
