# DROP EXTENSION never meets the worker in a deadlock (seen once in CI, TAP 056: the DROP
# locks the extension's objects one at a time, a worker transaction held one and asked for
# another). Every worker transaction now takes the extension's own lock first: a DROP that
# is not committed finds the worker waiting for that lock and holding none of the
# extension's relations; a DROP rolled back lets it go on, one committed leaves it
# waiting for the extension, without touching what was dropped; and DROP EXTENSION while
# the worker drains succeeds at the first try, cycle after cycle, the worker logging no
# error for it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('dropext', conf => { 's2s_tracking.poll_interval' => "'1s'" });

sub setup
{
	$node->add_endpoint('aff', 'affilae', $r->url . '/x/');
	return;
}
setup();
$node->enqueue_conversions('aff', 20);
ok($node->wait_for("SELECT count(*) = 20 FROM s2s.deliveries WHERE status = 'sent'"),
	'the worker delivers');

my $wpid = $node->worker_pid;
my $extoid = $node->sql("SELECT oid FROM pg_extension WHERE extname = 's2s_tracking'");
my $ours = "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('s2s', 's2s_private')";
my $waits_for_extension = "SELECT count(*) > 0 FROM pg_locks WHERE pid = $wpid AND NOT granted AND locktype = 'object' AND classid = 'pg_extension'::regclass AND objid = $extoid";
my $holds_relations = "SELECT count(*) FROM pg_locks WHERE pid = $wpid AND locktype = 'relation' AND relation IN ($ours)";

# 1. A DROP EXTENSION not yet committed: the worker's next transaction (its poll, every
#    second, and its check for the extension) waits for the extension's lock, first.
my $dropper = $node->background_psql('postgres', timeout => 120);
$dropper->query_safe('BEGIN');
$dropper->query_safe('DROP EXTENSION s2s_tracking');
ok($node->wait_for($waits_for_extension),
	'while a DROP EXTENSION is not committed, the worker waits for the extension\'s lock')
  or diag($node->sql("SELECT string_agg(locktype || ' ' || coalesce(relation::regclass::text, classid::regclass::text || ' ' || objid) || ' ' || mode || ' ' || granted, '; ') FROM pg_locks WHERE pid = $wpid"));
is($node->sql($holds_relations), '0', 'and holds no lock on any of the extension\'s relations');

# 2. Rolled back: the worker goes on.
$dropper->query_safe('ROLLBACK');
$node->enqueue_conversions('aff', 20, 20);
ok($node->wait_for("SELECT count(*) = 40 FROM s2s.deliveries WHERE status = 'sent'"),
	'after the DROP is rolled back, the worker delivers again');

# 3. Committed: the worker, which waited, finds the extension gone and touches nothing of
#    what was dropped; CREATE EXTENSION brings it back.
my $log_from = -s $node->logfile;
$dropper->query_safe('BEGIN');
$dropper->query_safe('DROP EXTENSION s2s_tracking');
ok($node->wait_for($waits_for_extension), 'a second DROP: the worker waits for it again');
$dropper->query_safe('COMMIT');
ok($node->wait_for("SELECT count(*) = 1 FROM pg_stat_activity WHERE pid = $wpid AND wait_event_type IS DISTINCT FROM 'Lock'"),
	'once the DROP is committed, the worker no longer waits');
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker' AND query = 'waiting for extension s2s_tracking'"),
	'it says it waits for the extension');
my $log;
for (1 .. 100)
{
	$log = substr(slurp_file($node->logfile), $log_from);
	last if $log =~ /\[$wpid\] LOG:  s2s_tracking worker waiting: extension s2s_tracking is not installed/;
	sleep(0.1);
}
like($log, qr/\[$wpid\] LOG:  s2s_tracking worker waiting: extension s2s_tracking is not installed/,
	'and logs it');
unlike($log, qr/does not exist|could not open relation|cache lookup failed|deadlock/,
	'it never touched a dropped object (nothing about a missing relation in the log)');
$node->sql('CREATE EXTENSION s2s_tracking');
setup();
$node->enqueue_conversions('aff', 20, 40);
ok($node->wait_for("SELECT count(*) = 20 FROM s2s.deliveries WHERE status = 'sent'"),
	'after CREATE EXTENSION, the worker delivers again');
$dropper->quit;

# 4. DROP EXTENSION in the middle of a drain, five times: each succeeds at the first try.
#    (The DROP's deadlock_timeout is short, so that were there a cycle, the DROP would be
#    the one to find it and fail.)
my $from = 60;
my $dropped_at_once = 0;
for my $cycle (1 .. 5)
{
	$node->enqueue_conversions('aff', 3000, $from);
	$from += 3000;
	$node->wait_for("SELECT count(*) >= 100 FROM s2s.deliveries WHERE status = 'sent'");
	my ($rc, $out, $err) = $node->psql('postgres',
		"SET deadlock_timeout = '20ms'; DROP EXTENSION s2s_tracking");
	if ($rc == 0) { $dropped_at_once++; }
	else { diag("cycle $cycle: DROP EXTENSION failed: $err"); }
	$node->sql('CREATE EXTENSION s2s_tracking') if $rc == 0;
	setup() if $rc == 0;
}
is($dropped_at_once, 5, 'DROP EXTENSION during a drain succeeded at the first try, five times of five');
$log = substr(slurp_file($node->logfile), $log_from);
unlike($log, qr/deadlock detected/, 'and no deadlock was logged');
# (requests in flight at each DROP: their results have nowhere to go, and are held)
unlike($log, qr/\[$wpid\] ERROR/,
	'the worker logged no error for any of the six DROPs (the extension gone is not one)');

$node->stop;
$r->stop;
done_testing();
