# s2s.swaarm_click against the test receiver: the exact request (path, percent-encoded
# query, User-Agent), the id parsed from the JSON answer, clear errors (HTTP status, no id,
# timeout, dropped connection, plain http refused), cancellation by statement_timeout, the
# app role calling it without reading the token, and the token never in errors or logs.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $token = 'SeCrEtTok+en/1=&x';

my $node = PostgreSQL::Test::Cluster->new('click');
$node->init;
$node->append_conf('postgresql.conf', <<'CONF');
shared_preload_libraries = 's2s_tracking'
s2s_tracking.allow_http = on
s2s_tracking.allowed_networks = '127.0.0.0/8, ::1/128'
s2s_tracking.connect_timeout = '2s'
s2s_tracking.request_timeout = '5s'
CONF
$node->start;

my $url = $r->url;
$node->safe_psql('postgres', <<"SQL");
CREATE EXTENSION s2s_tracking;
INSERT INTO s2s.endpoints (name, kind, url, secret) VALUES
  ('sw', 'swaarm_s2sevent', '$url', '$token'),
  ('swpb', 'swaarm_postback', '$url/', '$token'),
  ('aff', 'affilae', '$url/', '0123456789abcdef01234567-89abcdef0123456789abcdef'),
  ('nosecret', 'swaarm_s2sevent', '$url', NULL);
INSERT INTO s2s.endpoints (name, kind, url, secret, request_timeout) VALUES
  ('slow', 'swaarm_s2sevent', '$url', '$token', '500 ms'),
  ('patient', 'swaarm_s2sevent', '$url', '$token', '60 s');
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled) VALUES
  ('off', 'swaarm_s2sevent', '$url', '$token', false);
-- where the secret lives (the endpoints guard moves it there when it is installed)
INSERT INTO s2s_private.endpoint_secrets (endpoint, secret)
SELECT name, '$token' FROM s2s.endpoints WHERE name <> 'nosecret'
ON CONFLICT (endpoint) DO UPDATE SET secret = EXCLUDED.secret;
CREATE ROLE app LOGIN;
CREATE ROLE stranger LOGIN;
GRANT USAGE ON SCHEMA s2s TO app, stranger;
GRANT EXECUTE ON FUNCTION s2s.swaarm_click(text, inet, text) TO app;
SQL
# the harness logs every statement, the setup's included: the log is checked from here on
my $log_offset = -s $node->logfile;

# Runs SQL; returns (stdout, stderr) with verbose errors (SQLSTATE in the message).
sub run_sql
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', "\\set VERBOSITY verbose\n$sql",
		stdout => \$out, stderr => \$err, on_error_stop => 0);
	return ($out, $err);
}

sub click_sql
{
	my ($endpoint, $ip, $ua) = @_;
	return "SELECT s2s.swaarm_click('$endpoint', '$ip', \$ua\$$ua\$ua\$)";
}

# --- the request and the answer ---
my $ua = 'Mozilla/5.0 (X11; Linux) "q" &x=1 é';
my ($id, $err) = run_sql(click_sql('sw', '2001:db8::1', $ua));
like($id, qr/^clk\d+-[0-9a-f]{12}$/, 'returns the id the receiver answered');
is($err, '', 'no error');

my $reqs = $r->requests;
is(scalar @$reqs, 1, 'one request');
my $q = $reqs->[0];
is($q->{method}, 'GET', 'GET');
is($q->{path}, '/click', 'on <tracking domain>/click');
is($q->{query},
	'no_redirect=true&user_ip=2001%3Adb8%3A%3A1'
	  . '&user_ua=Mozilla%2F5.0%20%28X11%3B%20Linux%29%20%22q%22%20%26x%3D1%20%C3%A9'
	  . '&s2stoken=SeCrEtTok%2Ben%2F1%3D%26x',
	'query: no_redirect, user_ip, user_ua, s2stoken, each percent-encoded');
is_deeply(S2S::Receiver::query_params($q),
	{ no_redirect => 'true', user_ip => '2001:db8::1', user_ua => $ua =~ s/é/\xc3\xa9/r,
	  s2stoken => $token },
	'query decodes to the given values');
is(S2S::Receiver::header($q, 'User-Agent'), 's2s_tracking/' . S2S::Node::control_version(), 'User-Agent names the extension');

