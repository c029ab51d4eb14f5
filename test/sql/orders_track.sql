-- s2s.track_orders / s2s.untrack_orders: what they check, the trigger they create,
-- hostile column names, and who may call them.
SET client_min_messages = warning;
CREATE SCHEMA ot;
-- Endpoints are disabled so that no worker ever sends anything from this test.
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled) VALUES
    ('ot_aff', 'affilae', 'https://lb.affilae.com/', '0123456789abcdef01234567-0123456789abcdef01234567', false),
    ('ot_sw', 'swaarm_postback', 'https://track.example.swaarm-app.com', 'tok', false),
    ('ot_sev', 'swaarm_s2sevent', 'https://track.example.swaarm-app.com', 'tok', false);
-- no implied currency since 0.4.0: these endpoints name theirs
UPDATE s2s.endpoints SET currency = 'EUR' WHERE name IN ('ot_aff', 'ot_sw');
CREATE TYPE ot.order_status AS ENUM ('new', 'paid', 'shipped', 'cancelled');
CREATE TYPE ot.address AS (street text, city text);
CREATE TABLE ot.orders (
    id bigint PRIMARY KEY,
    number text,
    customer text,
    amount numeric(12,2),
    amount_f double precision,
    currency text,
    status text,
    estatus ot.order_status,
    click_ids text,
    click_arr text[],
    ip text,
    ip_inet inet,
    ua text,
    device text,
    addr ot.address,
    created_at timestamptz DEFAULT now()
);

-- A complete Affilae configuration; the name is derived from the endpoint.
SELECT s2s.track_orders('ot.orders', 'ot_aff', order_id => 'number', amount => 'amount',
                        currency => 'currency', click_ids => 'click_ids', customer => 'customer',
                        client_ip => 'ip', user_agent => 'ua', status => 'status',
                        validated_statuses => ARRAY['paid', 'shipped']);
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'ot.orders'::regclass ORDER BY 1;
-- Running it again replaces the trigger (one per table and endpoint).
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'click_arr',
                        status => 'estatus', validated_statuses => '{paid}');
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'ot.orders'::regclass ORDER BY 1;
-- Without a status column the trigger fires on INSERT only.
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'click_ids');
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'ot.orders'::regclass ORDER BY 1;
-- A second endpoint on the same table gets its own trigger; event_id is a constant.
SELECT s2s.track_orders('ot.orders', 'ot_sw', 'id', 'amount', user_id => 'customer',
                        event_id => '''purchase''');
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'ot.orders'::regclass ORDER BY 1;

