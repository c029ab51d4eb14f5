-- An endpoint that an orders trigger tracks cannot be renamed, deleted or given another
-- kind, nor can s2s.endpoints be truncated (2BP01, naming the trigger and how to stop
-- tracking): the trigger names its endpoint, and such a change made every checkout fail.
-- And whatever happens to the endpoint behind the guards, the checkout goes on.
CREATE SCHEMA et;
CREATE TABLE et.orders (id text PRIMARY KEY, amount numeric, cids text, status text);
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled) VALUES
    ('et_aff', 'affilae', 'https://lb.affilae.com/', 'k', false);
SELECT s2s.track_orders('et.orders', 'et_aff', 'id', 'amount', click_ids => 'cids',
                        status => 'status', validated_statuses => '{paid}');
-- a click ID made a minute ago (an ObjectId's first 8 hex digits are its Unix time)
SELECT lpad(to_hex(extract(epoch FROM now())::int - 60), 8, '0') || '0000000000000001'
       AS c1 \gset

-- Refused while tracked, whatever the orders table is called now.
UPDATE s2s.endpoints SET name = 'et_aff2' WHERE name = 'et_aff';
DELETE FROM s2s.endpoints WHERE name = 'et_aff';
UPDATE s2s.endpoints SET kind = 'swaarm_postback', url = 'https://track.et.example'
 WHERE name = 'et_aff';
BEGIN;
TRUNCATE s2s.endpoints, s2s_private.endpoint_secrets;
ROLLBACK;
ALTER TABLE et.orders RENAME TO orders_renamed;
DELETE FROM s2s.endpoints WHERE name = 'et_aff';
ALTER TABLE et.orders_renamed RENAME TO orders;
-- a disabled trigger still tracks it (it would fail once enabled again)
ALTER TABLE et.orders DISABLE TRIGGER s2s_track_et_aff;
DELETE FROM s2s.endpoints WHERE name = 'et_aff';
ALTER TABLE et.orders ENABLE TRIGGER s2s_track_et_aff;
-- Other changes are fine, and the checkout goes on.
UPDATE s2s.endpoints SET currency = 'USD', url = 'https://lb.affilae.com/v2/'
 WHERE name = 'et_aff';
INSERT INTO et.orders VALUES ('O-1', 10, :'c1', 'new'), ('O-2', 20, :'c1', 'paid');
SELECT endpoint, dedupe_key, status, currency FROM s2s.deliveries
 WHERE endpoint LIKE 'et\_%' ORDER BY dedupe_key;

-- Once untracked, the rename is allowed and carried over to the deliveries.
SELECT s2s.untrack_orders('et.orders', 'et_aff');
UPDATE s2s.endpoints SET name = 'et_aff2' WHERE name = 'et_aff';
SELECT endpoint, dedupe_key FROM s2s.deliveries WHERE endpoint LIKE 'et\_%' ORDER BY 2;
SELECT s2s.track_orders('et.orders', 'et_aff2', 'id', 'amount', click_ids => 'cids',
                        status => 'status', validated_statuses => '{paid}');

-- Behind the guards (a superuser disabling them, a restore in another order), the
-- endpoint may still change: the checkout never fails for it.
-- Another kind: the validated order is recorded as skipped, with the reason.
ALTER TABLE s2s.endpoints DISABLE TRIGGER endpoints_guard;
UPDATE s2s.endpoints SET kind = 'swaarm_postback', url = 'https://track.et.example'
 WHERE name = 'et_aff2';
ALTER TABLE s2s.endpoints ENABLE TRIGGER endpoints_guard;
INSERT INTO et.orders VALUES ('O-3', 30, :'c1', 'paid'), ('O-4', 40, :'c1', 'new');
SELECT dedupe_key, status, last_error FROM s2s.deliveries
 WHERE endpoint = 'et_aff2' AND dedupe_key = 'order:O-3';
-- Gone: a WARNING for each order that would have been reported, and the orders are in.
ALTER TABLE s2s.endpoints DISABLE TRIGGER endpoints_delete_guard;
DELETE FROM s2s.deliveries WHERE endpoint = 'et_aff2';
DELETE FROM s2s.endpoints WHERE name = 'et_aff2';
ALTER TABLE s2s.endpoints ENABLE TRIGGER endpoints_delete_guard;
INSERT INTO et.orders VALUES ('O-5', 50, :'c1', 'paid'), ('O-6', 60, :'c1', 'new');
UPDATE et.orders SET status = 'paid' WHERE id = 'O-6';
SELECT id, status FROM et.orders ORDER BY id;
SELECT count(*) AS deliveries FROM s2s.deliveries WHERE endpoint LIKE 'et\_%';
-- track_orders itself still refuses an endpoint that does not exist
SELECT s2s.track_orders('et.orders', 'et_aff2', 'id', 'amount', click_ids => 'cids');

-- The guard's function is the owner's only.
SELECT p.oid::regprocedure AS function, has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
  FROM pg_proc p
 WHERE p.proname IN ('refuse_tracked_endpoint_change', 'lock_endpoints_for_truncate')
 ORDER BY 1;

SELECT s2s.untrack_orders('et.orders', 'et_aff2');
DROP SCHEMA et CASCADE;