$r->reset;
($id) = run_sql(click_sql('swpb', '192.0.2.1/32', 'UA'));
like($id, qr/^clk/, 'a swaarm_postback endpoint (URL with a trailing slash) works too');
$reqs = $r->requests;
is($reqs->[0]{path}, '/click', 'trailing slash of the tracking domain not doubled');
is(S2S::Receiver::query_params($reqs->[0])->{user_ip}, '192.0.2.1', 'user_ip without netmask');

# --- JSON answers ---
my @answers = (
	[ '{"id": "abc123"}', 'abc123', 'a plain string id' ],
	[ '{"id": 12345}', '12345', 'an integer id' ],
	[ ' { "x": {"id": "inner", "a": [1, 2.5e3, true, null, "s"]}, "id" : "o\\"k\\u0041" } ',
	  'o"kA', 'the top-level id, escapes decoded, nested members skipped' ],
	[ '{"note": "caf\\u00e9 \\u0000 \\ud800", "n": 0, "id": "ok1"}', 'ok1',
	  'escapes that no ID holds (non-ASCII, U+0000, a lone surrogate) elsewhere in the answer' ],
	[ '{"a":' . ('[' x 64) . (']' x 64) . ', "id": "ok2"}', 'ok2', 'nesting 64 deep inside' ],
);
for my $a (@answers)
{
	$r->reset;
	$r->behave(path_prefix => '/click', body => $a->[0], times => 1);
	my ($got, $e) = run_sql(click_sql('sw', '192.0.2.1', 'UA'));
	is($got, $a->[1], "answer $a->[2]");
}

# --- one rule for Swaarm click IDs: whatever swaarm_click returns, record_click (network
# 'swaarm') and is_valid_click_id accept (issue 12) ---
for my $body ('{"id": "o\\"k/+=;,\\\\A%20"}', '{"id": "' . ('z' x 256) . '"}', '{"id": 12345}',
	'{"id": "clk-1.~_x"}')
{
	$r->reset;
	$r->behave(path_prefix => '/click', body => $body, times => 1);
	my ($got, $e) = run_sql(click_sql('sw', '192.0.2.1', 'UA'));
	like($got, qr/^\S+$/, 'swaarm_click returned an id for ' . substr($body, 0, 40));
	my ($rec, $e2) = run_sql("SELECT s2s.record_click(\$cid\$$got\$cid\$, network => 'swaarm') > 0, "
		  . "s2s.is_valid_click_id(\$cid\$$got\$cid\$, 'swaarm')");
	is($rec, 't|t', "record_click and is_valid_click_id accept what swaarm_click returned ($got)"
		  =~ s/z{256}/z x 256/r);
}

my @bad = (
	[ '{"error": "x"}', 'no id member' ],
	[ 'not json', 'not JSON' ],
	[ '{"id": ""}', 'an empty id' ],
	[ '{"id": null}', 'a null id' ],
	[ '{"id": 1.5}', 'a fractional id' ],
	[ '{"id": "a b"}', 'an id with a space' ],
	[ '{"id": "x"} trailing', 'trailing garbage' ],
	[ '[{"id": "x"}]', 'an array' ],
	[ '{"id": "x"', 'a truncated object' ],
	[ '{"id": "x\\u00e9"}', 'a non-ASCII id' ],
	[ ('[' x 100) . (']' x 100), 'deep nesting' ],
	[ '{"a":' . ('[' x 100) . (']' x 100) . ', "id": "x"}', 'deep nesting inside' ],
	[ '{"a":' . ('[' x 65) . (']' x 65) . ', "id": "x"}', 'nesting 65 deep inside' ],
	[ '{"id": "x", "a":' . ('[' x 20000), 'nesting as deep as the capped body allows' ],
	[ '{"id": "x\\u0000"}', 'an id holding U+0000' ],
	[ '{"id": 0123}', 'a number with a leading zero (not JSON)' ],
);
for my $b (@bad)
{
	$r->reset;
	$r->behave(path_prefix => '/click', body => $b->[0], times => 1);
	my ($got, $e) = run_sql(click_sql('sw', '192.0.2.1', 'UA'));
	like($e, qr/ERROR:  38000: endpoint "sw" answered the click request without a click ID/,
		"an answer with $b->[1] is a clear error");
}

