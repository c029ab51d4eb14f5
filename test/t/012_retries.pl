# The retry policy as the worker applies it: 503 with Retry-After then success; a final
# 400; 401 pausing the endpoint with its deliveries waiting unburned until s2s.resume;
# timeouts retried with the error visible; a receiver that is down, then up: nothing lost.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('retries',
	conf => { 's2s_tracking.request_timeout' => "'1s'", 's2s_tracking.connect_timeout' => "'1s'" });
$node->add_endpoint('aff', 'affilae', $r->url . '/aff');
$node->add_endpoint('bad', 'affilae', $r->url . '/bad');
$node->add_endpoint('auth', 'affilae', $r->url . '/auth');
$node->add_endpoint('slow', 'affilae', $r->url . '/slow', request_timeout => '3 seconds');

sub status_of
{
	my ($ep) = @_;
	return $node->sql("SELECT status || '/' || attempts FROM s2s.deliveries WHERE endpoint = '$ep' ORDER BY id LIMIT 1");
}

# 503 twice with Retry-After: 1, then 200.
$r->behave(path_prefix => '/aff', status => 503, retry_after => '1', times => 2);
$node->enqueue_conversions('aff', 1, 0);
$node->poll("SELECT status = 'retrying' AND last_http_status = 503 FROM s2s.deliveries WHERE endpoint = 'aff'",
	'503: retrying, status visible');
$node->poll("SELECT status = 'sent' FROM s2s.deliveries WHERE endpoint = 'aff'", '503 x2 then 200: sent');
is(status_of('aff'), 'sent/3', 'three attempts');
is($node->sql("SELECT string_agg(http_status::text, ',' ORDER BY attempt) FROM s2s.attempts a JOIN s2s.deliveries d ON d.id = a.delivery_id WHERE d.endpoint = 'aff'"),
	'503,503,200', 'attempts rows: 503, 503, 200');
my $aff = $r->requests(path => '/aff');
is(scalar @$aff, 3, 'receiver saw three requests');
cmp_ok($aff->[1]{time} - $aff->[0]{time}, '>=', 0.95, 'Retry-After: 1 honoured (retry_base is 100 ms)');

# A final 400: failed with the reason, not retried.
$r->behave(path_prefix => '/bad', status => 400, body => 'missing id');
$node->enqueue_conversions('bad', 1, 100);
$node->poll("SELECT status = 'failed' FROM s2s.deliveries WHERE endpoint = 'bad'", '400: failed');
is($node->sql("SELECT attempts || '|' || last_http_status || '|' || last_response || '|' || coalesce(last_error, 'none') FROM s2s.deliveries WHERE endpoint = 'bad'"),
	'1|400|missing id|HTTP 400: the receiver refused the request (HTTP 4xx): not retried', '400: one attempt, status, response and reason kept');

# A delivery that cannot make a request (s2sevent requires the user agent): failed at
# once with the reason, nothing sent.
$node->add_endpoint('sws', 'swaarm_s2sevent', $r->url . '/sws');
$node->sql("INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, user_id, event_id, client_ip) VALUES ('sws', 'event', 'e1', 'u1', 'purchase', '192.0.2.1')");
$node->poll("SELECT status = 'failed' FROM s2s.deliveries WHERE endpoint = 'sws'", 'unrenderable: failed');
like($node->sql("SELECT last_error FROM s2s.deliveries WHERE endpoint = 'sws'"),
	qr/^cannot render the request: .*user_ua/, 'unrenderable: the reason says what is missing');
is(scalar @{ $r->requests(path => '/sws/s2sevent') }, 0, 'unrenderable: nothing sent');

# 401: endpoint paused with the reason; deliveries wait, unburned; resume sends them.
$r->behave(path_prefix => '/auth', status => 401);
$node->enqueue_conversions('auth', 3, 200);
$node->poll("SELECT paused_at IS NOT NULL AND pause_reason LIKE '%401%' FROM s2s.endpoints WHERE name = 'auth'",
	'401: endpoint paused with the reason');
$node->poll("SELECT count(*) = 3 FROM s2s.deliveries WHERE endpoint = 'auth' AND status = 'pending' AND attempts = 0 AND first_attempt_at IS NULL",
	'401: deliveries pending, attempts not counted, retry window not started');
my $n401 = scalar @{ $r->requests(path => '/auth') };
cmp_ok($n401, '<=', 3, 'no request after the pause beyond those in flight');
sleep(1.5);
is(scalar @{ $r->requests(path => '/auth') }, $n401, 'paused endpoint gets no more requests');
$r->behave(path_prefix => '/auth', status => 200);
$node->sql("SELECT s2s.resume('auth')");
$node->poll("SELECT count(*) = 3 FROM s2s.deliveries WHERE endpoint = 'auth' AND status = 'sent' AND attempts = 1",
	'resume: all sent at once, first counted attempt');

# Timeouts: a hanging receiver is retried, the error visible (endpoints.request_timeout,
# 3 s, overrides the 1 s setting).
$r->behave(path_prefix => '/slow', mode => 'hang', times => 1);
$node->enqueue_conversions('slow', 1, 300);
$node->poll("SELECT status = 'sending' FROM s2s.deliveries WHERE endpoint = 'slow'",
	'hang: in flight, status sending');
$node->poll("SELECT query = 'waiting for 1 request in flight' FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker'",
	'pg_stat_activity says what the worker waits for');
is($node->sql("SELECT in_flight FROM s2s.worker_status()"), '1', 'worker_status: one in flight');
$node->poll("SELECT count(*) = 1 FROM s2s.attempts a JOIN s2s.deliveries d ON d.id = a.delivery_id WHERE d.endpoint = 'slow' AND a.http_status IS NULL AND a.error ~* 'time'",
	'timeout recorded as an attempt with the error');
$node->poll("SELECT status = 'sent' AND attempts = 2 FROM s2s.deliveries WHERE endpoint = 'slow'",
	'timeout then success: sent on the second attempt');
cmp_ok($node->sql("SELECT duration_ms FROM s2s.attempts a JOIN s2s.deliveries d ON d.id = a.delivery_id WHERE d.endpoint = 'slow' AND a.attempt = 1"),
	'>=', 2900, "the endpoint's own request timeout applied");

# Receiver down, then up: nothing lost.
my $port = $r->port;
$r->stop;
$node->enqueue_conversions('aff', 50, 1000);
$node->poll("SELECT count(*) = 50 FROM s2s.deliveries WHERE endpoint = 'aff' AND dedupe_key LIKE 'order-1___' AND status = 'retrying' AND last_error IS NOT NULL",
	'receiver down: all retrying with the error');
my $r2 = S2S::Receiver->start;
$node->sql("UPDATE s2s.endpoints SET url = '" . $r2->url . "/aff' WHERE name = 'aff'");
$node->poll("SELECT count(*) = 51 FROM s2s.deliveries WHERE endpoint = 'aff' AND status = 'sent'",
	'receiver up again: every delivery sent');
is(scalar @{ $r2->requests }, 50, 'each one exactly once');
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE status = 'sending'"), '0', 'nothing left in flight');

$node->stop;
$r2->stop;
done_testing();
