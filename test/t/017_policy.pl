# More of the delivery policy: a slow endpoint never starves a healthy one (per-endpoint
# caps); the retry window ends in 'failed' (endpoints.retry_window overrides the setting);
# Retry-After is honoured only up to s2s_tracking.retry_max; 403 and 404 pause the
# endpoint like 401; a disabled endpoint's deliveries wait and leave when it is enabled.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('policy',
	conf => {
		's2s_tracking.max_concurrency' => 4,
		's2s_tracking.endpoint_concurrency' => 2,
		's2s_tracking.request_timeout' => "'20s'",
	});
$node->add_endpoint('slow', 'affilae', $r->url . '/slow');
$node->add_endpoint('fast', 'affilae', $r->url . '/fast');

# "slow" hangs: it holds its two slots, "fast" gets the other two.
$r->behave(path_prefix => '/slow', mode => 'hang');
$node->enqueue_conversions('slow', 10);
$node->poll("SELECT count(*) = 2 FROM s2s.deliveries WHERE endpoint = 'slow' AND status = 'sending'",
	'slow endpoint: two requests hanging (its cap)');
$node->enqueue_conversions('fast', 20, 100);
$node->poll("SELECT count(*) = 20 FROM s2s.deliveries WHERE endpoint = 'fast' AND status = 'sent'",
	'fast endpoint delivered everything meanwhile');
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE endpoint = 'slow' AND status = 'sending'"),
	'2', 'slow endpoint still capped at two in flight');
$node->sql("UPDATE s2s.endpoints SET enabled = false WHERE name = 'slow'");

# Retry window: an endpoint whose window is 1 s fails a delivery that keeps getting 503.
$node->add_endpoint('down', 'affilae', $r->url . '/down', retry_window => '1 second');
$r->behave(path_prefix => '/down', status => 503);
$node->enqueue_conversions('down', 1, 200);
$node->poll("SELECT status = 'failed' FROM s2s.deliveries WHERE endpoint = 'down'",
	'503 beyond the retry window: failed');
my ($attempts, $err) = split /\|/,
  $node->sql("SELECT attempts, last_error FROM s2s.deliveries WHERE endpoint = 'down'");
cmp_ok($attempts, '>=', 2, "retried within the window ($attempts attempts)");
like($err, qr/^retry window over: HTTP 503/, 'the reason says the window is over');
is($node->sql("SELECT count(*) FROM s2s.attempts a JOIN s2s.deliveries d ON d.id = a.delivery_id WHERE d.endpoint = 'down'"),
	$attempts, 'one attempts row per attempt');

# Retry-After: 3600 is capped at retry_max (1 s in these tests).
$node->add_endpoint('later', 'affilae', $r->url . '/later');
$r->behave(path_prefix => '/later', status => 429, retry_after => '3600', times => 1);
$node->enqueue_conversions('later', 1, 300);
$node->poll("SELECT status = 'retrying' FROM s2s.deliveries WHERE endpoint = 'later'", '429: retrying');
cmp_ok($node->sql("SELECT extract(epoch FROM next_attempt_at - a.started_at) FROM s2s.deliveries d JOIN s2s.attempts a ON a.delivery_id = d.id WHERE d.endpoint = 'later'"),
	'<=', 1.5, 'Retry-After: 3600 capped at retry_max');
$node->poll("SELECT status = 'sent' FROM s2s.deliveries WHERE endpoint = 'later'", '429 then 200: sent');

# 403 and 404 pause the endpoint, like 401.
for my $code (403, 404)
{
	$node->add_endpoint("e$code", 'affilae', $r->url . "/e$code");
	$r->behave(path_prefix => "/e$code", status => $code);
	$node->enqueue_conversions("e$code", 2, $code * 10);
	$node->poll("SELECT paused_at IS NOT NULL AND pause_reason LIKE '%$code%' FROM s2s.endpoints WHERE name = 'e$code'",
		"$code: endpoint paused with the reason");
	$node->poll("SELECT count(*) = 2 FROM s2s.deliveries WHERE endpoint = 'e$code' AND status = 'pending' AND attempts = 0",
		"$code: deliveries waiting, unburned");
}

# A disabled endpoint: deliveries wait, and leave as soon as it is enabled again.
$node->add_endpoint('off', 'affilae', $r->url . '/off', enabled => 'false');
$node->enqueue_conversions('off', 3, 500);
sleep(1.5);
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE endpoint = 'off' AND status = 'pending' AND attempts = 0"),
	'3', 'disabled endpoint: deliveries wait');
is(scalar @{ $r->requests(path => '/off') }, 0, 'disabled endpoint: nothing sent');
$node->sql("UPDATE s2s.endpoints SET enabled = true WHERE name = 'off'");
$node->poll("SELECT count(*) = 3 FROM s2s.deliveries WHERE endpoint = 'off' AND status = 'sent'",
	'enabled again: sent');

$node->stop;
$r->stop;
done_testing();
