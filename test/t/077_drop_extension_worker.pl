# DROP EXTENSION never meets the worker in a deadlock (seen once in CI, TAP 056: the DROP
# locks the extension's objects one at a time, a worker transaction held one and asked for
# another). Every worker transaction now takes the extension's own lock first: a DROP that
# is not committed finds the worker waiting for that lock and holding none of the
# extension's relations; a DROP rolled back lets it go on, one committed leaves it
# waiting for the extension, without touching what was dropped; a DROP that comes while a
# worker transaction runs waits at the extension's lock, holding none of its relations;
# a worker waiting for a DROP leaves when asked to stop; a worker transaction takes
# s2s.deliveries first, as ALTER EXTENSION UPDATE does (seen in CI too, TAP 058), so that
# the two never hold one table each; another role's DROP, queued behind a session sharing
# that lock, and another role holding the lock outright, do not hold the worker up; and
# DROP EXTENSION while the worker drains succeeds at the first
# try, cycle after cycle, the worker logging no error for it.
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
my $waits_for_extension = "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker' AND query = 'waiting for a DROP EXTENSION to end'";
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
# (it waits by asking again every 10 to 200 ms, not in the lock's queue: a stop request ends it)
my $stop_from = -s $node->logfile;
$node->sql("SELECT pg_terminate_backend($wpid)");
ok($node->wait_for("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $wpid"),
	'a worker waiting for a DROP leaves when asked to stop');
unlike(substr(slurp_file($node->logfile), $stop_from), qr/\[$wpid\] LOG:  s2s_tracking worker waiting: extension/,
	'without saying the extension is missing (it is not)');
ok($node->wait_for("SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker' AND query = 'waiting for a DROP EXTENSION to end'"),
	'the next worker waits for the DROP too');
$wpid = $node->worker_pid;

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
ok($node->wait_for("SELECT count(*) = 1 FROM pg_stat_activity WHERE pid = $wpid AND query IS DISTINCT FROM 'waiting for a DROP EXTENSION to end'"),
	'once the DROP is committed, the worker no longer waits for it');
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

# 4. The order CI met: the worker in the middle of a transaction (here held by a session
#    that locked s2s.deliveries), then DROP EXTENSION. The DROP waits at the extension's
#    lock, holding none of its relations (before, it locked what it could and waited for
#    the worker's table, ready to close a cycle); once the worker's transaction ends, it
#    goes through.
$extoid = $node->sql("SELECT oid FROM pg_extension WHERE extname = 's2s_tracking'");
my $holder = $node->background_psql('postgres', timeout => 120);
$holder->query_safe('BEGIN');
$holder->query_safe('LOCK TABLE s2s.deliveries IN ACCESS EXCLUSIVE MODE');
ok($node->wait_for("SELECT count(*) > 0 FROM pg_locks WHERE pid = $wpid AND NOT granted AND relation = 's2s.deliveries'::regclass"),
	'a worker transaction waits for s2s.deliveries');
my $dropper_pid = $dropper->query_safe('SELECT pg_backend_pid()');
$dropper->query_until(qr/sent/, "\\echo sent\nDROP EXTENSION s2s_tracking;\n");
ok($node->wait_for("SELECT count(*) > 0 FROM pg_locks WHERE pid = $dropper_pid AND NOT granted AND locktype = 'object' AND classid = 'pg_extension'::regclass AND objid = $extoid"),
	'DROP EXTENSION waits for the extension\'s lock, which the worker\'s transaction shares')
  or diag($node->sql("SELECT string_agg(locktype || ' ' || coalesce(relation::regclass::text, classid::regclass::text || ' ' || objid) || ' ' || mode || ' ' || granted, '; ') FROM pg_locks WHERE pid = $dropper_pid"));
is($node->sql("SELECT count(*) FROM pg_locks WHERE pid = $dropper_pid AND granted AND locktype = 'relation' AND relation IN ($ours)"),
	'0', 'and holds none of the extension\'s relations meanwhile');
$holder->query_safe('COMMIT');
ok($node->wait_for("SELECT count(*) = 0 FROM pg_extension WHERE extname = 's2s_tracking'"),
	'once the worker\'s transaction ends, DROP EXTENSION goes through');
$dropper->quit;
$node->sql('CREATE EXTENSION s2s_tracking');
setup();

# 4b. ALTER EXTENSION UPDATE's order (seen in CI, TAP 058: "deadlock detected"): the
#     updates' guard locks s2s.deliveries first, then their statements lock the other
#     tables. Every worker transaction takes s2s.deliveries first too, so a worker that
#     waits for it holds none of the others, and the update's next locks do not wait for
#     the worker.
#     (An update invalidates the worker's plans: the claim is then parsed again, which
#     locks its tables in the order the statement names them, s2s.endpoints first.)
#     The worker is woken to claim (its poll, which looks at s2s.deliveries first, is
#     put off).
$node->set_conf('s2s_tracking.poll_interval', '10min');
sleep(1);
$log_from = -s $node->logfile;
$holder->query_safe('ALTER TABLE s2s.endpoints SET (fillfactor = 100)');
$holder->query_safe('BEGIN');
$holder->query_safe('LOCK TABLE s2s.deliveries IN ACCESS EXCLUSIVE MODE');
$node->sql('SELECT s2s.wake()');
ok($node->wait_for("SELECT count(*) > 0 FROM pg_locks WHERE pid = $wpid AND NOT granted AND relation = 's2s.deliveries'::regclass"),
	'a worker transaction waits for s2s.deliveries, locked as an update\'s guard does');
