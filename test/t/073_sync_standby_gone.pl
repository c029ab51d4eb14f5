# A fast shutdown of a primary whose synchronous standby went away, while the s2s_tracking
# worker waits in a commit for that standby (found by TAP 071). SyncRepWaitForLSN ends its
# wait only on ProcDiePending (what a backend's die() sets), QueryCancelPending or the
# postmaster's death; 0.4.0's first worker stopped on SIGTERM by only setting
# ShutdownRequestPending, so `pg_ctl stop -m fast` timed out. Now a SIGTERM during a commit
# cancels that wait.
#
# The deterministic reproducer: drain through a synchronous standby, stop the standby, see
# the worker wait (wait_event SyncRep), then `pg_ctl stop -m fast`: it completes; the
# server then restarts without the standby and sends everything, nothing failed or burned,
# duplicates at most max_concurrency.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use S2S::Node;
use S2S::Receiver;

$PostgreSQL::Test::Utils::timeout_default = $ENV{S2S_TEST_WAIT} // 120;
my $max_concurrency = 16;

my $r = S2S::Receiver->start;
$r->behave(delay_ms => 100);
my %conf = (
	S2S::Node::default_conf(),
	's2s_tracking.max_concurrency' => $max_concurrency,
	's2s_tracking.endpoint_concurrency' => $max_concurrency,
	'shared_buffers' => "'32MB'",
);
my $primary = PostgreSQL::Test::Cluster->new('primary');
bless $primary, 'S2S::Node';
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', join('', map { "$_ = $conf{$_}\n" } sort keys %conf));
$primary->start;
$primary->sql('CREATE EXTENSION s2s_tracking');
$primary->wait_worker;
$primary->add_endpoint('aff', 'affilae', $r->url . '/aff');
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf',
	"primary_conninfo = '" . $primary->connstr . " application_name=standby'\n");
$standby->start;
$primary->append_conf('postgresql.conf', "synchronous_standby_names = 'standby'\n");
$primary->reload;
$primary->poll(
	"SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = 'standby' AND sync_state = 'sync'",
	'the standby is synchronous');

$primary->enqueue_conversions('aff', 2000);
$primary->poll("SELECT count(*) >= 50 FROM s2s.deliveries WHERE status = 'sent'", 'draining');

# The standby goes away: the worker's next write-back waits for it.
$standby->stop('fast');
$primary->poll(
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker' AND wait_event = 'SyncRep'",
	'the worker waits for the synchronous standby');
my $worker = $primary->worker_pid;

# The fast shutdown: the worker's SIGTERM also cancels the wait of the commit it is in
# (src/worker_unit.c, s2s_worker_sigterm), the commit staying, durable locally, as for a backend;
# its last write-backs are committed without waiting for the standby, and a claim of that
# moment is not sent (the next worker gives it back).
my $rc = system('pg_ctl', '-D', $primary->data_dir, '-m', 'fast', '-t', '30', 'stop');
is($rc, 0, 'pg_ctl stop -m fast completes although the worker waited for a standby that is gone');
ok(!kill(0, $worker), 'the worker has left');
like(slurp_file($primary->logfile), qr/canceling wait for synchronous replication/,
	'the log says the wait was cancelled (the commit stays, locally)');

# Without the standby: everything is sent, nothing burned, duplicates bounded.
$primary->append_conf('postgresql.conf', "synchronous_standby_names = ''\n");
$primary->_update_pid(0);
$primary->start;
$primary->wait_worker;
$primary->poll("SELECT count(*) = 2000 FROM s2s.deliveries WHERE status = 'sent'", 'all 2000 sent after the restart');
my %n;
$n{ S2S::Receiver::query_params($_)->{id} }++ for @{ $r->requests };
is(scalar(keys %n), 2000, 'the receiver got every conversion');
my $dups = 0;
$dups += $_ - 1 for values %n;
cmp_ok($dups, '<=', $max_concurrency, "duplicates ($dups) at most max_concurrency");
is($primary->sql("SELECT count(*) FROM s2s.deliveries WHERE attempts <> 1"), '0', 'no attempt burned');

$primary->stop;
$r->stop;
done_testing();
