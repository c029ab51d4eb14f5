-- The extension installs into a server that preloads it, in schema s2s (TAP 001 checks
-- its version against the control file).
CREATE EXTENSION s2s_tracking;
SELECT extname, extnamespace::regnamespace AS schema
  FROM pg_extension WHERE extname = 's2s_tracking';
SHOW shared_preload_libraries;
-- Every setting is defined (names are part of the public interface).
SELECT name, setting, unit, context
  FROM pg_settings WHERE name LIKE 's2s_tracking.%' ORDER BY name;
-- Tables and views of the public interface.
SELECT c.relname, c.relkind
  FROM pg_class c WHERE c.relnamespace = 's2s'::regnamespace AND c.relkind IN ('r', 'v')
 ORDER BY c.relname;
-- Nobody but the owner may use the schema that holds secrets.
SELECT has_schema_privilege('public', 's2s_private', 'USAGE') AS public_may_use_private;
-- The worker gives back every row left 'sending' once, when it finds the extension; the
-- tests after this one make such rows on purpose: wait (60 s at most) until it has.
DO $$
BEGIN
    FOR i IN 1..600 LOOP
        PERFORM pg_stat_clear_snapshot();
        IF EXISTS (SELECT FROM pg_stat_activity
                    WHERE backend_type = 's2s_tracking worker' AND query <> ''
                      AND query NOT LIKE '%extension s2s_tracking'
                      AND query NOT LIKE 'reconciling%') THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
    RAISE WARNING 'the worker has not found the extension in 60 s';
END
$$;
