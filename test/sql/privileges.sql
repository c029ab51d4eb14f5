-- Privileges: PUBLIC gets only the pure click-ID helpers; the GRANTs doc/outbox.md gives a
-- shop's app role let it record clicks and enqueue events but neither read secrets, nor
-- add destinations, nor allow plain http, nor use the administrator's functions, even
-- when it is granted SELECT on every table of schema s2s.
\set SHOW_CONTEXT never

-- PUBLIC may execute only the pure click-ID helpers (no table, secret or network), and
-- every SECURITY DEFINER function pins its search_path.
SELECT p.oid::regprocedure AS executable_by_public
  FROM pg_proc p
 WHERE p.pronamespace IN ('s2s'::regnamespace, 's2s_private'::regnamespace)
   AND has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text;
SELECT p.oid::regprocedure AS definer_without_search_path
  FROM pg_proc p
 WHERE p.pronamespace IN ('s2s'::regnamespace, 's2s_private'::regnamespace)
   AND p.prosecdef
   AND NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp'];
SELECT c.oid::regclass AS table_readable_by_public
  FROM pg_class c
 WHERE c.relnamespace IN ('s2s'::regnamespace, 's2s_private'::regnamespace)
   AND c.relkind IN ('r', 'v', 'S')
   AND has_table_privilege('public', c.oid, 'SELECT');
SELECT has_schema_privilege('public', 's2s', 'USAGE') AS public_uses_s2s;

INSERT INTO s2s.endpoints (name, kind, url, secret, enabled) VALUES
    ('p_swp', 'swaarm_postback', 'https://track.shop.swaarm-app.com', 'T0KEN-SECRET', false),
    ('p_aff', 'affilae', 'https://lb.affilae.com/', 'AFFILAE-KEY-SECRET', false);

-- The app role, with the GRANTs of doc/outbox.md, and (what a careless DBA might add)
-- SELECT on every table of s2s.
CREATE ROLE regress_s2s_app;
GRANT USAGE ON SCHEMA s2s TO regress_s2s_app;
GRANT EXECUTE ON FUNCTION
    s2s.is_valid_click_id(text, text),
    s2s.click_time(text),
    s2s.record_click(text, inet, text, text, text, text),
    s2s.click_ids(text),
    s2s.cookie_merge(text, text),
    s2s.set_cookie_header(text, text, interval),
    s2s.track_event(text, text, text, inet, text, numeric, text, numeric, text, text),
    s2s.swaarm_click(text, inet, text)
    TO regress_s2s_app;
GRANT SELECT ON ALL TABLES IN SCHEMA s2s TO regress_s2s_app;

