# s2s_tracking.http_thread: the worker's HTTP client on a thread of its own. What the
# reruns of 010, 013 and 050 with the thread (078-080) cannot show: the thread is there
# only when the setting says so, and the setting changes only with a restart; it blocks
# every signal, so PostgreSQL's handlers (and the latch's SIGURG) stay with the main
# thread; and when the postmaster dies with requests in flight, the worker still leaves
# (its exit stops and joins the thread), and nothing is lost.
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
my $node = S2S::Node->create('thread',
	conf => { 's2s_tracking.http_thread' => 'on' });
$node->add_endpoint('aff', 'affilae', $r->url . '/aff');

# The blocked-signal mask (SigBlk) of a process's main thread.
sub main_thread_mask
{
	my $pid = shift;
	my $status = eval { slurp_file("/proc/$pid/status") } // '';
	return $status =~ /^SigBlk:\s*([0-9a-f]+)/m ? $1 : 'none';
}

# The blocked-signal mask (SigBlk) of one thread of a process.
sub thread_mask
{
	my ($pid, $tid) = @_;
	my $status = eval { slurp_file("/proc/$pid/task/$tid/status") } // '';
	return $status =~ /^SigBlk:\s*([0-9a-f]+)/m ? hex($1) : 0;
}

# 1. With the setting on, the worker has a second thread, and it blocks every signal
# PostgreSQL handles. SIGURG is the one that matters most from PostgreSQL 16 on: the latch
# waits for it on a signalfd, and a thread that did not block it could take it, and the
# wake-up with it (on 15 its handler writes to the latch's pipe, from any thread).
is($node->sql('SHOW s2s_tracking.http_thread'), 'on', 'http_thread is on');
$node->enqueue_conversions('aff', 300);
$node->poll("SELECT count(*) = 300 FROM s2s.deliveries WHERE status = 'sent'",
	'300 deliveries sent through the thread');
my $n = $r->received_ids;
is(scalar(grep { $_ == 1 } values %$n), 300, 'the receiver got each of the 300 once');
my $pid = $node->worker_pid;
my @http = $node->worker_http_threads;
is(scalar(@http), 1, 'the worker has one HTTP thread (named s2s_http)');
my @masks = map { thread_mask($pid, $_) } @http;
my %signo = (HUP => 1, INT => 2, QUIT => 3, USR1 => 10, USR2 => 12, PIPE => 13,
	ALRM => 14, TERM => 15, CHLD => 17, URG => 23);
my @open = grep { my $s = $signo{$_}; grep { !($_ & (1 << ($s - 1))) } @masks } sort keys %signo;
ok(@masks == 1 && !@open, 'the HTTP thread blocks SIGHUP, SIGINT, SIGQUIT, SIGUSR1, '
	. 'SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGCHLD and SIGURG')
  or diag('open: ' . join(', ', @open));

# The latch still works: a commit wakes the worker at once. The poll interval is long,
# but the worker also looks for its extension every 2 s: a lost wake-up would wait for
# that, about 1 s on average, so the median of ten commits tells the two apart. Measured
# in the server, from each delivery's insert (created_at) to its request handed to the
# HTTP client (its attempt's started_at): the test's own psql calls, slow on a loaded
# machine, are not part of it (timed from the test, the median was 0.55 s once in CI,
# with three PostgreSQL versions tested at once on 2 cores).
$node->set_conf('s2s_tracking.poll_interval', '1h');
for my $i (1 .. 10)
{
	$node->enqueue_conversions('aff', 1, 300 + $i - 1);
	$node->wait_for("SELECT count(*) = 300 + $i FROM s2s.deliveries WHERE status = 'sent'");
}
my ($median, $each) = split(/\|/, $node->sql(
		"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY w), string_agg(round(w::numeric, 3)::text, ' ' ORDER BY id) "
		  . 'FROM (SELECT d.id, extract(epoch FROM a.started_at - d.created_at) AS w '
		  . 'FROM s2s.deliveries d JOIN s2s.attempts a ON a.delivery_id = d.id AND a.attempt = 1 '
		  . "WHERE d.conversion_id IN (SELECT 'order-' || i FROM generate_series(301, 310) AS i)) AS t"));
