-- Endpoint URLs at link-local addresses (cloud metadata services) are refused unless
-- s2s_tracking.allow_link_local is on: every literal form libcurl would connect to.
SET s2s_tracking.allow_http = on;
-- the host forms the guard reads, and what they mean
SELECT host, s2s_private.numeric_ipv4(host) AS ipv4
  FROM unnest(ARRAY['169.254.169.254', '2852039166', '0xa9fea9fe', '0251.0376.0251.0376',
                    '169.254.43518', '169.16689662', '0xA9.0xFE.0xA9.0xFE', '169.254.169.254.',
                    '10.0.0.1', '256.1.1.1', '08.1.1.1', '4294967296', 'a9fea9fe',
                    '1.2.3.4.5', 'example.com', '0x']) AS host;
SELECT url, s2s_private.url_is_link_local(url) AS link_local
  FROM unnest(ARRAY['https://169.254.169.254/latest/meta-data/',
                    'http://169.254.169.254:8080/', 'https://2852039166/', 'https://0xa9fea9fe./',
                    'https://[fe80::1]/', 'https://[FEBF::1]:443/', 'https://[fec0::1]/',
                    'https://[::ffff:169.254.169.254]/', 'https://[::ffff:10.0.0.1]/',
                    'https://169.253.255.255/', 'https://169.255.0.0/', 'https://lb.affilae.com/',
                    'https://169.254.169.254.nip.io/']) AS url;
-- the guard refuses each literal form, on INSERT and on UPDATE of the url
INSERT INTO s2s.endpoints (name, kind, url, secret)
VALUES ('ll1', 'swaarm_postback', 'https://169.254.169.254', 'tok');
INSERT INTO s2s.endpoints (name, kind, url, secret)
VALUES ('ll2', 'affilae', 'http://2852039166:80/', 'k');
INSERT INTO s2s.endpoints (name, kind, url, secret)
VALUES ('ll3', 'swaarm_s2sevent', 'https://[fe80::a9fe:a9fe]', 'tok');
INSERT INTO s2s.endpoints (name, kind, url, secret)
VALUES ('ll4', 'swaarm_postback', 'https://[::ffff:169.254.169.254]:8443', 'tok');
INSERT INTO s2s.endpoints (name, kind, url, secret)
VALUES ('ok1', 'swaarm_postback', 'https://track.example.com', 'tok');
UPDATE s2s.endpoints SET url = 'https://169.254.0.1' WHERE name = 'ok1';
SELECT name, url FROM s2s.endpoints WHERE name = 'ok1';
-- allowed explicitly (a superuser-only setting)
SET s2s_tracking.allow_link_local = on;
UPDATE s2s.endpoints SET url = 'https://169.254.0.1' WHERE name = 'ok1';
SELECT name, url FROM s2s.endpoints WHERE name = 'ok1';
RESET s2s_tracking.allow_link_local;
-- an endpoint accepted earlier keeps working when other columns change
UPDATE s2s.endpoints SET enabled = false WHERE name = 'ok1';
SELECT name, url, enabled FROM s2s.endpoints WHERE name = 'ok1';
-- a role that is not superuser cannot turn the setting on
CREATE ROLE regress_ll_admin;
SET ROLE regress_ll_admin;
SET s2s_tracking.allow_link_local = on;
RESET ROLE;
DROP ROLE regress_ll_admin;
DELETE FROM s2s.endpoints WHERE name = 'ok1';
RESET s2s_tracking.allow_http;
