-- The attribution window without order_time: the trigger records when it first saw an
-- order that carries a click ID and is not validated yet (s2s_private.order_first_seen),
-- and judges the order's click IDs at that time when it is validated, never at its
-- validation; the row goes when the conversion is enqueued or skipped. An order inserted
-- before the trigger existed has no row: judged at its validation.
SET client_min_messages = warning;
CREATE SCHEMA ofs;
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled, currency, attribution_window) VALUES
    ('ofs_aff', 'affilae', 'https://lb.affilae.com/', '0123456789abcdef01234567-0123456789abcdef01234567', false, 'EUR', '7 days');
-- no unique order number: a shop may write the same order twice
CREATE TABLE ofs.orders (
    id       integer GENERATED ALWAYS AS IDENTITY,
    number   text NOT NULL,
    status   text NOT NULL DEFAULT 'pending',
    amount   numeric NOT NULL DEFAULT 10,
    click    text,
    metadata jsonb NOT NULL DEFAULT '{}'
);
-- a click 9 days old now: outside the endpoint's 7-day window today, inside it 5 days ago
SELECT lpad(to_hex(extract(epoch FROM now())::bigint - 9 * 86400), 8, '0') || '0000000000000001' AS c9,
       lpad(to_hex(extract(epoch FROM now())::bigint - 1 * 86400), 8, '0') || '0000000000000002' AS c1,
       lpad(to_hex(extract(epoch FROM now())::bigint - 60), 8, '0') || '0000000000000003' AS c0 \gset
-- placed before tracking started: nothing records it
INSERT INTO ofs.orders (number, click) VALUES ('before', :'c9');
SELECT s2s.track_orders('ofs.orders', 'ofs_aff', 'number', 'amount', click_ids => 'click',
                        status => 'status', validated_statuses => ARRAY['paid']);

-- A bank-wire order placed with the click, validated later. The first-seen time is moved
-- back 5 days as if the order had waited for its transfer that long (the click was then 4
-- days old; 9 days old at validation).
BEGIN;
INSERT INTO ofs.orders (number, click) VALUES ('wire', :'c9');
SELECT order_id, first_seen_at BETWEEN now() AND statement_timestamp() AS seen_at_insert
  FROM s2s_private.order_first_seen WHERE endpoint = 'ofs_aff';
COMMIT;
UPDATE s2s_private.order_first_seen SET first_seen_at = now() - interval '5 days'
 WHERE endpoint = 'ofs_aff' AND order_id = 'wire';
-- An order placed now with the same 9-day-old click: outside the window from the start.
INSERT INTO ofs.orders (number, click) VALUES ('late', :'c9');
-- An order without a click ID, one validated as it is inserted: nothing to record.
INSERT INTO ofs.orders (number) VALUES ('noclick');
INSERT INTO ofs.orders (number, click, status) VALUES ('paid-at-once', :'c1', 'paid');
SELECT order_id FROM s2s_private.order_first_seen WHERE endpoint = 'ofs_aff' ORDER BY 1;

-- The same order written twice, and its status updated before its validation: never an
-- error, and the first time stays. Its click IDs changed: the time they were first seen.
INSERT INTO ofs.orders (number, click) VALUES ('twice', :'c1');
UPDATE s2s_private.order_first_seen SET first_seen_at = '2001-01-01 00:00:00+00'
 WHERE endpoint = 'ofs_aff' AND order_id = 'twice';
INSERT INTO ofs.orders (number, click) VALUES ('twice', :'c1');
UPDATE ofs.orders SET status = 'awaiting-transfer' WHERE number = 'twice';
SELECT order_id, first_seen_at FROM s2s_private.order_first_seen
 WHERE endpoint = 'ofs_aff' AND order_id = 'twice';
UPDATE ofs.orders SET click = :'c1' || '-' || :'c9' WHERE number = 'twice';
SELECT order_id, first_seen_at > now() - interval '1 minute' AS seen_at_update
  FROM s2s_private.order_first_seen WHERE endpoint = 'ofs_aff' AND order_id = 'twice';
DELETE FROM ofs.orders WHERE number = 'twice';
DELETE FROM s2s_private.order_first_seen WHERE order_id = 'twice';

-- A click ID given by an UPDATE to an order not validated: recorded then.
INSERT INTO ofs.orders (number) VALUES ('later-click');
UPDATE ofs.orders SET click = :'c9' WHERE number = 'later-click';
SELECT order_id FROM s2s_private.order_first_seen WHERE order_id = 'later-click';

-- The customer came back through another affiliate 3 days after placing the order: its
-- new click is judged when it was first seen, not 3 days before it was made (which would
-- put it in the future, beyond click_max_skew).
INSERT INTO ofs.orders (number, click) VALUES ('switch', :'c1');
UPDATE s2s_private.order_first_seen SET first_seen_at = now() - interval '3 days'
 WHERE endpoint = 'ofs_aff' AND order_id = 'switch';
UPDATE ofs.orders SET click = :'c0' WHERE number = 'switch';

-- Validation: 'wire' is judged 5 days back (sent), 'late' and 'later-click' now (skipped,
-- with the reason), 'before' now as well (no row: inserted before the trigger existed),
-- 'switch' when its new click was given (sent).
UPDATE ofs.orders SET status = 'paid'
 WHERE number IN ('wire', 'late', 'later-click', 'before', 'switch');
