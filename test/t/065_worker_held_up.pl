# A worker held up longer than its requests' timeout. Its write-back waits for a lock that
# a prepared transaction holds (an administrator's LOCK, or a row an open transaction
# locked, does the same; so does a commit waiting for a synchronous standby) while a
# request it sent earlier is answered. Once the lock goes, that answer is the delivery's
# result: sent on its first attempt, exactly once. (libcurl judges its own timeout before
# it reads what waits on a socket: the answer was recorded as a timeout and the
# conversion sent again, up to max_concurrency of them per hold-up. src/http.c keeps the
# deadline itself.) A SIGTERM ends the wait: the worker leaves, a fast shutdown ends. A
# cancel between the worker's transactions does not end the worker.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use List::Util;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('held_up', conf => { 'max_prepared_transactions' => 2 });
$node->add_endpoint('fast', 'affilae', $r->url . '/fast');
# answered after 8 s, well within its 10 s, unless nobody reads the answer (the margins
# are for a loaded machine, and for AddressSanitizer)
$node->add_endpoint('slow', 'affilae', $r->url . '/slow', request_timeout => '10 s');
$r->behave(path_prefix => '/slow', delay_ms => 8000);

# Polls until the worker waits for the lock on s2s.attempts; one assertion named WHAT.
sub worker_waits_for_lock
{
	my ($what) = @_;
	$node->poll("SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
		  . " WHERE NOT l.granted AND l.relation = 's2s.attempts'::regclass"
		  . " AND a.backend_type = 's2s_tracking worker'",
		$what);
	return;
}

$node->enqueue_conversions('slow', 1);
foreach (1 .. 300)
{
	last if @{ $r->requests(path => '/slow') };
	sleep 0.01;
}
my $slow_sent = time;
is(scalar @{ $r->requests(path => '/slow') }, 1, 'the slow request reached the receiver');

# From now on any statement of the worker's that writes s2s.attempts (the write-back of a
# result, the look for expired leases) waits for this lock. The fast delivery, answered at
# once, makes a write-back.
$node->sql("BEGIN; LOCK TABLE s2s.attempts IN SHARE MODE; PREPARE TRANSACTION 'hold'");
$node->enqueue_conversions('fast', 1, 100);
worker_waits_for_lock('the worker waits for the lock');
# Held up before the slow answer came, or the worker read it in time and nothing here
# is tested.
cmp_ok(time - $slow_sent, '<', 7, 'held up before the slow answer came');
# until well past the slow request's deadline (10 s after it was sent)
sleep(List::Util::max(0, 11.5 - (time - $slow_sent)));
is($node->sql("SELECT status FROM s2s.deliveries WHERE endpoint = 'slow'"), 'sending',
	'meanwhile the slow delivery is still in flight');
$node->sql("COMMIT PREPARED 'hold'");

$node->poll("SELECT count(*) = 2 FROM s2s.deliveries WHERE status IN ('sent', 'failed')"
	  . " OR (endpoint = 'slow' AND attempts > 1)",
	'both results written back once the lock went');
is($node->sql("SELECT status || '|' || attempts || '|' || last_http_status"
	  . " FROM s2s.deliveries WHERE endpoint = 'slow'"),
	'sent|1|200', 'the slow delivery: sent on its first attempt, the 200 that came recorded');
is($node->sql("SELECT string_agg(attempt || ':' || coalesce(http_status::text, error), ' / ')"
	  . " FROM s2s.attempts a JOIN s2s.deliveries d ON d.id = a.delivery_id"
	  . " WHERE d.endpoint = 'slow'"),
	'1:200', 'one attempt recorded, with its 200');
is($node->sql("SELECT status || '|' || attempts FROM s2s.deliveries WHERE endpoint = 'fast'"),
	'sent|1', 'the fast delivery: sent once');
# a second copy would go after retry_base (100 ms here)
sleep 1;
is(scalar @{ $r->requests(path => '/slow') }, 1, 'the slow conversion reached the receiver once');

# A SIGTERM ends such a wait. The worker, held up by the lock again, leaves when it is
# terminated, and a fast shutdown does not wait for the lock either (both waited for as
# long as the lock was held: with a prepared transaction, for ever).
$node->sql("BEGIN; LOCK TABLE s2s.attempts IN SHARE MODE; PREPARE TRANSACTION 'hold2'");
$node->enqueue_conversions('fast', 1, 200);
worker_waits_for_lock('the worker waits for the lock again');
my $pid = $node->worker_pid;
$node->sql("SELECT pg_terminate_backend($pid)");
$node->poll("SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid)",
	'terminated, the worker left');
like(slurp_file($node->logfile),
	qr/s2s_tracking worker cancelled its transaction in progress to shut down/,
	'it said why it cancelled its transaction');
# The next worker sends the delivery whose result could not be written back again (a stop
# with a result held: within the at-least-once bound), and waits for the lock in its turn.
worker_waits_for_lock('the next worker waits for the lock');
{
	local $ENV{PGCTLTIMEOUT} = 30;
	my $stopped = $node->stop('fast', fail_ok => 1);
	ok($stopped, 'a fast shutdown did not wait for the lock');
	$node->stop('immediate') unless $stopped;
}
$node->start;
$node->sql("COMMIT PREPARED 'hold2'");
$node->poll("SELECT status = 'sent' FROM s2s.deliveries WHERE dedupe_key = 'order-201'",
	'once the lock went, the delivery was sent and written back');

# pg_cancel_backend() between two of the worker's transactions has nothing to cancel: the
# worker stays (PostgreSQL's own handler left the cancel pending, and the loop's next
# check ended the worker with it).
$node->wait_worker;
$pid = $node->worker_pid;
$node->sql("SELECT pg_cancel_backend($pid)");
$node->enqueue_conversions('fast', 1, 300);
$node->poll("SELECT status = 'sent' FROM s2s.deliveries WHERE dedupe_key = 'order-301'",
	'after a cancel, the worker goes on delivering');
is($node->worker_pid, $pid, 'the same worker');

$node->stop;
$r->stop;
done_testing();
