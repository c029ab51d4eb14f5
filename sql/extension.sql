-- The extension installs into a server that preloads it, in schema s2s.
CREATE EXTENSION s2s_tracking;
SELECT extname, extversion, extnamespace::regnamespace AS schema
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
-- The worker has found the extension (and given back any 'sending' row, once, as at its
-- start) before the next tests put rows in the queue: otherwise that one-time reconcile
-- could land in the middle of a test (bounded wait: 10 s).
DO $$
BEGIN
    FOR i IN 1 .. 200 LOOP
        EXIT WHEN EXISTS (SELECT FROM pg_stat_activity
                           WHERE backend_type = 's2s_tracking worker'
                             AND query NOT LIKE '%extension%');
        PERFORM pg_sleep(0.05);
        PERFORM pg_stat_clear_snapshot();
    END LOOP;
END $$;
