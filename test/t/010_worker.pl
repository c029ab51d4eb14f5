# The delivery worker as a process: it waits for the extension (saying so once), shows
# what it does in pg_stat_activity and s2s.worker_status(), is woken by a commit (the poll
# interval is one hour here, so only the wake can explain a prompt delivery), and applies
# a reloaded setting (SIGHUP) to the requests it sends.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('worker', extension => 0,
	conf => { 's2s_tracking.poll_interval' => "'1h'" });

# Without the extension the worker waits, logging it once, and looks again.
ok($node->wait_for(
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker'"),
	'worker runs before the extension exists');
sleep(2.5);
my $log = slurp_file($node->logfile);
my @waiting = ($log =~ /s2s_tracking worker waiting: extension s2s_tracking is not installed/g);
is(scalar @waiting, 1, 'missing extension logged once');

$node->sql('CREATE EXTENSION s2s_tracking');
$node->poll("SELECT pid IS NOT NULL FROM s2s.worker_status()", 'worker_status shows the worker');
is($node->sql("SELECT pid FROM s2s.worker_status()"), $node->worker_pid,
	'worker_status pid is the pg_stat_activity pid');
$node->poll(
	"SELECT datname = 'postgres' AND wait_event = 'Extension' FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker'",
	'worker connected to s2s_tracking.database and waiting on its latch');

# Wake on commit: with a one-hour poll, a delivery sent promptly was woken by the commit.
$node->add_endpoint('aff', 'affilae', $r->url . '/aff');
$node->wait_for("SELECT last_loop_at > now() - interval '1 hour' FROM s2s.worker_status()");
$node->enqueue_conversions('aff', 3);
$node->poll("SELECT count(*) = 3 FROM s2s.deliveries WHERE status = 'sent'",
	'deliveries sent after a wake-on-commit, long before the poll interval');
is(scalar @{ $r->requests }, 3, 'receiver got three requests');
is($node->sql("SELECT sent, failed, in_flight FROM s2s.worker_status()"), '3|0|0',
	'worker_status counts them');
is($node->sql("SELECT string_agg(attempt || ':' || http_status, ',' ORDER BY delivery_id) FROM s2s.attempts"),
	'1:200,1:200,1:200', 'one attempt row each, with the HTTP status');
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE sent_at IS NOT NULL AND finished_at IS NOT NULL AND attempts = 1 AND last_http_status = 200 AND claim_token IS NULL AND lease_until IS NULL"),
	'3', 'sent rows carry their result and no claim');

# SIGHUP: max_concurrency 1 -> never more than one request at once at the receiver.
$r->reset;
$r->behave(delay_ms => 200);
$node->set_conf('s2s_tracking.max_concurrency', '1');
$node->enqueue_conversions('aff', 6, 100);
$node->poll("SELECT count(*) = 9 FROM s2s.deliveries WHERE status = 'sent'", 'sent with concurrency 1');
is($r->stats->{max_in_flight}, 1, 'max_concurrency = 1 after reload: one request at a time');

$r->reset;
$r->behave(delay_ms => 300);
$node->set_conf('s2s_tracking.max_concurrency', '8');
$node->enqueue_conversions('aff', 8, 200);
$node->poll("SELECT count(*) = 17 FROM s2s.deliveries WHERE status = 'sent'", 'sent with concurrency 8');
cmp_ok($r->stats->{max_in_flight}, '>', 1, 'max_concurrency = 8 after reload: requests in parallel');

# The per-endpoint cap (endpoints.max_concurrency) holds too.
$r->reset;
$r->behave(delay_ms => 300);
$node->sql("UPDATE s2s.endpoints SET max_concurrency = 2 WHERE name = 'aff'");
$node->enqueue_conversions('aff', 8, 300);
$node->poll("SELECT count(*) = 25 FROM s2s.deliveries WHERE status = 'sent'", 'sent with an endpoint cap of 2');
cmp_ok($r->stats->{max_in_flight}, '<=', 2, 'endpoint max_concurrency caps its requests in flight');

# SIGTERM with two requests hanging: the worker gives them back (not counted) and leaves
# at once; the postmaster starts a new worker, which sends them.
$r->reset;
$r->behave(mode => 'hang', times => 2);
$node->enqueue_conversions('aff', 2, 400);
$node->poll("SELECT in_flight = 2 FROM s2s.worker_status()", 'two requests hanging');
my $pid = $node->worker_pid;
kill 'TERM', $pid;
$node->poll("SELECT pid IS NOT NULL AND pid <> $pid FROM s2s.worker_status()",
	'a new worker replaces one that was terminated');
like(slurp_file($node->logfile), qr/gave back 2 deliveries in flight at shutdown/,
	'SIGTERM gave the two requests in flight back');
$node->poll("SELECT count(*) = 27 FROM s2s.deliveries WHERE status = 'sent'", 'and the new worker sends them');
is($node->sql("SELECT string_agg(attempts::text, ',') FROM s2s.deliveries WHERE dedupe_key IN ('order-401', 'order-402')"),
	'1,1', 'their interrupted attempt was not counted');

$node->stop;
$r->stop;
done_testing();
