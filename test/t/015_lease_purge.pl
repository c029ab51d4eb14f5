# Leases and retention. A claim whose lease expired (the request hangs longer than the
# lease) is given back and claimed again; when the stale request finally ends, its result
# is ignored: a stale claim never overwrites a newer one. Finished deliveries older than
# s2s_tracking.retention are purged with their attempts; younger ones and waiting ones stay.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('lease',
	conf => {
		's2s_tracking.lease' => "'1s'",
		's2s_tracking.request_timeout' => "'4s'",
	});
$node->add_endpoint('aff', 'affilae', $r->url . '/aff');

# The first request hangs past the lease; its delivery is claimed again and sent.
$r->behave(path_prefix => '/aff', mode => 'hang', times => 1);
$node->enqueue_conversions('aff', 1);
$node->poll("SELECT status = 'sent' FROM s2s.deliveries", 'expired lease: claimed again and sent');
is(scalar @{ $r->requests }, 2, 'two requests: the hanging one and the new claim');
my $before = $node->sql("SELECT status || '|' || attempts || '|' || last_http_status FROM s2s.deliveries");
is($before, 'sent|1|200', 'sent on the new claim, the expired attempt not counted');
# The hanging request times out after 4 s; its stale result must change nothing.
$node->poll("SELECT in_flight = 0 FROM s2s.worker_status()", 'the stale request ended');
is($node->sql("SELECT sent || '|' || retried || '|' || failed FROM s2s.worker_status()"),
	'1|0|0', 'its result is not counted either');
is($node->sql("SELECT status || '|' || attempts || '|' || last_http_status FROM s2s.deliveries"),
	$before, 'stale result did not overwrite the newer claim');
is($node->sql("SELECT count(*) FROM s2s.attempts"), '1', 'and added no attempt row');

# Purge: backdate some finished rows beyond retention, restart the worker (it purges at
# start, then every minute).
$node->enqueue_conversions('aff', 20, 100);
$node->poll("SELECT count(*) = 21 FROM s2s.deliveries WHERE status = 'sent'", 'twenty more sent');
$node->sql("INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, currency, click_ids, status, next_attempt_at)
            VALUES ('aff', 'conversion', 'future', 'future', 'EUR', '603ed1800000000000000000', 'retrying', now() + interval '1 day')");
$node->sql("UPDATE s2s.deliveries SET finished_at = now() - interval '2 days', created_at = now() - interval '2 days' WHERE dedupe_key IN (SELECT 'order-' || i FROM generate_series(101, 110) i)");
$node->set_conf('s2s_tracking.retention', '1d');
my $pid = $node->worker_pid;
kill 'TERM', $pid;
$node->poll("SELECT count(*) = 12 FROM s2s.deliveries", 'old finished deliveries purged');
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE dedupe_key IN (SELECT 'order-' || i FROM generate_series(101, 110) i)"),
	'0', 'exactly the old ones');
is($node->sql("SELECT count(*) FROM s2s.attempts a WHERE NOT EXISTS (SELECT FROM s2s.deliveries d WHERE d.id = a.delivery_id)"),
	'0', 'their attempts went with them');
is($node->sql("SELECT status FROM s2s.deliveries WHERE dedupe_key = 'future'"), 'retrying',
	'a waiting delivery is kept');

$node->stop;
$r->stop;
done_testing();
