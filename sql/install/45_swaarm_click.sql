-- s2s_tracking install script, part 45: s2s.swaarm_click, the synchronous click-ID request
-- for a landing page reached without Swaarm's clkid.
--
-- SECURITY DEFINER so that the app role, which may call it once the shop grants EXECUTE,
-- never reads the endpoint's token: the function reads it from s2s_private itself. The
-- destination is always the endpoint's own URL, never one the caller chooses.

CREATE FUNCTION s2s.swaarm_click(endpoint text, ip inet, user_agent text)
RETURNS text
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 's2s_swaarm_click';

COMMENT ON FUNCTION s2s.swaarm_click(text, inet, text) IS
    'Asks a Swaarm endpoint for a click ID (GET /click?no_redirect=true) and returns it.';

REVOKE EXECUTE ON FUNCTION s2s.swaarm_click(text, inet, text) FROM PUBLIC;