-- What is refused, with the reason.
SELECT s2s.track_orders('ot.orders', 'no_such_endpoint', 'id', 'amount', click_ids => 'click_ids');
SELECT s2s.track_orders('ot.orders', NULL, 'id');
SELECT s2s.track_orders('ot.orders', 'ot_aff', NULL);
SELECT s2s.track_orders('ot.nope', 'ot_aff', 'id');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'no_such_column');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'ctid', 'amount', click_ids => 'click_ids');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'ID', 'amount', click_ids => 'click_ids');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount_f', click_ids => 'click_ids');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'currency', click_ids => 'click_ids');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'id');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'click_ids', client_ip => 'id');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'click_ids', currency => 'amount');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'click_ids', customer => 'click_arr');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'addr', 'amount', click_ids => 'click_ids');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'click_ids', status => 'id', validated_statuses => '{1}');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'click_ids', status => 'status');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'click_ids', validated_statuses => '{paid}');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'click_ids', status => 'status', validated_statuses => '{}');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'click_ids', status => 'status', validated_statuses => '{paid,NULL}');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'click_ids', status => 'estatus', validated_statuses => '{paid,payed}');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'click_ids', cv => '');
-- Per kind: what each kind needs, and what it would silently ignore.
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', click_ids => 'click_ids');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'click_ids', event_id => '''purchase''');
SELECT s2s.track_orders('ot.orders', 'ot_sw', 'id', 'amount', user_id => 'customer');
SELECT s2s.track_orders('ot.orders', 'ot_sw', 'id', event_id => '''purchase''');
SELECT s2s.track_orders('ot.orders', 'ot_sw', 'id', user_id => 'customer', event_id => '''purchase''', click_ids => 'click_ids');
SELECT s2s.track_orders('ot.orders', 'ot_sev', 'id', user_id => 'customer', event_id => '''purchase''', client_ip => 'ip');
SELECT s2s.track_orders('ot.orders', 'ot_sev', 'id', user_id => 'customer', event_id => '''purchase''', client_ip => 'ip', user_agent => 'ua', amount => 'amount');
-- Constants: only where free text is expected, well-formed, and a valid currency.
SELECT s2s.track_orders('ot.orders', 'ot_aff', '''42''', 'amount', click_ids => 'click_ids');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'click_ids', currency => '''eur''');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'click_ids', cv => '''it''s''');
SELECT s2s.track_orders('ot.orders', 'ot_aff', 'id', 'amount', click_ids => 'click_ids', cv => '''''');
-- Only tables.
CREATE VIEW ot.orders_v AS SELECT * FROM ot.orders;
SELECT s2s.track_orders('ot.orders_v', 'ot_aff', 'id', 'amount', click_ids => 'click_ids');
-- A trigger of the shop's that happens to have the derived name is never replaced.
CREATE FUNCTION ot.noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER s2s_track_ot_sev AFTER INSERT ON ot.orders FOR EACH ROW EXECUTE FUNCTION ot.noop();
SELECT s2s.track_orders('ot.orders', 'ot_sev', 'id', user_id => 'customer', event_id => '''purchase''', client_ip => 'ip', user_agent => 'ua');
DROP TRIGGER s2s_track_ot_sev ON ot.orders;
-- Failed calls left the two triggers as they were.
SELECT tgname FROM pg_trigger WHERE tgrelid = 'ot.orders'::regclass ORDER BY 1;

-- untrack_orders removes one endpoint's trigger; a second call says there is none.
SELECT s2s.untrack_orders('ot.orders', 'ot_sw');
SELECT s2s.untrack_orders('ot.orders', 'ot_sw');
SELECT tgname FROM pg_trigger WHERE tgrelid = 'ot.orders'::regclass ORDER BY 1;
SELECT s2s.untrack_orders('ot.orders', 'ot_aff');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'ot.orders'::regclass;

-- Hostile column names are quoted, never spliced: the trigger works with them.
CREATE TABLE ot.hostile (
    "a""b; drop table x" text,
    "Robert'); DROP TABLE ot.orders;--" numeric,
    "x=y" text,
    "St""at us" text,
    ")) OR true; --" text
);
SELECT s2s.track_orders('ot.hostile', 'ot_aff', order_id => 'a"b; drop table x',
                        amount => 'Robert''); DROP TABLE ot.orders;--', click_ids => 'x=y',
                        status => 'St"at us', cv => ')) OR true; --',
                        validated_statuses => ARRAY['paid''); DROP TABLE ot.orders; --', 'ok']);
SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'ot.hostile'::regclass;
SELECT lpad(to_hex(extract(epoch FROM now())::bigint - 60), 8, '0') || '00000000aaaaaaaa' AS cid \gset
INSERT INTO ot.hostile VALUES ('H-1', 10.5, :'cid', 'paid''); DROP TABLE ot.orders; --', 'cv1');
SELECT endpoint, dedupe_key, amount, click_ids = :'cid' AS cid_ok, cv, status
  FROM s2s.deliveries WHERE endpoint = 'ot_aff';
SELECT to_regclass('ot.orders') IS NOT NULL AS orders_still_there;

-- Administrative: nobody but the owner (and whom the owner grants) may track tables.
SELECT p.oid::regprocedure AS function, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_execute
  FROM pg_proc p
 WHERE p.oid IN ('s2s.track_orders'::regproc, 's2s.untrack_orders'::regproc, 's2s.enqueue_conversion'::regproc)
 ORDER BY 1;
CREATE ROLE ot_app;
GRANT USAGE ON SCHEMA ot TO ot_app;
GRANT USAGE ON SCHEMA s2s TO ot_app;
ALTER TABLE ot.hostile OWNER TO ot_app;
SET ROLE ot_app;
SELECT s2s.untrack_orders('ot.hostile', 'ot_aff');
RESET ROLE;
-- A table owner granted track_orders still needs EXECUTE on the trigger function.
GRANT EXECUTE ON FUNCTION s2s.track_orders(regclass, text, text, text, text, text, text, text, text,
                                           text, text, text, text, text, text[], text, text, text,
                                           jsonb, text) TO ot_app;
SET ROLE ot_app;
SELECT s2s.track_orders('ot.hostile', 'ot_aff', order_id => 'a"b; drop table x',
                        amount => 'Robert''); DROP TABLE ot.orders;--', click_ids => 'x=y');
RESET ROLE;

-- Clean up.
DELETE FROM s2s.deliveries WHERE endpoint LIKE 'ot\_%';
DROP SCHEMA ot CASCADE;
DELETE FROM s2s.endpoints WHERE name LIKE 'ot\_%';
DROP OWNED BY ot_app;
DROP ROLE ot_app;
