# The load that test/asan/valgrind-worker runs with the server under valgrind: a few
# hundred deliveries through the worker, with retries (503, then Retry-After), a timeout,
# a dropped connection and a pause/resume, so that every path of the worker that
# allocates runs many times; and orders through the tracking trigger (its insert, the
# insert's conflict path, a skipped delivery) in the backends. Not in test/t/: it is
# meaningful only under valgrind.
#   S2S_VALGRIND_N=300   deliveries
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;
use S2S::Receiver;

my $N = $ENV{S2S_VALGRIND_N} // 300;
my $r = S2S::Receiver->start;
my $node = S2S::Node->create('vg',
	conf => {
		's2s_tracking.request_timeout' => "'3s'",
		's2s_tracking.max_concurrency' => 16,
		'log_min_messages' => 'warning',
	});
$node->add_endpoint('aff', 'affilae', $r->url . '/aff/');
$node->add_endpoint('sw', 'swaarm_postback', $r->url . '/sw', http_method => 'POST');

$r->behave(status => 503, times => 20, retry_after => '1', path_prefix => '/aff');
$r->behave(mode => 'close', times => 5, path_prefix => '/sw');
$node->enqueue_conversions('aff', $N);
$node->sql("CREATE TABLE orders (number text, amount numeric, status text, cids text)");
$node->sql("SELECT s2s.track_orders('orders', 'aff', 'number', 'amount', click_ids => 'cids',
                                    status => 'status', validated_statuses => ARRAY['paid'])");
$node->sql("INSERT INTO orders SELECT 'o-' || i, i, 'paid',
                   lpad(to_hex(extract(epoch FROM now())::bigint - 60), 8, '0') || lpad(to_hex(i), 16, '0')
              FROM generate_series(1, 40) i");
$node->sql("UPDATE orders SET status = 'new'");
$node->sql("UPDATE orders SET status = 'paid'");
$node->sql("INSERT INTO orders VALUES ('o-bad', -1, 'paid', 'not-a-click-id')");
is($node->sql("SELECT count(*) FILTER (WHERE status <> 'skipped') || '/' || count(*) FILTER (WHERE status = 'skipped') FROM s2s.deliveries WHERE dedupe_key LIKE 'order:o-%'"),
	'40/1', 'orders enqueued once each by the trigger, one skipped');
$node->sql("SELECT s2s.track_event('sw', 'user-' || i, 'purchase', '192.0.2.1', 'ua', i) FROM generate_series(1, 50) i");
$node->poll("SELECT count(*) = $N + 40 FROM s2s.deliveries WHERE endpoint = 'aff' AND status = 'sent'",
	"$N + 40 conversions sent under valgrind");
$r->behave(status => 401, times => 1, path_prefix => '/sw');
$node->sql("SELECT s2s.track_event('sw', 'user-x', 'purchase', '192.0.2.1', 'ua')");
$node->poll("SELECT paused_at IS NOT NULL FROM s2s.endpoints WHERE name = 'sw'", 'paused on 401');
$node->sql("SELECT s2s.resume('sw')");
$node->poll("SELECT count(*) = 0 FROM s2s.deliveries WHERE status NOT IN ('sent', 'skipped')", 'everything sent');
my $pid = $node->worker_pid;
open(my $fh, '>', "$ENV{S2S_VALGRIND_LOGS}/worker.pid") or die;
print $fh "$pid\n";
close $fh;
diag("worker pid $pid; " . $node->sql("SELECT count(*) FROM s2s.attempts") . ' attempts');
$node->stop('fast');
done_testing();
