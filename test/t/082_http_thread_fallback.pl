# s2s_tracking.http_thread when the thread cannot be started (a process limit, say):
# s2s_http_driver_start(..., own_thread = true) fails, the worker logs a WARNING and
# drives its HTTP client itself, and still delivers. Nothing in a normal run makes
# pthread_create fail, so this test builds a small LD_PRELOAD library (a "shim") whose
# pthread_create returns EAGAIN without starting a thread when S2S_SHIM_FAIL_THREADS=1 is
# in the server's environment, and passes the call on to the real one otherwise. It notes
# every call (refused or passed, with the calling process's pid) in a file, so the test
# knows which processes called it and how often.
#
# 1. Control: the shim loaded but disarmed. The worker's pthread_create goes through it
#    (it is in the path, under ASan too), and the worker has its s2s_http thread as
#    without it: what changes in 2 is the shim's refusal, nothing else.
# 2. Armed: one WARNING from the worker, no "runs its HTTP client on a thread of its
#    own", no s2s_http thread (no second thread at all), and deliveries to the receiver
#    on 127.0.0.1 are received once each and recorded as sent.
# 3. Armed, the worker stopped and started again by the launcher (same server): one more
#    WARNING, from the new worker; one per worker start.
# 4. Disarmed, s2s_tracking.database = '*': probes of a database without the extension
#    leave before they start an HTTP client, and so call no pthread_create.
#
# PostgreSQL's own processes and psql/pg_ctl start no threads; libcurl starts some only to
# resolve host names, and the receiver is an IP literal: the shim's file says so, since
# it records every call in the server's processes.
use strict;
use warnings;
use Config;
use Errno qw(EAGAIN);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use S2S::Node;
use S2S::Receiver;

# A rerun of the suite with S2S_HTTP_THREAD=on would make S2S::Node's stop check that no
# worker went without the thread, which is this test's point: the setting is given below.
delete $ENV{S2S_HTTP_THREAD};

# ---- the shim ----

my $dir = PostgreSQL::Test::Utils::tempdir('shim');
my $shim = "$dir/s2s_fail_pthread_create.so";
my $shim_log = "$dir/pthread_create.log";

