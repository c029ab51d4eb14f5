# Leases and retention. A claim whose lease expired and that the running worker does not
# hold (a claim of a worker that is gone, a result that could not be written back) is given
# back, its attempt not counted, and claimed again; a stale result never overwrites a newer
# claim's. (A request in flight keeps its lease however long it takes: 062_lease_in_flight.)
# Finished deliveries older than s2s_tracking.retention are purged with their attempts,
# and so are the first-seen times of orders never validated; younger ones and waiting ones
# stay.
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

# A delivery left 'sending' under another claim whose lease expired.
$node->sql("INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, currency, click_ids,
                                        status, claim_token, lease_until, attempts, first_attempt_at)
            VALUES ('aff', 'conversion', 'order-0', 'order-0', 'EUR', '603ed1800000000000000000',
                    'sending', 42, now() - interval '1 second', 1, now() - interval '1 minute')");
$node->poll("SELECT status = 'sent' FROM s2s.deliveries", 'expired lease: given back, claimed again and sent');
is(scalar @{ $r->requests }, 1, 'one request: the new claim');
my $before = $node->sql("SELECT status || '|' || attempts || '|' || last_http_status FROM s2s.deliveries");
is($before, 'sent|1|200', 'sent on the new claim, the expired attempt not counted');
is($node->sql("SELECT sent || '|' || retried || '|' || failed FROM s2s.worker_status()"),
	'1|0|0', 'counted once');
is($node->sql("SELECT count(*) FROM s2s.attempts"), '1', 'one attempt row');

# Purge: backdate some finished rows beyond retention, restart the worker (it purges at
# start, then every minute).
$node->enqueue_conversions('aff', 20, 100);
$node->poll("SELECT count(*) = 21 FROM s2s.deliveries WHERE status = 'sent'", 'twenty more sent');
$node->sql("INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, currency, click_ids, status, next_attempt_at)
            VALUES ('aff', 'conversion', 'future', 'future', 'EUR', '603ed1800000000000000000', 'retrying', now() + interval '1 day')");
$node->sql("UPDATE s2s.deliveries SET finished_at = now() - interval '2 days', created_at = now() - interval '2 days' WHERE dedupe_key IN (SELECT 'order-' || i FROM generate_series(101, 110) i)");
# The first-seen times of orders never validated (s2s_private.order_first_seen) go too.
$node->sql("INSERT INTO s2s_private.order_first_seen (endpoint, order_id, first_seen_at)
            VALUES ('aff', 'abandoned', now() - interval '2 days'), ('aff', 'waiting', now())");
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
$node->poll("SELECT count(*) = 1 FROM s2s_private.order_first_seen", 'old first-seen times purged');
is($node->sql("SELECT order_id FROM s2s_private.order_first_seen"), 'waiting',
	'the first-seen time of an order still waiting is kept');

$node->stop;
$r->stop;
done_testing();