cmp_ok($median, '<', 0.5,
	'a commit wakes the worker at once with the thread running (median of ten, insert to request)')
  or diag("insert to request, s: $each");
note("insert to request, s: $each");
my $main_mask_on = main_thread_mask($node->worker_pid);

# 2. The setting takes effect at a server start only: a reload leaves the worker as it is.
$node->sql('ALTER SYSTEM SET s2s_tracking.http_thread = off');
$node->reload;
ok($node->wait_for(q{SELECT count(*) = 1 FROM pg_file_settings WHERE name = 's2s_tracking.http_thread' AND setting = 'off'}),
	'the new value is in the configuration');
sleep(0.5);
is($node->sql('SHOW s2s_tracking.http_thread'), 'on', 'a reload does not change it');
is($node->worker_pid, $pid, 'the worker went on');
is(scalar($node->worker_http_threads), 1, 'with its thread');
# (stop, then start: pg_ctl restart reruns the binary without the ASan run's wrapper)
$node->stop;
$node->start;
$node->wait_worker;
is($node->sql('SHOW s2s_tracking.http_thread'), 'off', 'after a restart it is off');
is(scalar($node->worker_http_threads), 0, 'and the worker has no HTTP thread');
$node->enqueue_conversions('aff', 10, 400);
# (without the thread, the client blocks every signal for a moment while it runs: the
# mask is read again until it is seen at rest, a bounded number of times)
my $main_mask_off;
for (1 .. 50)
{
	$main_mask_off = main_thread_mask($node->worker_pid);
	last if $main_mask_off eq $main_mask_on;
	sleep(0.1);
}
is($main_mask_off, $main_mask_on,
	"the worker's own signal mask is the same with the thread and without");
$node->poll("SELECT count(*) = 320 FROM s2s.deliveries WHERE status = 'sent'",
	'the worker without the thread sends');
$node->sql('ALTER SYSTEM RESET s2s_tracking.http_thread');
$node->stop;
$node->start;
$node->wait_worker;
is(scalar($node->worker_http_threads), 1, 'back on after the next restart');

# 3. The postmaster dies (SIGKILL) while the thread has requests hanging. The worker
# notices, stops and joins its thread on its way out, and leaves; nothing is lost: the
# rows it had in flight are given back by the next worker and sent once.
$node->set_conf('s2s_tracking.poll_interval', '1s');
$r->reset;
$r->behave(mode => 'hang');
$node->enqueue_conversions('aff', 5, 500);
$node->poll("SELECT in_flight = 5 FROM s2s.worker_status()", 'five requests hanging');
$pid = $node->worker_pid;
my $stops_before = () = slurp_file($node->logfile) =~ /stopped its HTTP thread/g;
$node->kill9;
my $deadline = time() + 30;
sleep(0.1) while kill(0, $pid) && time() < $deadline;
ok(!kill(0, $pid), 'the worker left once the postmaster was gone');
my $stops_after = () = slurp_file($node->logfile) =~ /stopped its HTTP thread/g;
is($stops_after, $stops_before + 1, 'having stopped and joined its HTTP thread on the way out');

# the other children leave too; then the server starts again
$r->reset;
my $started = 0;
for (1 .. 30)
{
	last if $started = $node->start(fail_ok => 1);
	sleep(1);
}
ok($started, 'the server starts again');
$node->wait_worker;
$node->poll("SELECT count(*) = 325 FROM s2s.deliveries WHERE status = 'sent'",
	'the five in flight when the postmaster died are sent');
$n = $r->received_ids;
is(scalar(keys %$n), 5, 'the receiver registered the five');
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE claim_token IS NOT NULL"), '0',
	'no row left claimed');

$node->stop;
$r->stop;
done_testing();
