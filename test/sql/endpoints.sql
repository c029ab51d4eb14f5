-- s2s.endpoints: URL validation, the secret kept out of reach, updated_at.
-- Every endpoint here is disabled so that a running worker never sends to it.
\set SHOW_CONTEXT never
SET s2s_tracking.allow_http = off;

-- Accepted URLs (https, a host, optional port and path; Affilae may carry a query).
INSERT INTO s2s.endpoints (name, kind, url, enabled) VALUES
    ('ep_aff', 'affilae', 'https://lb.affilae.com/', false),
    ('ep_aff_q', 'affilae', 'https://lb.affilae.com/postback?program=12', false),
    ('ep_swp', 'swaarm_postback', 'https://track.shop.swaarm-app.com', false),
    ('ep_sws', 'swaarm_s2sevent', 'HTTPS://track.shop.swaarm-app.com:8443/base/', false),
    ('ep_v6', 'swaarm_s2sevent', 'https://[2001:db8::1]:8443', false);
SELECT name, kind, url, secret, enabled, currency, http_method, token_in_query
  FROM s2s.endpoints WHERE name LIKE 'ep\_%' ORDER BY name;

-- Refused URLs: each says what is wrong (SQLSTATE 22023).
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', 'http://lb.affilae.com/');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', 'ftp://lb.affilae.com/');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', 'file:///etc/passwd');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', 'gopher://127.0.0.1:70/');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', 'lb.affilae.com/');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', '');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', 'https:///path');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', 'https://:443/');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', 'https://user:pass@lb.affilae.com/');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', 'https://lb.affilae.com@evil.example/');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', 'https://lb.affilae.com/#frag');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', 'https://lb.affilae.com/a b');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', E'https://lb.affilae.com/\nHost: evil');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', 'https://lb.affilaé.com/');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', 'https://lb.affilae.com\@evil/');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', 'https://lb.affilae.com:99999/');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', 'https://-lb.affilae.com/');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', 'https://lb.affilae.com/?key=603ed1800000000000000000-603ed1800000000000000001');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'affilae', 'https://lb.affilae.com/?p=1&CIDS=x');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'swaarm_postback', 'https://track.example.com/?x=1');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'swaarm_s2sevent', 'https://track.example.com?');
INSERT INTO s2s.endpoints (name, kind, url) VALUES ('bad', 'swaarm_s2sevent', NULL);
-- GET/POST and the token's place only make sense for a Swaarm postback.
INSERT INTO s2s.endpoints (name, kind, url, http_method)
    VALUES ('bad', 'affilae', 'https://lb.affilae.com/', 'POST');
INSERT INTO s2s.endpoints (name, kind, url, token_in_query)
    VALUES ('bad', 'swaarm_s2sevent', 'https://track.example.com', true);
SELECT count(*) AS bad_endpoints FROM s2s.endpoints WHERE name = 'bad';

-- Plain http only while s2s_tracking.allow_http is on; an accepted http URL survives
-- later updates made with the setting off (the worker pausing it, for one).
SET s2s_tracking.allow_http = on;
INSERT INTO s2s.endpoints (name, kind, url, enabled)
    VALUES ('ep_http', 'swaarm_postback', 'http://127.0.0.1:9/', false);
SET s2s_tracking.allow_http = off;
UPDATE s2s.endpoints SET paused_at = now(), pause_reason = 'test' WHERE name = 'ep_http';
UPDATE s2s.endpoints SET url = 'http://127.0.0.1:10/' WHERE name = 'ep_http';
UPDATE s2s.endpoints SET url = 'https://127.0.0.1:10/' WHERE name = 'ep_http';
UPDATE s2s.endpoints SET kind = 'affilae', url = 'https://x.example/?a=1' WHERE name = 'ep_swp';
SELECT name, kind, url, pause_reason FROM s2s.endpoints WHERE name IN ('ep_http', 'ep_swp')
 ORDER BY name;
RESET s2s_tracking.allow_http;

-- Secrets: s2s.endpoints only ever shows a mask; the value is in s2s_private.
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled)
    VALUES ('sec', 'affilae', 'https://lb.affilae.com/',
            '603ed1800000000000000000-603ed1800000000000000001', false);
CREATE FUNCTION pg_temp.secrets() RETURNS TABLE (name text, shown text, stored text)
    LANGUAGE sql AS $$
    SELECT e.name, e.secret, s.secret FROM s2s.endpoints e
      LEFT JOIN s2s_private.endpoint_secrets s ON s.endpoint = e.name
     WHERE e.name IN ('sec', 'sec2') ORDER BY e.name $$;