-- a click ID made a minute ago (an ObjectId's first 8 hex digits are its Unix time)
SELECT lpad(to_hex(extract(epoch FROM now())::int - 60), 8, '0') || '000000000000000a'
       AS click \gset
SET ROLE regress_s2s_app;
-- records clicks and handles the cookie
SELECT s2s.is_valid_click_id(:'click') AS valid,
       s2s.click_time(:'click') BETWEEN now() - interval '2 minutes' AND now() AS click_time,
       s2s.record_click(:'click', '192.0.2.1', 'UA', NULL, 'https://shop.example/?aecid=x') > 0
           AS recorded,
       s2s.click_ids(:'click' || '-bad') = ARRAY[:'click'] AS click_ids,
       s2s.cookie_merge(NULL, :'click') = :'click' AS cookie_merge,
       s2s.set_cookie_header(:'click') LIKE 'aecid=' || :'click' || ';%HttpOnly%' AS set_cookie;
-- but cannot write s2s.clicks itself
INSERT INTO s2s.clicks (network, click_id) VALUES ('affilae', 'x');
-- a new endpoint is closed to track_event (event_roles NULL): the same answer as for an
-- endpoint that does not exist, so that the app role learns nothing of it
SELECT s2s.track_event('p_swp', 'user-1', 'purchase', '192.0.2.1', 'UA');
SELECT s2s.track_event('p_none', 'user-1', 'purchase', '192.0.2.1', 'UA');
-- s2s.swaarm_click follows the same rule, with the same answer, before any request
SELECT s2s.swaarm_click('p_swp', '192.0.2.1', 'UA');
SELECT s2s.swaarm_click('p_none', '192.0.2.1', 'UA');
RESET ROLE;
UPDATE s2s.endpoints SET event_roles = '{}' WHERE name = 'p_swp';
SET ROLE regress_s2s_app;
SELECT s2s.track_event('p_swp', 'user-1', 'purchase', '192.0.2.1', 'UA');
RESET ROLE;
-- enqueues events to an endpoint whose event_roles names it ...
UPDATE s2s.endpoints SET event_roles = ARRAY['regress_s2s_app'] WHERE name = 'p_swp';
SET ROLE regress_s2s_app;
SELECT s2s.track_event('p_swp', 'user-1', 'purchase', '192.0.2.1', 'UA') > 0 AS enqueued;
RESET ROLE;
-- ... or 'public', every role (what endpoints made before 0.4.0 were given)
UPDATE s2s.endpoints SET event_roles = ARRAY['public'] WHERE name = 'p_swp';
SET ROLE regress_s2s_app;
SELECT s2s.track_event('p_swp', 'user-2', 'purchase', '192.0.2.1', 'UA') > 0 AS enqueued;
-- sees only the mask
SELECT name, secret FROM s2s.endpoints WHERE name LIKE 'p\_%' ORDER BY name;
SELECT count(*) FROM s2s.deliveries d
 WHERE d::text LIKE '%SECRET%';
-- cannot reach the secrets
SELECT * FROM s2s_private.endpoint_secrets;
SELECT s2s_private.check_endpoint_url('affilae', 'https://x.example/');
-- cannot add or change a destination, nor write the queue directly
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('p_evil', 'affilae', 'https://evil.example/');
UPDATE s2s.endpoints SET url = 'https://evil.example/' WHERE name = 'p_aff';
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key) VALUES ('p_swp', 'event', 'x');
UPDATE s2s.deliveries SET status = 'pending';
-- cannot allow plain http
SET s2s_tracking.allow_http = on;
-- cannot use the administrator's functions
SELECT * FROM s2s.preview(1);
SELECT s2s.pause('p_swp', 'x');
SELECT s2s.resume('p_swp');
SELECT s2s.retry(1);
SELECT s2s.retry_failed();
SELECT s2s.wake();
RESET ROLE;

-- An administrator role: the admin GRANTs of doc/outbox.md let it manage endpoints and
-- the queue, still without ever reading a secret.
CREATE ROLE regress_s2s_admin;
GRANT USAGE ON SCHEMA s2s TO regress_s2s_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON s2s.endpoints TO regress_s2s_admin;
GRANT SELECT ON s2s.deliveries, s2s.attempts, s2s.queue_stats TO regress_s2s_admin;
GRANT EXECUTE ON FUNCTION s2s.preview(bigint), s2s.retry(bigint), s2s.retry_failed(text),
    s2s.pause(text, text), s2s.resume(text), s2s.wake() TO regress_s2s_admin;
SET ROLE regress_s2s_admin;
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled)
    VALUES ('p_new', 'swaarm_s2sevent', 'https://track.new.example', 'NEW-SECRET', false);
UPDATE s2s.endpoints SET secret = 'NEWER-SECRET' WHERE name = 'p_new';
SELECT name, secret FROM s2s.endpoints WHERE name LIKE 'p\_%' ORDER BY name;
SELECT p.method, p.headers FROM s2s.deliveries d, s2s.preview(d.id) p
 WHERE d.endpoint = 'p_swp';
SELECT s2s.pause('p_swp', 'checking');
SELECT s2s.resume('p_swp');
SELECT * FROM s2s_private.endpoint_secrets;
SET s2s_tracking.allow_http = on;
RESET ROLE;
SELECT endpoint, secret FROM s2s_private.endpoint_secrets WHERE endpoint LIKE 'p\_%'
 ORDER BY endpoint;

DELETE FROM s2s.clicks WHERE click_id = :'click';
DELETE FROM s2s.deliveries WHERE endpoint LIKE 'p\_%';
DELETE FROM s2s.endpoints WHERE name LIKE 'p\_%';
DROP OWNED BY regress_s2s_app, regress_s2s_admin;
DROP ROLE regress_s2s_app, regress_s2s_admin;
