-- The least a monitoring role needs for contrib/prometheus/s2s_tracking.yml, in the shop's
-- database (the one s2s_tracking.database names), run by the extension's owner or a
-- superuser. Replace "prometheus" by the exporter's role (CREATE ROLE prometheus LOGIN;
-- Debian's exporter connects as it over the local socket, see its README.Debian).
--
-- pg_monitor: for the exporter's own default metrics (pg_stat_*, pg_settings); not needed
-- by the s2s_tracking queries themselves.
GRANT pg_monitor TO prometheus;
GRANT USAGE ON SCHEMA s2s TO prometheus;
-- the worker's state (shared memory only)
GRANT EXECUTE ON FUNCTION s2s.worker_status() TO prometheus;
-- column by column: the queue's shape, never the shoppers' data (IP, user agent, click IDs,
-- amounts) nor a secret
GRANT SELECT (name, enabled, paused_at, pause_reason) ON s2s.endpoints TO prometheus;
GRANT SELECT (endpoint, status, created_at, finished_at) ON s2s.deliveries TO prometheus;
