-- s2s_tracking install script, part 20: click IDs for the app layer.
--
-- The landing page validates and records the click ID it received (record_click) and
-- keeps the visitor's click IDs in a first-party HttpOnly cookie (cookie_merge,
-- set_cookie_header). All parsing is in C (src/click.c); see doc/clicks.md.

CREATE FUNCTION s2s.is_valid_click_id(click_id text, network text DEFAULT 'affilae')
RETURNS boolean
AS 'MODULE_PATHNAME', 's2s_is_valid_click_id'
LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION s2s.is_valid_click_id(text, text) IS
'Whether a click ID is well-formed (and, for Affilae, inside the attribution window); NULL for NULL';

CREATE FUNCTION s2s.click_time(click_id text)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 's2s_click_time'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION s2s.click_time(text) IS
'The time embedded in an Affilae click ID (its first 8 hex digits, Unix seconds)';

-- Writes s2s.clicks, which app roles cannot write themselves: SECURITY DEFINER, and
-- granted by the shop to the roles it chooses.
CREATE FUNCTION s2s.record_click(click_id text, ip inet DEFAULT NULL,
                                 user_agent text DEFAULT NULL, referer text DEFAULT NULL,
                                 landing_url text DEFAULT NULL, network text DEFAULT 'affilae')
RETURNS bigint
AS 'MODULE_PATHNAME', 's2s_record_click'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
REVOKE EXECUTE ON FUNCTION s2s.record_click(text, inet, text, text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION s2s.record_click(text, inet, text, text, text, text) IS
'Validates a click ID and stores it in s2s.clicks once; returns the s2s.clicks id';

CREATE FUNCTION s2s.click_ids(value text)
RETURNS text[]
AS 'MODULE_PATHNAME', 's2s_click_ids'
LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION s2s.click_ids(text) IS
'The valid, unexpired, distinct Affilae click IDs of a ''-''-joined value, lower-cased, oldest first';

CREATE FUNCTION s2s.cookie_merge(cookie text, click_id text)
RETURNS text
AS 'MODULE_PATHNAME', 's2s_cookie_merge'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION s2s.cookie_merge(text, text) IS
'The new click-ID cookie value: old IDs plus the new one, cleaned, deduplicated, newest s2s_tracking.cookie_max_ids kept';

CREATE FUNCTION s2s.set_cookie_header(value text, name text DEFAULT 'aecid',
                                      max_age interval DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 's2s_set_cookie_header'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION s2s.set_cookie_header(text, text, interval) IS
'A Set-Cookie header value (Path=/; Max-Age; HttpOnly; Secure; SameSite=Lax); max_age NULL means s2s_tracking.click_ttl';
