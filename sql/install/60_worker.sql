-- s2s_tracking install script, part 60: the delivery worker's status.
--
-- s2s.worker_status() reads the worker's shared-memory state: whether it runs (pid), since
-- when, when it last went round its loop, how many requests it has in flight, and counters
-- of attempt outcomes since it started. NULL pid: no worker runs (the library is not in
-- shared_preload_libraries, or the worker is restarting).

CREATE FUNCTION s2s.worker_status(
    OUT pid          integer,
    OUT started_at   timestamptz,
    OUT last_loop_at timestamptz,
    OUT in_flight    integer,
    OUT sent         bigint,
    OUT retried      bigint,
    OUT failed       bigint,
    OUT attempts     bigint)
RETURNS record
LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 's2s_worker_status';

COMMENT ON FUNCTION s2s.worker_status() IS
    'The s2s_tracking delivery worker: pid, start, last loop, requests in flight, outcome counters since it started.';

REVOKE EXECUTE ON FUNCTION s2s.worker_status() FROM PUBLIC;