is($node->sql("SELECT count(*) FROM pg_locks WHERE pid = $wpid AND granted AND locktype = 'relation' AND relation IN ($ours)"),
	'0', 'holding none of the extension\'s relations');
$holder->query_safe("SET lock_timeout = '20s'");
$holder->query_safe(<<'SQL');
DO $$
DECLARE r regclass;
BEGIN
  FOR r IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname IN ('s2s', 's2s_private') AND c.relkind IN ('r', 'p') ORDER BY c.relname DESC
  LOOP
    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', r);
  END LOOP;
END $$
SQL
$holder->query_safe('COMMIT');
$holder->query_safe('RESET lock_timeout');
$log = substr(slurp_file($node->logfile), $log_from);
unlike($log, qr/deadlock detected/, 'then every other table of the extension, without a deadlock');
$node->set_conf('s2s_tracking.poll_interval', '1s');

# 5. A DROP that only waits does not stop the worker: any role that can connect can queue
#    one (the ownership check comes after the lock) behind a session holding the
#    extension's lock in share mode (pg_get_object_address), for as long as that session
#    lasts. The worker goes on without the lock meanwhile.
$node->sql('CREATE ROLE mallory LOGIN');
$holder->query_safe('BEGIN');
$holder->query_safe("SELECT pg_get_object_address('extension', '{s2s_tracking}', '{}')");
my $mallory = $node->background_psql('postgres', timeout => 120, on_error_stop => 0);
my $mallory_pid = $mallory->query_safe('SELECT pg_backend_pid()');
$mallory->query_safe('SET ROLE mallory');
$mallory->query_until(qr/sent/, "\\echo sent\nDROP EXTENSION s2s_tracking;\n");
$extoid = $node->sql("SELECT oid FROM pg_extension WHERE extname = 's2s_tracking'");
ok($node->wait_for("SELECT count(*) > 0 FROM pg_locks WHERE pid = $mallory_pid AND NOT granted AND locktype = 'object' AND objid = $extoid"),
	'a DROP EXTENSION by another role waits behind a session sharing the extension\'s lock');
$node->enqueue_conversions('aff', 20, 60);
ok($node->wait_for("SELECT count(*) = 20 FROM s2s.deliveries WHERE status = 'sent'"),
	'meanwhile the worker delivers');
$holder->query_safe('COMMIT');
$holder->quit;
$mallory->quit;
is($node->sql("SELECT count(*) FROM pg_extension WHERE extname = 's2s_tracking'"), '1',
	'and the DROP, once it had the lock, failed its ownership check');

# 5b. Another role can even hold the extension's lock outright (ALTER FUNCTION ... DEPENDS
#     ON EXTENSION checks ownership of the function only): the worker does not wait for it.
#     (Logged in as that role: a superuser's session under SET ROLE is a superuser's.)
$mallory = $node->background_psql('postgres', timeout => 120, extra_params => ['-U', 'mallory']);
$mallory_pid = $mallory->query_safe('SELECT pg_backend_pid()');
$mallory->query_safe('BEGIN');
$mallory->query_safe("CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'SELECT 1'");
$mallory->query_safe('ALTER FUNCTION pg_temp.f() DEPENDS ON EXTENSION s2s_tracking');
is($node->sql("SELECT count(*) FROM pg_locks WHERE pid = $mallory_pid AND granted AND locktype = 'object' AND objid = $extoid AND mode = 'AccessExclusiveLock'"),
	'1', 'another role holds the extension\'s lock in AccessExclusiveLock');
$node->enqueue_conversions('aff', 20, 80);
ok($node->wait_for("SELECT count(*) = 40 FROM s2s.deliveries WHERE status = 'sent'"),
	'meanwhile the worker delivers');
$mallory->query_safe('ROLLBACK');
$mallory->quit;

# 6. DROP EXTENSION in the middle of a drain, five times: each succeeds at the first try.
#    (The DROP's deadlock_timeout is short, so that were there a cycle, the DROP would be
#    the one to find it and fail.)
my $from = 100;
my $dropped_at_once = 0;
for my $cycle (1 .. 5)
{
	$node->enqueue_conversions('aff', 3000, $from);
	$from += 3000;
	$node->wait_for("SELECT count(*) >= 100 FROM s2s.deliveries WHERE status = 'sent'")
	  or diag("cycle $cycle: the drain did not start");
	my ($rc, $out, $err) = $node->psql('postgres',
		"SET deadlock_timeout = '20ms'; SET lock_timeout = '60s'; DROP EXTENSION s2s_tracking");
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
	'the worker logged no error for any of the DROPs (the extension gone is not one)');

$node->stop;
$r->stop;
done_testing();
