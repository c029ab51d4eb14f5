-- s2s.record_click: validation, storage in s2s.clicks, duplicates, hostile input and
-- privileges. Test IDs are built from now() (see clicks_validate) and kept in a table so
-- that every statement uses the same IDs; output shows only what is derived from them.
CREATE SCHEMA clicks_record;
CREATE FUNCTION clicks_record.id(age interval, n integer) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT lpad(to_hex(floor(extract(epoch FROM now()) - extract(epoch FROM age))::bigint), 8, '0')
           || lpad(to_hex(n), 16, '0')
$$;
-- Runs a statement and shows its error with the IDs and embedded times masked.
CREATE FUNCTION clicks_record.error_of(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    state text; msg text; detail text; hint text;
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN state || ': ' || regexp_replace(msg, '"[0-9a-fA-F]{24}"', '"<id>"')
        || E'\nDETAIL: ' || regexp_replace(detail, '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC', '<time>')
        || E'\nHINT: ' || coalesce(hint, '');
END
$$;
-- Suffixes c11c... mark this file's clicks (deleted at the end).
CREATE TABLE clicks_record.ids AS
SELECT 'fresh'::text AS name, clicks_record.id('1 hour', x'c11c0001'::int) AS id
UNION ALL SELECT 'other', clicks_record.id('2 hours', x'c11c0002'::int)
UNION ALL SELECT 'future', clicks_record.id('-1 hour', x'c11c0004'::int);
CREATE FUNCTION clicks_record.id(name text) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT id FROM clicks_record.ids WHERE ids.name = $1 $$;

-- The function writes a table the app cannot write: SECURITY DEFINER, pinned search_path,
-- not executable by PUBLIC.
SELECT p.prosecdef AS security_definer, p.proconfig, p.provolatile,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_execute,
       pg_get_function_result(p.oid) AS returns
  FROM pg_proc p WHERE p.oid = 's2s.record_click'::regproc;

-- Record a click with everything the landing page knows; it returns the s2s.clicks id.
CREATE TABLE clicks_record.first AS
SELECT s2s.record_click(clicks_record.id('fresh'), '203.0.113.7', 'Mozilla/5.0 (test)',
                        'https://partner.example/', 'https://shop.example/?aecid=x') AS row_id;
SELECT c.network, c.click_id = clicks_record.id('fresh') AS stored_as_given,
       c.clicked_at = s2s.click_time(clicks_record.id('fresh')) AS clicked_at_from_id,
       c.clicked_at BETWEEN now() - interval '61 minutes' AND now() - interval '59 minutes'
           AS one_hour_ago,
       c.recorded_at > now() - interval '1 minute' AS recorded_now, c.ip, c.user_agent, c.referer, c.landing_url
  FROM s2s.clicks c JOIN clicks_record.first f ON c.id = f.row_id;

-- Recording the same click again (even in upper case, with other details) is not an
-- error: it returns the same row and keeps what the first call stored.
SELECT s2s.record_click(clicks_record.id('fresh')) = row_id AS same_row,
       s2s.record_click(upper(clicks_record.id('fresh')), '198.51.100.1', 'other agent') = row_id
           AS same_row_upper_case
  FROM clicks_record.first;
SELECT count(*) AS rows, min(host(ip)) AS ip, min(user_agent) AS user_agent
  FROM s2s.clicks WHERE click_id = clicks_record.id('fresh');

-- Upper case is stored lower case; the optional arguments may be NULL.
SELECT s2s.record_click(upper(clicks_record.id('other')), NULL, NULL, NULL, NULL) > 0 AS recorded;
SELECT click_id = clicks_record.id('other') AS lower_cased, ip IS NULL AS no_ip,
       user_agent IS NULL AS no_user_agent
  FROM s2s.clicks WHERE network = 'affilae' AND click_id = clicks_record.id('other');

-- Swaarm clkid: stored as given (case kept), no embedded time; the same text under two
-- networks is two clicks.
SELECT s2s.record_click('regress-Clk.1~x', network => 'swaarm') > 0 AS recorded;
SELECT s2s.record_click('regress-Clk.1~x', network => 'swaarm')
       = s2s.record_click('regress-Clk.1~x', ip => '::1', network => 'swaarm') AS same_row;
SELECT network, click_id, clicked_at FROM s2s.clicks WHERE click_id LIKE 'regress-%';
SELECT s2s.record_click(clicks_record.id('fresh'), network => 'swaarm')
       <> (SELECT row_id FROM clicks_record.first) AS distinct_rows;

-- Long details are cut to 8192 bytes on a character boundary, never refused.
SELECT s2s.record_click(clicks_record.id('other'), NULL, NULL, NULL, NULL) > 0 AS recorded_again;
DELETE FROM s2s.clicks WHERE click_id = clicks_record.id('other');
SELECT s2s.record_click(clicks_record.id('other'), '10.0.0.1', repeat('u', 1000000),
                        repeat('é', 5000), repeat('/', 8193)) > 0 AS recorded;
SELECT octet_length(user_agent) AS ua_bytes, octet_length(referer) AS referer_bytes,
       length(referer) AS referer_chars, octet_length(landing_url) AS landing_url_bytes
  FROM s2s.clicks WHERE click_id = clicks_record.id('other');

-- Bad click IDs raise 22023 and say what is wrong; nothing is stored.
\set VERBOSITY default
SELECT s2s.record_click(NULL);
SELECT s2s.record_click(NULL, network => 'swaarm');
SELECT s2s.record_click('');
SELECT s2s.record_click('603ed180000000000000000');
SELECT s2s.record_click('603ed18000000000000000000');
SELECT s2s.record_click('603ed18000000000000000xy');
SELECT s2s.record_click(E'603ed1800000000000000000\r\nX-Injected: 1');
SELECT s2s.record_click('603ed1800000000000000000', network => NULL);
SELECT s2s.record_click('603ed1800000000000000000', network => 'Swaarm');
SELECT s2s.record_click('', network => 'swaarm');
SELECT s2s.record_click('a b', network => 'swaarm');
SELECT s2s.record_click(repeat('x', 257), network => 'swaarm');
SELECT s2s.record_click(E'abc\tdef', network => 'swaarm');
SELECT s2s.record_click('abcdé', network => 'swaarm');
-- Expired (older than s2s_tracking.click_ttl) and future (beyond click_max_skew). The ID
-- is built in the statement that records it, so that the age in the message is exact.
SELECT clicks_record.error_of($$SELECT s2s.record_click(clicks_record.id('31 days', x'c11c0003'::int))$$);
SELECT clicks_record.error_of($$SELECT s2s.record_click(clicks_record.id('-1 hour', x'c11c0004'::int))$$);
SELECT clicks_record.error_of($$SELECT s2s.record_click(clicks_record.id('-5 minutes -1 second', x'c11c0004'::int))$$);
SELECT clicks_record.error_of($$SELECT s2s.record_click('603ed1800000000000000000')$$)
       ~ '^22023: expired Affilae click ID "<id>"' AS year_2021_expired;
SET s2s_tracking.click_ttl = '1h';
SELECT clicks_record.error_of($$SELECT s2s.record_click(clicks_record.id('1 hour 1 second', x'c11c0005'::int))$$);
RESET s2s_tracking.click_ttl;
SET s2s_tracking.click_max_skew = '2h';
SELECT s2s.record_click(clicks_record.id('future')) > 0 AS future_within_skew;
RESET s2s_tracking.click_max_skew;
SELECT count(*) AS refused_rows_stored
  FROM s2s.clicks
 WHERE click_id LIKE '%c11c0003' OR click_id LIKE '%c11c0005'
    OR click_id IN ('603ed1800000000000000000', '603ed18000000000000000xy', 'a b');

-- Privileges: an app role needs USAGE on the schema and EXECUTE granted by the shop, and
-- still cannot write s2s.clicks itself.
CREATE ROLE regress_clicks_app;
GRANT USAGE ON SCHEMA s2s TO regress_clicks_app;
SELECT clicks_record.id('fresh') AS fresh_id, row_id AS first_row FROM clicks_record.first \gset
SET ROLE regress_clicks_app;
SELECT s2s.record_click(:'fresh_id');
SELECT s2s.is_valid_click_id(:'fresh_id') AS pure_functions_are_public;
RESET ROLE;
GRANT EXECUTE ON FUNCTION s2s.record_click(text, inet, text, text, text, text) TO regress_clicks_app;
SET ROLE regress_clicks_app;
SELECT s2s.record_click(:'fresh_id') = :first_row AS app_records;
INSERT INTO s2s.clicks (network, click_id) VALUES ('affilae', '603ed1800000000000000000');
SELECT count(*) FROM s2s.clicks;
-- A search_path trick cannot redirect the function: it names s2s.clicks and pins its path.
CREATE TEMP TABLE clicks (id bigint, network text, click_id text);
SET search_path = pg_temp, public;
SELECT s2s.record_click('regress-path', network => 'swaarm') > 0 AS recorded;
RESET search_path;
DROP TABLE pg_temp.clicks;
RESET ROLE;
SELECT count(*) AS in_s2s_clicks FROM s2s.clicks WHERE click_id = 'regress-path';
REVOKE ALL ON FUNCTION s2s.record_click(text, inet, text, text, text, text) FROM regress_clicks_app;
REVOKE USAGE ON SCHEMA s2s FROM regress_clicks_app;
DROP ROLE regress_clicks_app;

-- Clean up.
DELETE FROM s2s.clicks WHERE click_id LIKE '%c11c%' OR click_id LIKE 'regress-%';
DROP SCHEMA clicks_record CASCADE;