SELECT conversion_id, status, last_error,
       CASE WHEN ordered_at IS NULL THEN 'none'
            WHEN ordered_at < now() - interval '4 days' THEN '5 days ago'
            ELSE 'now' END AS ordered_at
  FROM s2s.deliveries WHERE endpoint = 'ofs_aff' ORDER BY 1;
-- every row taken with its conversion
SELECT count(*) AS rows_left FROM s2s_private.order_first_seen WHERE endpoint = 'ofs_aff';

-- s2s.retry judges by the same time (ordered_at): 'wire' may be retried.
UPDATE s2s.deliveries SET status = 'failed', finished_at = now()
 WHERE endpoint = 'ofs_aff' AND conversion_id = 'wire';
SELECT s2s.retry(id) AS retried FROM s2s.deliveries
 WHERE endpoint = 'ofs_aff' AND conversion_id = 'wire';
SELECT status FROM s2s.deliveries WHERE endpoint = 'ofs_aff' AND conversion_id = 'wire';

-- An expression mapping: a click ID put into the metadata by an UPDATE is recorded, and
-- judged from then.
SELECT s2s.track_orders('ofs.orders', 'ofs_aff', 'number', 'amount',
                        click_ids => $$metadata->>'aecid'$$,
                        status => 'status', validated_statuses => ARRAY['paid']);
INSERT INTO ofs.orders (number) VALUES ('meta');
UPDATE ofs.orders SET metadata = jsonb_build_object('aecid', :'c9') WHERE number = 'meta';
UPDATE s2s_private.order_first_seen SET first_seen_at = now() - interval '5 days'
 WHERE endpoint = 'ofs_aff' AND order_id = 'meta';
UPDATE ofs.orders SET amount = 12 WHERE number = 'meta';
UPDATE ofs.orders SET status = 'paid' WHERE number = 'meta';
SELECT conversion_id, status, last_error FROM s2s.deliveries
 WHERE endpoint = 'ofs_aff' AND conversion_id = 'meta';

-- An expression that raises (the shop's own function, not a data exception) on an order
-- not validated: the order is written, nothing recorded; its validation raises.
CREATE FUNCTION ofs.cid_of(m jsonb) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF m ? 'refused' THEN
        RAISE EXCEPTION 'click ID refused';
    END IF;
    RETURN m->>'aecid';
END
$$;
SELECT s2s.track_orders('ofs.orders', 'ofs_aff', 'number', 'amount',
                        click_ids => 'ofs.cid_of(metadata)',
                        status => 'status', validated_statuses => ARRAY['paid']);
INSERT INTO ofs.orders (number, metadata)
VALUES ('raises', jsonb_build_object('aecid', :'c1', 'refused', true));
SELECT count(*) AS recorded FROM s2s_private.order_first_seen WHERE order_id = 'raises';
UPDATE ofs.orders SET status = 'paid' WHERE number = 'raises';
DELETE FROM ofs.orders WHERE number = 'raises';

-- With order_time, the order's own time counts: nothing recorded.
ALTER TABLE ofs.orders ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
SELECT s2s.track_orders('ofs.orders', 'ofs_aff', 'number', 'amount', click_ids => 'click',
                        status => 'status', validated_statuses => ARRAY['paid'],
                        order_time => 'created_at');
INSERT INTO ofs.orders (number, click) VALUES ('timed', :'c1');
SELECT count(*) AS recorded FROM s2s_private.order_first_seen WHERE order_id = 'timed';

-- Nobody but the extension reaches the table: the shop's role writes orders that record
-- their first-seen time without any right on it; pg_dump keeps its rows.
SELECT s2s.track_orders('ofs.orders', 'ofs_aff', 'number', 'amount', click_ids => 'click',
                        status => 'status', validated_statuses => ARRAY['paid']);
CREATE ROLE ofs_app;
GRANT USAGE ON SCHEMA ofs TO ofs_app;
GRANT SELECT, INSERT, UPDATE ON ofs.orders TO ofs_app;
SET ROLE ofs_app;
INSERT INTO ofs.orders (number, click) VALUES ('by-app', :'c1');
SELECT count(*) FROM s2s_private.order_first_seen;
RESET ROLE;
SELECT order_id FROM s2s_private.order_first_seen WHERE order_id = 'by-app';
SELECT has_table_privilege('ofs_app', 's2s_private.order_first_seen', 'SELECT') AS app_reads,
       has_table_privilege('ofs_app', 's2s_private.order_first_seen', 'INSERT') AS app_writes;
SELECT bool_and(a.grantee = c.relowner) AS owner_only
  FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.oid = 's2s_private.order_first_seen'::regclass;
SELECT 's2s_private.order_first_seen'::regclass = ANY (extconfig) AS dumped
  FROM pg_extension WHERE extname = 's2s_tracking';

DROP SCHEMA ofs CASCADE;
DELETE FROM s2s.deliveries WHERE endpoint = 'ofs_aff';
DELETE FROM s2s_private.order_first_seen WHERE endpoint = 'ofs_aff';
DELETE FROM s2s.endpoints WHERE name = 'ofs_aff';
DROP OWNED BY ofs_app;
DROP ROLE ofs_app;
