-- Endpoint URLs at internal addresses (loopback, private, CGNAT, link-local, cloud
-- metadata, ...) are refused unless s2s_tracking.allowed_networks lists their network:
-- every literal form libcurl would connect to. (The worker's connect-time check is in
-- test/t/053_security.pl and test/unit/netcheck_test.c.)
SET s2s_tracking.allow_http = on;
-- test/regress.conf allows loopback for the other tests: start from the default
SET s2s_tracking.allowed_networks = '';
-- the host forms the guard reads, and what they mean
SELECT host, s2s_private.numeric_ipv4(host) AS ipv4
  FROM unnest(ARRAY['169.254.169.254', '2852039166', '0xa9fea9fe', '0251.0376.0251.0376',
                    '169.254.43518', '169.16689662', '0xA9.0xFE.0xA9.0xFE', '169.254.169.254.',
                    '10.0.0.1', '256.1.1.1', '08.1.1.1', '4294967296', 'a9fea9fe',
                    '1.2.3.4.5', 'example.com', '0x', '127.1', '0177.0.0.1', '2130706433']) AS host;
-- the address a URL is written at, and why it is refused
SELECT url, s2s_private.url_literal_address(url) AS address,
       s2s_private.address_refusal(s2s_private.url_literal_address(url)) AS refused
  FROM unnest(ARRAY['https://169.254.169.254/latest/meta-data/',
                    'http://169.254.169.254:8080/', 'https://2852039166/', 'https://0xa9fea9fe./',
                    'https://[fe80::1]/', 'https://[FEBF::1]:443/', 'https://[fec0::1]/',
                    'https://[::ffff:169.254.169.254]/', 'https://[::ffff:10.0.0.1]/',
                    'https://169.253.255.255/', 'https://169.255.0.0/', 'https://lb.affilae.com/',
                    'https://169.254.169.254.nip.io/', 'http://127.0.0.1:8080/', 'http://127.1/',
                    'http://2130706433/', 'http://[::1]:80/', 'http://[::]/', 'http://0.0.0.0/',
                    'http://0/', 'https://10.1.2.3/', 'https://172.16.0.1/', 'https://172.32.0.1/',
                    'https://192.168.1.1/', 'https://100.64.0.1/', 'https://100.100.100.200/',
                    'https://[fd00:ec2::254]/', 'https://[fc00::1]/', 'https://[64:ff9b::7f00:1]/',
                    'https://[::ffff:7f00:1]/', 'https://224.0.0.1/', 'https://255.255.255.255/',
                    'https://user@127.0.0.1/', 'https://8.8.8.8/', 'https://[2001:db8::1]/']) AS url;
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
VALUES ('lo1', 'swaarm_postback', 'http://127.0.0.1:9', 'tok');
INSERT INTO s2s.endpoints (name, kind, url, secret)
VALUES ('lo2', 'swaarm_postback', 'http://[::1]:9', 'tok');
INSERT INTO s2s.endpoints (name, kind, url, secret)
VALUES ('pr1', 'affilae', 'https://10.0.0.5/', 'k');
INSERT INTO s2s.endpoints (name, kind, url, secret)
VALUES ('cg1', 'affilae', 'https://100.64.1.1/', 'k');
INSERT INTO s2s.endpoints (name, kind, url, secret)
VALUES ('md6', 'swaarm_postback', 'https://[fd00:ec2::254]', 'tok');
INSERT INTO s2s.endpoints (name, kind, url, secret)
VALUES ('n64', 'swaarm_postback', 'https://[64:ff9b::a9fe:a9fe]', 'tok');
INSERT INTO s2s.endpoints (name, kind, url, secret)
VALUES ('ok1', 'swaarm_postback', 'https://track.example.com', 'tok');
UPDATE s2s.endpoints SET url = 'https://169.254.0.1' WHERE name = 'ok1';
UPDATE s2s.endpoints SET url = 'https://192.168.0.10' WHERE name = 'ok1';
SELECT name, url FROM s2s.endpoints WHERE name = 'ok1';
-- allowed explicitly (a superuser-only setting): the listed networks only
SET s2s_tracking.allowed_networks = '192.168.0.0/24, 127.0.0.0/8, ::1/128';
UPDATE s2s.endpoints SET url = 'https://192.168.0.10' WHERE name = 'ok1';
UPDATE s2s.endpoints SET url = 'https://[::ffff:127.0.0.1]:8443' WHERE name = 'ok1';
UPDATE s2s.endpoints SET url = 'https://192.168.1.10' WHERE name = 'ok1';
SELECT name, url FROM s2s.endpoints WHERE name = 'ok1';
SHOW s2s_tracking.allowed_networks;
RESET s2s_tracking.allowed_networks;
SHOW s2s_tracking.allowed_networks;
SET s2s_tracking.allowed_networks = '';
-- the deprecated allow_link_local allows the link-local ranges, nothing else
SET s2s_tracking.allow_link_local = on;
UPDATE s2s.endpoints SET url = 'https://169.254.0.1' WHERE name = 'ok1';
SELECT name, url FROM s2s.endpoints WHERE name = 'ok1';
UPDATE s2s.endpoints SET url = 'https://127.0.0.1' WHERE name = 'ok1';
RESET s2s_tracking.allow_link_local;
-- an endpoint accepted earlier keeps working when other columns change
UPDATE s2s.endpoints SET enabled = false WHERE name = 'ok1';
SELECT name, url, enabled FROM s2s.endpoints WHERE name = 'ok1';
-- a bad list is refused where it is set, with the reason
SET s2s_tracking.allowed_networks = '10.0.0.1/8';
SET s2s_tracking.allowed_networks = '127.0.0.0/8,';
SET s2s_tracking.allowed_networks = 'localhost';
SET s2s_tracking.allowed_networks = '10.0.0.0/33';
SET s2s_tracking.allowed_networks = '::/0x1';
-- a role that is not superuser can change neither setting
CREATE ROLE regress_net_admin;
SET ROLE regress_net_admin;
SET s2s_tracking.allowed_networks = '0.0.0.0/0';
SET s2s_tracking.allow_link_local = on;
RESET ROLE;
DROP ROLE regress_net_admin;
DELETE FROM s2s.endpoints WHERE name = 'ok1';
RESET s2s_tracking.allowed_networks;
RESET s2s_tracking.allow_http;