# --- a NUL byte in the answer: the body is read as received, every byte of it, never only
# up to the NUL (the error detail shows a NUL as a space, like any unprintable byte) ---
$r->reset;
$r->behave(path_prefix => '/click', body => '{"x":1}' . "\0" . ('Z' x 100), times => 1);
(undef, $err) = run_sql(click_sql('sw', '192.0.2.1', 'UA'));
like($err, qr/ERROR:  38000: endpoint "sw" answered the click request without a click ID/,
	'an answer with a NUL byte after a JSON object without an id: no click ID');
like($err, qr/the response began: \{"x":1\} Z{100}\n/,
	'the detail shows the bytes after the NUL as received, nothing else');

$r->reset;
$r->behave(path_prefix => '/click', body => '{"id":"abc"}' . "\0" . 'junk', times => 1);
(undef, $err) = run_sql(click_sql('sw', '192.0.2.1', 'UA'));
like($err, qr/ERROR:  38000: endpoint "sw" answered the click request without a click ID/,
	'a valid answer followed by a NUL byte and more is trailing garbage, as without the NUL');
like($err, qr/the response began: \{"id":"abc"\} junk\n/,
	'the detail shows the whole answer, the NUL as a space');

# --- errors ---
$r->reset;
$r->behave(path_prefix => '/click', status => 503, body => 'overloaded', times => 1);
(undef, $err) = run_sql(click_sql('sw', '192.0.2.1', 'UA'));
like($err, qr/ERROR:  38000: click request to endpoint "sw" was answered HTTP 503/,
	'HTTP 503: error with the status');
like($err, qr/The response began: overloaded/, 'the answer is shown in the detail');

$r->reset;
$r->behave(path_prefix => '/click', status => 500, body => "echo s2stoken=$token", times => 1);
(undef, $err) = run_sql(click_sql('sw', '192.0.2.1', 'UA'));
like($err, qr/The response began: echo s2stoken=\*+/, 'an answer echoing the token is shown with the token masked');
unlike($err, qr/\Q$token\E/, 'the token itself is not shown');

$r->reset;
$r->behave(path_prefix => '/click', mode => 'hang', times => 1);
(undef, $err) = run_sql(click_sql('slow', '192.0.2.1', 'UA'));
like($err, qr/ERROR:  08006: click request to endpoint "slow" failed: timeout/,
	'a hanging Swaarm: timeout error after the endpoint\'s request_timeout');

$r->reset;
$r->behave(path_prefix => '/click', mode => 'close');
(undef, $err) = run_sql(click_sql('sw', '192.0.2.1', 'UA'));
like($err, qr/ERROR:  08006: click request to endpoint "sw" failed: network error/,
	'a dropped connection: network error');
$r->reset;

# statement_timeout interrupts the wait (the endpoint would wait 60 s)
$r->behave(path_prefix => '/click', mode => 'hang', times => 1);
(undef, $err) = run_sql("SET statement_timeout = '300ms';\n" . click_sql('patient', '192.0.2.1', 'UA'));
like($err, qr/ERROR:  57014: canceling statement due to statement timeout/,
	'the call is interrupted by statement_timeout');
($id, $err) = run_sql(click_sql('sw', '192.0.2.1', 'UA'));
like($id, qr/^clk/, 'the next call after a cancelled one works');

(undef, $err) = run_sql(click_sql('nope', '192.0.2.1', 'UA'));
like($err, qr/ERROR:  42704: endpoint "nope" does not exist/, 'unknown endpoint');
(undef, $err) = run_sql(click_sql('aff', '192.0.2.1', 'UA'));
like($err, qr/ERROR:  22023: endpoint "aff" is not a Swaarm endpoint/, 'an Affilae endpoint is refused');
(undef, $err) = run_sql(click_sql('off', '192.0.2.1', 'UA'));
like($err, qr/ERROR:  55000: endpoint "off" is disabled/, 'a disabled endpoint is refused');
(undef, $err) = run_sql(click_sql('nosecret', '192.0.2.1', 'UA'));
like($err, qr/ERROR:  55000: endpoint "nosecret" has no token/, 'an endpoint without token is refused');
(undef, $err) = run_sql("SELECT s2s.swaarm_click('sw', NULL, 'UA')");
like($err, qr/ERROR:  22004: ip must not be null/, 'a NULL ip is refused');
(undef, $err) = run_sql("SELECT s2s.swaarm_click('sw', '192.0.2.1', NULL)");
like($err, qr/ERROR:  22004: user_agent must not be null/, 'a NULL user agent is refused');

