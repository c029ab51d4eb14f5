-- retry, retry_failed, pause, resume and wake: state changes on the tables (the worker
-- makes them take effect on the wire). Endpoints are disabled: a running worker leaves
-- these deliveries alone.
\set SHOW_CONTEXT never
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled) VALUES
    ('a_one', 'swaarm_postback', 'https://track.one.example', 'T0KEN', false),
    ('a_two', 'swaarm_postback', 'https://track.two.example', 'T0KEN', false);

-- One delivery in each status, on both endpoints; finished ones as the worker leaves them.
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, user_id, event_id, status, attempts,
                            next_attempt_at, first_attempt_at, finished_at, sent_at,
                            last_http_status, last_error)
SELECT e, 'event', st::text, 'u', 'e', st, a, now() + interval '1 hour',
       CASE WHEN a > 0 THEN now() - interval '3 days' END,
       CASE WHEN st IN ('sent', 'failed', 'skipped') THEN now() END,
       CASE WHEN st = 'sent' THEN now() END,
       CASE st WHEN 'failed' THEN 400 WHEN 'retrying' THEN 503 WHEN 'sent' THEN 200 END,
       CASE st WHEN 'failed' THEN 'HTTP 400' WHEN 'skipped' THEN 'no click ID' END
  FROM unnest(ARRAY['a_one', 'a_two']) AS e,
       (VALUES ('pending'::s2s.delivery_status, 0), ('sending', 1), ('retrying', 2),
               ('sent', 1), ('failed', 3), ('skipped', 0)) AS s(st, a);
CREATE FUNCTION pg_temp.state(ep text) RETURNS TABLE (key text, status s2s.delivery_status,
        attempts int, due_now boolean, fresh_window boolean, finished boolean,
        last_http_status int, last_error text)
    LANGUAGE sql AS $$
    SELECT dedupe_key, status, attempts, next_attempt_at <= now(), first_attempt_at IS NULL,
           finished_at IS NOT NULL, last_http_status, last_error
      FROM s2s.deliveries WHERE endpoint = ep ORDER BY id $$;
-- an error as SQLSTATE and message, ids shown as N (they vary with the tests run before)
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, 'delivery -?\d+', 'delivery N');
END $$;
CREATE FUNCTION pg_temp.id(ep text, key text) RETURNS bigint LANGUAGE sql AS $$
    SELECT id FROM s2s.deliveries WHERE endpoint = ep AND dedupe_key = key $$;

-- retry: failed, skipped and retrying go back to pending, due now, with a fresh retry
-- window and their attempt count kept; pending and sending are left alone (false).
SELECT key, s2s.retry(pg_temp.id('a_one', key)) AS requeued
  FROM unnest(ARRAY['failed', 'skipped', 'retrying', 'pending', 'sending']) AS key;
SELECT * FROM pg_temp.state('a_one');
-- a sent delivery is never sent again on purpose; an unknown one is an error
SELECT pg_temp.try(format('SELECT s2s.retry(%s)', pg_temp.id('a_one', 'sent')));
SELECT status FROM s2s.deliveries WHERE id = pg_temp.id('a_one', 'sent');
SELECT pg_temp.try('SELECT s2s.retry(-1)');

-- retry_failed: only failed deliveries, of one endpoint or of all; returns the count.
UPDATE s2s.deliveries SET status = 'failed', finished_at = now(),
       next_attempt_at = now() + interval '1 hour'
 WHERE endpoint = 'a_one' AND dedupe_key = 'failed';
SELECT s2s.retry_failed('a_two') AS a_two_requeued;
SELECT key, status FROM pg_temp.state('a_two') WHERE key IN ('failed', 'skipped');
SELECT key, status FROM pg_temp.state('a_one') WHERE key = 'failed';
SELECT s2s.retry_failed() AS all_requeued;
SELECT s2s.retry_failed() AS nothing_left;
SELECT count(*) AS failed_left FROM s2s.deliveries WHERE endpoint LIKE 'a\_%' AND status = 'failed';
SELECT s2s.retry_failed('nope');
\echo :LAST_ERROR_SQLSTATE