# A C compiler: cc or gcc on PATH, else the one perl was built with. None (tests run
# against an installed build on a machine without a compiler): nothing to test with.
my $cc;
for my $candidate ('cc', 'gcc', $Config{cc})
{
	next unless defined $candidate && $candidate ne '';
	my $found = $candidate =~ m{/}
	  ? (-x $candidate ? $candidate : undef)
	  : (grep { -x "$_/$candidate" } split(/:/, $ENV{PATH} // ''))[0];
	if (defined $found)
	{
		$cc = $candidate =~ m{/} ? $candidate : "$found/$candidate";
		last;
	}
}
plan skip_all => 'no C compiler (cc, gcc or $Config{cc}) to build the LD_PRELOAD shim with'
  unless defined $cc;

open(my $src, '>', "$dir/shim.c") or die "cannot write $dir/shim.c: $!";
print $src <<'C';
/*
 * Written by test/t/082_http_thread_fallback.pl: pthread_create that fails with EAGAIN,
 * starting no thread, in a process whose environment had S2S_SHIM_FAIL_THREADS=1 when it
 * was started; the real one otherwise. Each call is noted as "refused PID" or
 * "passed PID" in the file S2S_SHIM_LOG names (one write with O_APPEND: whole lines).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*create_fn) (pthread_t *, const pthread_attr_t *, void *(*) (void *), void *);

static int armed;
static char log_path[4096];

/* At exec: PostgreSQL moves its environment around later; its children inherit these. */
__attribute__((constructor))
static void
shim_init(void)
{
	const char *a = getenv("S2S_SHIM_FAIL_THREADS");
	const char *l = getenv("S2S_SHIM_LOG");

	armed = a != NULL && strcmp(a, "1") == 0;
	if (l != NULL && strlen(l) < sizeof(log_path))
		strcpy(log_path, l);
}

static void
note(const char *what)
{
	char		line[64];
	int			n;
	int			fd;

	if (log_path[0] == '\0')
		return;
	n = snprintf(line, sizeof(line), "%s %ld\n", what, (long) getpid());
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (write(fd, line, n) != n)
		(void) 0;
	close(fd);
}

int
pthread_create(pthread_t *thread, const pthread_attr_t *attr,
			   void *(*start) (void *), void *arg)
{
	static create_fn real;

	if (armed)
	{
		note("refused");
		return EAGAIN;
	}
	if (real == NULL)
		real = (create_fn) dlsym(RTLD_NEXT, "pthread_create");
	if (real == NULL)
	{
		note("unresolved");
		return ENOSYS;
	}
	note("passed");
	return real(thread, attr, start, arg);
}
C
close($src);

# -ldl for glibc before 2.34 (dlsym); later ones have it in libc and still accept it.
my ($out, $err) = ('', '');
my $built = IPC::Run::run([ $cc, '-shared', '-fPIC', '-O2', '-o', $shim, "$dir/shim.c", '-ldl' ],
	'>', \$out, '2>', \$err)
  || IPC::Run::run([ $cc, '-shared', '-fPIC', '-O2', '-o', $shim, "$dir/shim.c" ],
	'>', \$out, '2>', \$err);
ok($built && -f $shim, "the shim is built with $cc") or diag($err);
chmod(0755, $dir, $shim);

# The lines of the shim's file, in order ([] when nothing called it).
sub shim_calls
{
	return [] unless -e $shim_log;
	return [ split(/\n/, slurp_file($shim_log)) ];
}

# ---- the node ----

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('fallback',
	conf => { 's2s_tracking.http_thread' => 'on' });
$node->add_endpoint('aff', 'affilae', $r->url . '/aff');

# Starts the node with the shim preloaded, armed or not, and waits for its worker; returns
# the log's size before the start (what the tests below read from) and the worker's pid.
# LD_PRELOAD is appended to, not replaced: the ASan run's wrapper ("make asan",
# test/asan/run) puts the sanitizer runtime first itself, and one that a caller had set
# stays. Under ASan its pthread_create interceptor is the one the extension calls; it
# calls the next definition (dlsym RTLD_NEXT), which is the shim's.
sub start_with_shim
{
	my ($armed) = @_;
	unlink($shim_log);
	my $from = -s $node->logfile;
	{
		local $ENV{LD_PRELOAD} =
		  ($ENV{LD_PRELOAD} // '') ne '' ? "$ENV{LD_PRELOAD}:$shim" : $shim;
		local $ENV{S2S_SHIM_LOG} = $shim_log;
		local $ENV{S2S_SHIM_FAIL_THREADS} = $armed ? '1' : '0';
		$node->start;
	}
	return ($from, $node->wait_worker);
}

sub log_from
{
	my ($from) = @_;
	return substr(slurp_file($node->logfile), $from);
}

# The pids of the worker's fallback WARNINGs in LOG (log_line_prefix '%m [%p] ...').
sub fallback_warnings
{
	my ($log) = @_;
	return [ $log =~ /\[(\d+)\] WARNING:  s2s_tracking worker cannot run its HTTP client on a thread of its own: /g ];
}

# The threads of a process, whatever their names.
sub task_count
{
	my ($pid) = @_;
	opendir(my $dh, "/proc/$pid/task") or return -1;
	my $n = grep { /^\d+$/ } readdir($dh);
	closedir($dh);
	return $n;
}

# Delivers N conversions (ids FROM+1 .. FROM+N) and checks that each was received once
# and recorded as sent at its first attempt, with the receiver's 200, in both tables.
sub deliver
{
	my ($what, $n, $from) = @_;
	$r->reset;
	$node->enqueue_conversions('aff', $n, $from);
	my $last = $from + $n;
	my $mine = "conversion_id IN (SELECT 'order-' || i FROM generate_series($from + 1, $last) AS i)";
	$node->poll("SELECT count(*) = $n FROM s2s.deliveries WHERE $mine AND status = 'sent'",
		"$what: the $n deliveries are sent");
	my $got = $r->received_ids;
	my @expected = map { "order-$_" } ($from + 1 .. $last);
	is_deeply([ sort keys %$got ], [ sort @expected ], "$what: the receiver got each of them")
	  or diag('received: ' . join(' ', sort keys %$got));
	is(scalar(grep { $_ != 1 } values %$got), 0, "$what: once each");
	is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE $mine AND status = 'sent' "
			. "AND attempts = 1 AND last_http_status = 200 AND sent_at IS NOT NULL "
			. "AND claim_token IS NULL"),
		$n, "$what: each recorded as sent at its first attempt, with HTTP 200");
	is($node->sql("SELECT count(*) FILTER (WHERE a.http_status = 200 AND a.error IS NULL) || '/' || count(*) "
			. "FROM s2s.attempts a JOIN s2s.deliveries d ON d.id = a.delivery_id WHERE $mine"),
		"$n/$n", "$what: one attempt each in s2s.attempts, answered 200");
	return;
}

my $eagain = do { local $! = EAGAIN; "$!" };

# 1. Control: the shim loaded, disarmed. It must be in the worker's path (a shim that
# the extension's pthread_create bypasses would make 2 pass for the wrong reason, or
# fail without saying why), and change nothing by itself.
$node->stop;
my ($from, $pid) = start_with_shim(0);
is_deeply(shim_calls(), ["passed $pid"],
	"control: the worker's pthread_create went through the shim, the one call in the server's processes")
  or diag('shim calls: ' . join(', ', @{ shim_calls() }));
is(scalar($node->worker_http_threads), 1,
	'control: with the shim disarmed the worker has its s2s_http thread');
is(task_count($pid), 2, 'control: two threads in the worker, its own and s2s_http');
my $log = log_from($from);
like($log, qr/\[$pid\] LOG:  s2s_tracking worker runs its HTTP client on a thread of its own/,
	'control: the worker says it runs its HTTP client on a thread of its own');
is_deeply(fallback_warnings($log), [], 'control: and gives no fallback WARNING');
deliver('control', 20, 0);
$node->stop;
like(log_from($from), qr/\[$pid\] LOG:  s2s_tracking worker stopped its HTTP thread/,
	'control: at the stop the worker stopped and joined its thread');

# 2. Armed: the thread cannot start; the worker says so once, and delivers without it.
($from, $pid) = start_with_shim(1);
is($node->sql('SHOW s2s_tracking.http_thread'), 'on', 'armed: http_thread is on');
$log = log_from($from);
is_deeply(fallback_warnings($log), [$pid], 'armed: one fallback WARNING, from the worker')
  or diag("worker $pid; log:\n$log");
like($log,
	qr/\[$pid\] WARNING:  s2s_tracking worker cannot run its HTTP client on a thread of its own: could not start the HTTP thread: \Q$eagain\E\n[^\n]*\[$pid\] DETAIL:  The worker drives its HTTP client itself instead, as with s2s_tracking.http_thread off\./,
	"armed: it names pthread_create's error ($eagain) and says the worker goes on without the thread");
unlike($log, qr/s2s_tracking worker runs its HTTP client on a thread of its own/,
	'armed: the log does not say the worker runs its HTTP client on a thread of its own');
unlike($log, qr/cannot start its HTTP client/, 'armed: the client itself did start');
is_deeply(shim_calls(), ["refused $pid"],
	"armed: the shim refused the worker's one pthread_create, and nothing else called it")
  or diag('shim calls: ' . join(', ', @{ shim_calls() }));
is(scalar($node->worker_http_threads), 0, 'armed: the worker has no s2s_http thread');
is(task_count($pid), 1, 'armed: nor any second thread');
deliver('armed', 50, 20);
is(task_count($node->worker_pid), 1, 'armed: still one thread after delivering');
is_deeply(shim_calls(), ["refused $pid"],
	'armed: delivering to 127.0.0.1 called pthread_create no more (no resolver thread)')
  or diag('shim calls: ' . join(', ', @{ shim_calls() }));

# 3. The worker stopped (SIGTERM) and started again by the launcher, in the same server:
# the new worker tries again, fails again, and says so once more.
my $pid1 = $pid;
$node->sql("SELECT pg_terminate_backend($pid1)");
ok($node->wait_for("SELECT pid IS NOT NULL AND pid <> $pid1 AND last_loop_at > started_at FROM s2s.worker_status()"),
	'armed: the launcher started a new worker');
my $pid2 = $node->worker_pid;
$log = log_from($from);
is_deeply(fallback_warnings($log), [ $pid1, $pid2 ],
	'armed: one fallback WARNING per worker start, from each worker')
  or diag("workers $pid1, $pid2; log:\n$log");
is_deeply(shim_calls(), [ "refused $pid1", "refused $pid2" ],
	'armed: one refused pthread_create per worker start')
  or diag('shim calls: ' . join(', ', @{ shim_calls() }));
unlike($log, qr/s2s_tracking worker (runs its HTTP client on a thread of its own|stopped its HTTP thread)/,
	'armed: no worker claimed a thread, or stopping one');
is(scalar($node->worker_http_threads), 0, 'armed: the new worker has no s2s_http thread either');
deliver('armed, second worker', 10, 70);
$node->stop;
is_deeply(fallback_warnings(log_from($from)), [ $pid1, $pid2 ],
	'armed: two worker starts, two WARNINGs, up to the stop');

# 4. s2s_tracking.database = '*': the launcher probes every database without a worker
# every 2 s. A probe of one without the extension leaves before it starts an HTTP client:
# no pthread_create (before, each probe started the thread only to stop it, and where
# threads cannot be created logged the fallback WARNING every 2 s per such database).
# shop_x's own sessions log at DEBUG1 (ALTER DATABASE ... SET applies to a worker's
# connection too), so that the log shows each probe's leaving without the rest of the
# server's DEBUG1.
$node->append_conf('postgresql.conf', "s2s_tracking.database = '*'\n");
($from, $pid) = start_with_shim(0);
$node->sql('CREATE DATABASE shop_x');
$node->sql("ALTER DATABASE shop_x SET log_min_messages = 'debug1'");
my %probes;
my $probe_deadline = time() + 30;
while (time() < $probe_deadline && keys %probes < 3)
{
	%probes = map { $_ => 1 } log_from($from) =~
	  /\[(\d+)\] DEBUG:  s2s_tracking worker for database "shop_x" leaves: extension s2s_tracking is not installed there/g;
	sleep(0.5);
}
cmp_ok(scalar(keys %probes), '>=', 3,
	'"*": probes of shop_x, which lacks the extension, came and left (' . scalar(keys %probes) . ' seen)');
is_deeply(shim_calls(), ["passed $pid"],
	'"*": the one pthread_create in the server is the worker of postgres (which has the extension); none from a probe')
  or diag("worker $pid, probes " . join(' ', sort keys %probes) . '; shim calls: ' . join(', ', @{ shim_calls() }));
is($node->sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker'"), '1',
	'"*": one worker stays, that of postgres');
$node->stop;

$r->stop;
done_testing();