# plain http refused when allow_http is off; nothing reaches the receiver
$r->reset;
$node->safe_psql('postgres', "ALTER SYSTEM SET s2s_tracking.allow_http = off; SELECT pg_reload_conf();");
$node->poll_query_until('postgres', "SELECT current_setting('s2s_tracking.allow_http') = 'off'");
(undef, $err) = run_sql(click_sql('sw', '192.0.2.1', 'UA'));
like($err, qr/ERROR:  08006: click request to endpoint "sw" failed: request refused/,
	'plain http refused when s2s_tracking.allow_http is off');
is(scalar @{ $r->requests }, 0, 'nothing was sent');
$node->safe_psql('postgres', "ALTER SYSTEM RESET s2s_tracking.allow_http; SELECT pg_reload_conf();");
$node->poll_query_until('postgres', "SELECT current_setting('s2s_tracking.allow_http') = 'on'");

# the receiver's loopback address refused unless s2s_tracking.allowed_networks lists it
# (checked on the address connected to); nothing reaches the receiver
$r->reset;
$node->safe_psql('postgres', "ALTER SYSTEM SET s2s_tracking.allowed_networks = ''; SELECT pg_reload_conf();");
$node->poll_query_until('postgres', "SELECT current_setting('s2s_tracking.allowed_networks') = ''");
(undef, $err) = run_sql(click_sql('sw', '192.0.2.1', 'UA'));
like($err, qr/ERROR:  08006: click request to endpoint "sw" failed: request refused\n.*127\.0\.0\.1 is a loopback address/,
	'loopback refused when s2s_tracking.allowed_networks does not list it');
is(scalar @{ $r->requests }, 0, 'nothing was sent');
$node->safe_psql('postgres', "ALTER SYSTEM RESET s2s_tracking.allowed_networks; SELECT pg_reload_conf();");
$node->poll_query_until('postgres', "SELECT current_setting('s2s_tracking.allowed_networks') <> ''");

# --- privileges ---
# the endpoint's event_roles decide, as for s2s.track_event: until they name the app role,
# it gets the same answer for the endpoint as for one that does not exist, and no request
$r->reset;
(undef, $err) = run_sql("SET ROLE app;\n" . click_sql('sw', '192.0.2.1', 'UA'));
like($err, qr/ERROR:  42501: permission denied to request click IDs from endpoint "sw"/,
	'the app role, not in the endpoint\'s event_roles, is refused');
(undef, my $err2) = run_sql("SET ROLE app;\n" . click_sql('nope', '192.0.2.1', 'UA'));
(my $e1 = $err) =~ s/"sw"/"X"/g;
(my $e2 = $err2) =~ s/"nope"/"X"/g;
is($e1, $e2, 'the same answer as for an endpoint that does not exist');
is(scalar @{ $r->requests }, 0, 'nothing was sent');
$node->safe_psql('postgres', "UPDATE s2s.endpoints SET event_roles = ARRAY['app'] WHERE name = 'sw'");
($id, $err) = run_sql("SET ROLE app;\n" . click_sql('sw', '192.0.2.1', 'UA'));
like($id, qr/^clk/, 'the app role, granted EXECUTE and named in event_roles, gets a click id');
(undef, $err) = run_sql("SET ROLE app; SELECT secret FROM s2s_private.endpoint_secrets");
like($err, qr/permission denied for schema s2s_private/, 'the app role cannot read the token');
(undef, $err) = run_sql("SET ROLE stranger;\n" . click_sql('sw', '192.0.2.1', 'UA'));
like($err, qr/permission denied for function swaarm_click/, 'without the grant, no call');

# --- the token never in the server log ---
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/without a click ID/, 'errors were logged');
unlike($log, qr/SeCrEtTok/, 'the token never appears in the server log');

$node->stop;
$r->stop;
done_testing();