-- pause: the endpoint stops (reason kept); pausing again keeps the first pause time.
SELECT s2s.pause('a_one', 'maintenance at the network');
SELECT paused_at IS NOT NULL AS paused, pause_reason FROM s2s.endpoints WHERE name = 'a_one';
SELECT paused_at AS first_pause FROM s2s.endpoints WHERE name = 'a_one' \gset
SELECT s2s.pause('a_one', 'still down');
SELECT paused_at = :'first_pause' AS same_pause_time, pause_reason
  FROM s2s.endpoints WHERE name = 'a_one';
SELECT s2s.pause('a_two', NULL);
SELECT pause_reason FROM s2s.endpoints WHERE name = 'a_two';
SELECT endpoint, paused, pause_reason FROM s2s.queue_stats WHERE endpoint LIKE 'a\_%' ORDER BY 1;
SELECT s2s.pause('nope', 'x');
\echo :LAST_ERROR_SQLSTATE

-- resume: the pause is cleared and the endpoint's waiting deliveries are due now,
-- unburned: their attempts are kept and the time spent paused does not count against
-- their retry window; enabled stays as it was.
UPDATE s2s.deliveries SET status = 'retrying', next_attempt_at = now() + interval '1 hour',
       first_attempt_at = now() - interval '50 hours'
 WHERE endpoint = 'a_one' AND dedupe_key = 'retrying';
UPDATE s2s.endpoints SET paused_at = now() - interval '20 hours' WHERE name = 'a_one';
SELECT s2s.resume('a_one');
SELECT paused_at, pause_reason, enabled FROM s2s.endpoints WHERE name = 'a_one';
SELECT * FROM pg_temp.state('a_one') WHERE status IN ('pending', 'retrying');
SELECT date_trunc('minute', now() - first_attempt_at + interval '30 seconds')
       AS retry_window_used FROM s2s.deliveries
 WHERE endpoint = 'a_one' AND dedupe_key = 'retrying';
-- the other endpoint is still paused; resuming an endpoint that is not paused is harmless
SELECT paused_at IS NOT NULL AS a_two_paused FROM s2s.endpoints WHERE name = 'a_two';
SELECT s2s.resume('a_one');
SELECT paused_at IS NULL AS a_one_not_paused FROM s2s.endpoints WHERE name = 'a_one';
-- clearing paused_at by hand is a resume too
UPDATE s2s.deliveries SET status = 'retrying', next_attempt_at = now() + interval '1 hour',
       first_attempt_at = now() - interval '10 hours'
 WHERE endpoint = 'a_two' AND dedupe_key = 'retrying';
UPDATE s2s.endpoints SET paused_at = now() - interval '4 hours' WHERE name = 'a_two';
UPDATE s2s.endpoints SET paused_at = NULL, pause_reason = NULL WHERE name = 'a_two';
SELECT s.key, s.status, s.due_now, date_trunc('minute', now() - d.first_attempt_at + interval '30 seconds')
       AS retry_window_used
  FROM pg_temp.state('a_two') s JOIN s2s.deliveries d ON d.endpoint = 'a_two' AND d.dedupe_key = s.key
 WHERE s.key = 'retrying';
-- re-enabling makes waiting deliveries due now (rolled back: a running worker would send)
UPDATE s2s.deliveries SET next_attempt_at = now() + interval '1 hour'
 WHERE endpoint = 'a_two' AND dedupe_key = 'retrying';
BEGIN;
UPDATE s2s.endpoints SET enabled = true WHERE name = 'a_two';
SELECT key, status, due_now FROM pg_temp.state('a_two') WHERE key = 'retrying';
ROLLBACK;
SELECT s2s.resume('nope');
\echo :LAST_ERROR_SQLSTATE
SELECT s2s.resume(NULL);
\echo :LAST_ERROR_SQLSTATE

-- wake: nothing to see in SQL (the worker's latch is set at commit), but it is callable
-- and does nothing on rollback.
SELECT s2s.wake();
BEGIN;
SELECT s2s.wake();
ROLLBACK;

DELETE FROM s2s.deliveries WHERE endpoint LIKE 'a\_%';
DELETE FROM s2s.endpoints WHERE name LIKE 'a\_%';
