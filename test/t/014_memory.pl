# Bounded memory: a 20 MB response is read up to s2s_tracking.response_limit and dropped,
# and a backlog of thousands of deliveries leaves the worker's own heap (RssAnon) flat.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('memory');
$node->add_endpoint('aff', 'affilae', $r->url . '/aff');
$node->add_endpoint('big', 'affilae', $r->url . '/big');

# Warm up: plans prepared, connections open.
$node->enqueue_conversions('aff', 500);
$node->poll("SELECT count(*) = 500 FROM s2s.deliveries WHERE status = 'sent'", 'warm-up sent');
my $pid = $node->worker_pid;
my $rss0 = S2S::Node::rss_kb($pid);
ok($rss0, "worker heap after warm-up: $rss0 kB");

# Three 20 MB responses.
$r->behave(path_prefix => '/big', mode => 'big', big_bytes => 20_000_000);
$node->enqueue_conversions('big', 3, 1000);
$node->poll("SELECT count(*) = 3 FROM s2s.deliveries WHERE endpoint = 'big' AND status = 'sent'",
	'20 MB responses: sent');
is($node->sql("SELECT max(length(last_response)) <= 4096 FROM s2s.deliveries WHERE endpoint = 'big'"),
	't', 'response kept up to response_limit');
is($node->sql("SELECT max(length(response)) <= 4096 FROM s2s.attempts a JOIN s2s.deliveries d ON d.id = a.delivery_id WHERE d.endpoint = 'big'"),
	't', 'attempt response capped too');
my $rss1 = S2S::Node::rss_kb($pid);
cmp_ok($rss1 - $rss0, '<', 8 * 1024, "heap after 3 x 20 MB responses: $rss1 kB (flat)");

# A backlog 10 times the warm-up.
$node->enqueue_conversions('aff', 5000, 2000);
$node->poll("SELECT count(*) = 5500 FROM s2s.deliveries WHERE endpoint = 'aff' AND status = 'sent'",
	'backlog of 5000 drained');
my $rss2 = S2S::Node::rss_kb($pid);
cmp_ok($rss2 - $rss0, '<', 8 * 1024, "heap after a backlog of 5000: $rss2 kB (flat)");
is($node->worker_pid, $pid, 'same worker throughout');

# The worker's writes reach the statistics system (so autovacuum sees them): a claim and a
# write-back per delivery, an attempts row each.
$node->poll("SELECT n_tup_upd >= 2 * 5503 FROM pg_stat_user_tables WHERE relid = 's2s.deliveries'::regclass",
	'worker updates counted in pg_stat_user_tables');
$node->poll("SELECT n_tup_ins >= 5503 FROM pg_stat_user_tables WHERE relid = 's2s.attempts'::regclass",
	'worker inserts counted in pg_stat_user_tables');

$node->stop;
$r->stop;
done_testing();