SELECT * FROM pg_temp.secrets();
-- an update that leaves the secret alone, or writes the mask back, keeps it
SELECT updated_at AS before_update FROM s2s.endpoints WHERE name = 'sec' \gset
SELECT pg_sleep(0.01);
UPDATE s2s.endpoints SET currency = 'USD' WHERE name = 'sec';
SELECT updated_at > :'before_update' AS updated_at_moved FROM s2s.endpoints WHERE name = 'sec';
UPDATE s2s.endpoints SET secret = '********' WHERE name = 'sec';
SELECT * FROM pg_temp.secrets();
-- a new value replaces it
UPDATE s2s.endpoints SET secret = 'new-key' WHERE name = 'sec';
SELECT * FROM pg_temp.secrets();
-- renaming the endpoint keeps its secret, also when both change at once
UPDATE s2s.endpoints SET name = 'sec2' WHERE name = 'sec';
SELECT * FROM pg_temp.secrets();
UPDATE s2s.endpoints SET name = 'sec', secret = 'newer-key' WHERE name = 'sec2';
SELECT * FROM pg_temp.secrets();
-- empty or control characters are refused (a token goes into a header)
UPDATE s2s.endpoints SET secret = '' WHERE name = 'sec';
UPDATE s2s.endpoints SET secret = E'tok\r\nX-Evil: 1' WHERE name = 'sec';
-- NULL removes it
UPDATE s2s.endpoints SET secret = NULL WHERE name = 'sec';
SELECT * FROM pg_temp.secrets();
-- writing the mask where no secret is stored stores nothing
UPDATE s2s.endpoints SET secret = '********' WHERE name = 'sec';
SELECT * FROM pg_temp.secrets();
-- a rolled-back change leaves the stored secret as it was
UPDATE s2s.endpoints SET secret = 'kept' WHERE name = 'sec';
BEGIN;
UPDATE s2s.endpoints SET secret = 'rolled-back' WHERE name = 'sec';
ROLLBACK;
SELECT * FROM pg_temp.secrets();
-- an INSERT carrying the mask (as a restore of pg_dump's output does: the secret itself
-- is restored into s2s_private.endpoint_secrets) stores nothing
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled)
    VALUES ('sec2', 'affilae', 'https://lb.affilae.com/', '********', false);
SELECT * FROM pg_temp.secrets();
DELETE FROM s2s.endpoints WHERE name = 'sec2';
-- deleting the endpoint deletes its secret
DELETE FROM s2s.endpoints WHERE name = 'sec';
SELECT count(*) AS orphan_secrets FROM s2s_private.endpoint_secrets
 WHERE endpoint NOT IN (SELECT name FROM s2s.endpoints);

-- refused_pattern: a POSIX extended regular expression, NULL by default, checked when set
-- with the worker's own compiler (2201B, with the engine's words)
\set SHOW_CONTEXT never
SELECT count(*) AS with_a_pattern FROM s2s.endpoints
 WHERE name LIKE 'ep\_%' AND refused_pattern IS NOT NULL;
UPDATE s2s.endpoints SET refused_pattern = '"status" *: *"(error|refused)"|[Uu]nknown click'
 WHERE name = 'ep_aff';
SELECT refused_pattern FROM s2s.endpoints WHERE name = 'ep_aff';
UPDATE s2s.endpoints SET refused_pattern = '(unbalanced' WHERE name = 'ep_aff';
\echo :LAST_ERROR_SQLSTATE
UPDATE s2s.endpoints SET refused_pattern = 'a{2,1}' WHERE name = 'ep_aff';
\echo :LAST_ERROR_SQLSTATE
UPDATE s2s.endpoints SET refused_pattern = '' WHERE name = 'ep_aff';
\echo :LAST_ERROR_SQLSTATE
UPDATE s2s.endpoints SET refused_pattern = repeat('a', 1025) WHERE name = 'ep_aff';
\echo :LAST_ERROR_SQLSTATE
INSERT INTO s2s.endpoints (name, kind, url, refused_pattern)
    VALUES ('bad', 'affilae', 'https://lb.affilae.com/', '*');
\echo :LAST_ERROR_SQLSTATE
-- a refused change keeps the pattern; NULL turns it off
SELECT refused_pattern FROM s2s.endpoints WHERE name = 'ep_aff';
UPDATE s2s.endpoints SET refused_pattern = NULL WHERE name = 'ep_aff';
SELECT refused_pattern IS NULL AS off FROM s2s.endpoints WHERE name = 'ep_aff';
\set SHOW_CONTEXT errors

DELETE FROM s2s.endpoints WHERE name LIKE 'ep\_%' OR name = 'bad';
