# The load that test/asan/valgrind-worker runs with the server under valgrind: a few
# hundred deliveries through the worker, with retries (503, then Retry-After), a timeout,
# a dropped connection and a pause/resume, so that every path of the worker that
# allocates runs many times. Not in test/t/: it is meaningful only under valgrind.
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
$node->sql("SELECT s2s.track_event('sw', 'user-' || i, 'purchase', '192.0.2.1', 'ua', i) FROM generate_series(1, 50) i");
$node->poll("SELECT count(*) = $N FROM s2s.deliveries WHERE endpoint = 'aff' AND status = 'sent'",
	"$N conversions sent under valgrind");
$r->behave(status => 401, times => 1, path_prefix => '/sw');
$node->sql("SELECT s2s.track_event('sw', 'user-x', 'purchase', '192.0.2.1', 'ua')");
$node->poll("SELECT paused_at IS NOT NULL FROM s2s.endpoints WHERE name = 'sw'", 'paused on 401');
$node->sql("SELECT s2s.resume('sw')");
$node->poll("SELECT count(*) = 0 FROM s2s.deliveries WHERE status <> 'sent'", 'everything sent');
my $pid = $node->worker_pid;
open(my $fh, '>', "$ENV{S2S_VALGRIND_LOGS}/worker.pid") or die;
print $fh "$pid\n";
close $fh;
diag("worker pid $pid; " . $node->sql("SELECT count(*) FROM s2s.attempts") . ' attempts');
$node->stop('fast');
done_testing();
