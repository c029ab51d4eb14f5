-- s2s.deliveries.endpoint has no foreign key (its check cost the checkout a row lock per
-- delivery); what stands for it (32_endpoint_references.sql, src/endpoint_lock.c): an
-- endpoint with deliveries can be neither deleted nor truncated away, and a rename is
-- carried over to its deliveries. The races with enqueuing are in test/specs/.
SET client_min_messages = warning;
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled) VALUES
    ('er_sw', 'swaarm_postback', 'https://track.example.swaarm-app.com', 'tok', false),
    ('er_empty', 'swaarm_postback', 'https://track.example.swaarm-app.com', 'tok', false);
SELECT count(s2s.track_event('er_sw', 'u-' || i, 'purchase', NULL, NULL)) AS enqueued
  FROM generate_series(1, 3) i;
SELECT count(*) AS foreign_keys FROM pg_constraint
 WHERE conrelid = 's2s.deliveries'::regclass AND contype = 'f';

-- Deleting an endpoint that has deliveries is refused, with a foreign key's SQLSTATE.
DELETE FROM s2s.endpoints WHERE name = 'er_sw';
\set VERBOSITY sqlstate
DELETE FROM s2s.endpoints WHERE name = 'er_sw';
\set VERBOSITY default
SELECT e.name, count(d.id) AS deliveries
  FROM s2s.endpoints e LEFT JOIN s2s.deliveries d ON d.endpoint = e.name
 WHERE e.name LIKE 'er\_%' GROUP BY 1 ORDER BY 1;
-- One without deliveries goes, and so does one whose deliveries were deleted first.
DELETE FROM s2s.endpoints WHERE name = 'er_empty';
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled)
    VALUES ('er_gone', 'swaarm_postback', 'https://track.example.swaarm-app.com', 'tok', false);
SELECT count(s2s.track_event('er_gone', 'u-1', 'purchase', NULL, NULL)) AS enqueued;
DELETE FROM s2s.deliveries WHERE endpoint = 'er_gone';
DELETE FROM s2s.endpoints WHERE name = 'er_gone';
SELECT count(*) AS left_behind FROM s2s.endpoints WHERE name IN ('er_empty', 'er_gone');

-- A rename is carried over to the deliveries; renamed and resumed at once, the deliveries
-- that waited are due now under the new name.
SELECT s2s.pause('er_sw', 'test');
UPDATE s2s.deliveries SET next_attempt_at = now() + interval '1 hour' WHERE endpoint = 'er_sw';
UPDATE s2s.endpoints SET name = 'er_sw2', paused_at = NULL WHERE name = 'er_sw';
SELECT endpoint, count(*) AS deliveries, bool_and(next_attempt_at <= now()) AS due_now
  FROM s2s.deliveries WHERE endpoint LIKE 'er\_%' GROUP BY 1 ORDER BY 1;
-- track_event on the old name: the endpoint does not exist.
SELECT s2s.track_event('er_sw', 'u-9', 'purchase', NULL, NULL);

-- TRUNCATE fires no row trigger: refused while any delivery exists.
BEGIN;
TRUNCATE s2s.endpoints, s2s_private.endpoint_secrets;
ROLLBACK;
SELECT count(*) AS still_there FROM s2s.endpoints WHERE name = 'er_sw2';

-- The lock functions are the owner's only.
SELECT p.oid::regprocedure AS function, has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
  FROM pg_proc p WHERE p.proname IN ('hold_endpoint', 'lock_endpoint_for_change') ORDER BY 1;

DELETE FROM s2s.deliveries WHERE endpoint LIKE 'er\_%';
DELETE FROM s2s.endpoints WHERE name LIKE 'er\_%';
