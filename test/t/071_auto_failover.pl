# Failover driven by a real HA manager: pg_auto_failover (Debian's postgresql-15-auto-failover,
# issue 13, item 2). A monitor and two nodes, all on loopback, each run by `pg_autoctl run`;
# the nodes preload s2s_tracking with the same settings (added to the postgresql.conf that
# pg_autoctl made, before its first start: the secondary's copy comes with the base backup).
# pg_auto_failover runs them with synchronous replication (two nodes, replication quorum).
#
# 2,000 orders, then a checkout that keeps committing, drained to a slow receiver; mid-drain
# `pg_autoctl perform failover`. Checked, as in 070: the secondary sends nothing while it is
# a standby (no worker in recovery; its worker starts after the promotion); every order
# acknowledged to the checkout is on the new primary; every order there reaches the receiver,
# no other; duplicates at most max_concurrency (070 states the bound); nothing burned (every
# delivery sent with exactly one counted attempt); the old primary comes back as a standby
# and sends nothing. Prints the figures doc/operations.md shows.
#
# Two of those checks (acknowledged orders on node2, the bound on duplicates) rest on node1
# waiting for its synchronous standby to the end: when node1's log shows pg_auto_failover
# emptying synchronous_standby_names while node1 was the primary (wait_primary, its choice
# with one standby it judges unhealthy), they are skipped with that reason; otherwise a
# failure prints the monitor's events, both nodes' pg_autoctl transitions and node1's
# replication settings.
#
# pg_autoctl and the monitor's extension (pgautofailover) come from the Debian package, which
# installs into the system PostgreSQL. The nodes run the PostgreSQL that pg_config names
# (where s2s_tracking was installed); the monitor runs whichever PostgreSQL of the same major
# version has pgautofailover (the one pg_config names, else the system's). Against a
# relocated copy without it, and without the system's, the test is skipped with the reason;
# against the system install (CI) it never skips.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use File::Path qw(make_path);
use IPC::Run;
use Time::Local qw(timegm);
use POSIX qw(WNOHANG);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use S2S::Node;
use S2S::Receiver;
use S2S::Failover;

my $max_concurrency = 16;
my $first_orders = 2000;
my $more_orders = 2000;
my $delay_ms = 100;
my $WAIT = $ENV{S2S_TEST_WAIT} // 180;

# --- Where things are -----------------------------------------------------------------
sub pg_config
{
	my $what = shift;
	my $v = `pg_config --$what`;
	chomp $v;
	return $v;
}
my $bindir = pg_config('bindir');
my $pkglibdir = pg_config('pkglibdir');
my $sharedir = pg_config('sharedir');
my ($major) = pg_config('version') =~ /PostgreSQL (\d+)/;
my $system_bindir = "/usr/lib/postgresql/$major/bin";
my $relocated = $bindir ne $system_bindir;

my ($autoctl) = grep { -x $_ } ("$bindir/pg_autoctl", map { "$_/pg_autoctl" } split /:/, $ENV{PATH});
my $monitor_bindir;
if (-f "$pkglibdir/pgautofailover.so" && -f "$sharedir/extension/pgautofailover.control")
{
	$monitor_bindir = $bindir;
}
elsif (-f "/usr/lib/postgresql/$major/lib/pgautofailover.so"
	&& -f "/usr/share/postgresql/$major/extension/pgautofailover.control"
	&& -x "$system_bindir/pg_ctl")
{
	$monitor_bindir = $system_bindir;
}
if (!$autoctl || !$monitor_bindir)
{
	my $why = !$autoctl ? 'pg_autoctl not found' : "extension pgautofailover not installed for PostgreSQL $major";
	plan skip_all => "$why (package postgresql-$major-auto-failover); PostgreSQL at $bindir is a relocated copy"
	  if $relocated;
	fail("$why: install postgresql-$major-auto-failover (tools/common.sh lists it)");
	done_testing();
	exit 1;
}
note("pg_autoctl: $autoctl; nodes: $bindir; monitor: $monitor_bindir");

# --- pg_autoctl, confined to this test's directory ------------------------------------------
my $base = PostgreSQL::Test::Utils::tempdir('autofailover');
my %env = (
	HOME => $base,
	XDG_CONFIG_HOME => "$base/config",
	XDG_DATA_HOME => "$base/data",
	XDG_RUNTIME_DIR => "$base/run",
	PGHOST => '127.0.0.1',
	PG_CONFIG => "$bindir/pg_config",
);
make_path("$base/run", "$base/config", "$base/data");
my %running;    # pgdata => pid of its `pg_autoctl run`

sub autoctl
{
	my ($timeout, @args) = @_;
	local %ENV = (%ENV, %env);
	my $log = "$base/autoctl.log";
	note("pg_autoctl @args");
	my $rc = system("timeout $timeout " . join(' ', map { "'$_'" } $autoctl, @args) . " >>'$log' 2>&1");
	return $rc == 0;
}

sub autoctl_run
{
	my ($pgdata) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		%ENV = (%ENV, %env);
		open(STDOUT, '>>', "$pgdata.run.log");
		open(STDERR, '>&', \*STDOUT);
		setpgrp(0, 0);
		exec($autoctl, 'run', '--pgdata', $pgdata) or POSIX::_exit(127);
	}
	$running{$pgdata} = $pid;
	return $pid;
}

# Stops a node's pg_autoctl (which stops its PostgreSQL), then makes sure of both.
sub autoctl_stop
{
	my ($pgdata) = @_;
	my $pid = delete $running{$pgdata} or return;
	autoctl(60, 'stop', '--pgdata', $pgdata);
	my $deadline = time() + 60;
	while (time() < $deadline && waitpid($pid, WNOHANG) != $pid) { sleep(0.1); }
	if (waitpid($pid, WNOHANG) == 0)
	{
		kill 'KILL', -$pid;
		waitpid($pid, 0);
	}
	for my $bin ($bindir, $monitor_bindir)
	{
		if (-f "$pgdata/postmaster.pid")
		{
			system("'$bin/pg_ctl' -D '$pgdata' -m immediate stop >/dev/null 2>&1");
		}
	}
}

END
{
	local $?;
	autoctl_stop($_) for keys %running;
}

sub psql_at
{
	my ($port, $db, $sql) = @_;
	my ($stdout, $stderr);
	local %ENV = (%ENV, %env);
	my $ok = IPC::Run::run([ "$bindir/psql", '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1',
			'-h', '127.0.0.1', '-p', $port, '-d', $db, '-c', $sql ],
		'>', \$stdout, '2>', \$stderr, IPC::Run::timeout(60));
	chomp $stdout if defined $stdout;
	return $ok ? $stdout : undef;
}

# Polls until the query answers EXPECTED (default 't'); bounded by $WAIT seconds.
sub poll_at
{
	my ($port, $db, $sql, $expected, $timeout) = @_;
	$expected //= 't';
	my $deadline = time() + ($timeout // $WAIT);
	while (time() < $deadline)
	{
		my $v = eval { psql_at($port, $db, $sql) };
		return 1 if defined $v && $v eq $expected;
		sleep(0.2);
	}
	return 0;
}

# --- The monitor -------------------------------------------------------------------------
my ($mport, $p1, $p2) = map { PostgreSQL::Test::Cluster::get_free_port() } 1 .. 3;
my $monitor = "$base/monitor";
ok(autoctl(180, 'create', 'monitor', '--pgctl', "$monitor_bindir/pg_ctl", '--pgdata', $monitor,
		'--pgport', $mport, '--hostname', '127.0.0.1', '--auth', 'trust', '--no-ssl'),
	'pg_autoctl create monitor');
autoctl(30, 'config', 'set', '--pgdata', $monitor, 'postgresql.listen_addresses', '127.0.0.1');
# pg_autoctl sizes memory for a dedicated machine: this one is shared. And on a loaded
# machine a pg_autoctl can stall for half a minute (CI, on 18): the monitor judges a node
# unhealthy after 20 s without news by default, and with one standby that ends
# synchronous replication (wait_primary). 120 s keeps a stall from doing so here; the
# failover itself is asked for, not detected, so nothing the test checks waits on it.
PostgreSQL::Test::Utils::append_to_file("$monitor/postgresql.conf",
	"\nshared_buffers = '32MB'\nwork_mem = '4MB'\nmaintenance_work_mem = '64MB'\n"
	  . "pgautofailover.node_considered_unhealthy_timeout = '120s'\n");
autoctl_run($monitor);
my $monitor_uri = "postgres://autoctl_node\@127.0.0.1:$mport/pg_auto_failover?sslmode=disable";
ok(poll_at($mport, 'pg_auto_failover', 'SELECT true FROM pgautofailover.formation LIMIT 1', 't', 120),
	'the monitor runs');
note('monitor: pgautofailover.node_considered_unhealthy_timeout = '
	  . (psql_at($mport, 'pg_auto_failover', 'SHOW pgautofailover.node_considered_unhealthy_timeout') // '?'));

# --- Node 1 (the primary) ---------------------------------------------------------------
my $r = S2S::Receiver->start;
$r->behave(delay_ms => $delay_ms);

my %conf = (
	S2S::Node::default_conf(),
	'shared_preload_libraries' => "'pg_stat_statements,s2s_tracking'",
	's2s_tracking.database' => "'shop'",
	's2s_tracking.max_concurrency' => $max_concurrency,
	's2s_tracking.endpoint_concurrency' => $max_concurrency,
	'shared_buffers' => "'32MB'",
	'work_mem' => "'4MB'",
	'maintenance_work_mem' => "'64MB'",
	'wal_keep_size' => "'256MB'",
	'log_line_prefix' => "'%m [%p] '",
	'log_timezone' => "'UTC'",
);
my $conf_text = "\n# s2s_tracking test settings\n" . join('', map { "$_ = $conf{$_}\n" } sort keys %conf);

# Times (epoch seconds) of the lines of a node's server log matching RE. Each node logs
# outside its data directory: pg_basebackup and pg_rewind copy a data directory's log/ too.
sub log_times
{
	my ($dir, $re) = @_;
	my @t;
	for my $f (sort glob("$dir/*.log"))
	{
		for (split /\n/, slurp_file($f))
		{
			next unless /$re/;
			next unless /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d(?:\.\d+)?) UTC /;
			push @t, timegm(int($6), $5, $4, $3, $2 - 1, $1) + ($6 - int($6));
		}
	}
	return sort { $a <=> $b } @t;
}

# The s2s_tracking worker of a node's postmaster: (pid, process title), or ().
sub node_worker
{
	my ($pgdata) = @_;
	open(my $fh, '<', "$pgdata/postmaster.pid") or return ();
	my $pm = <$fh>;
	close $fh;
	return () unless defined $pm && $pm =~ /^(\d+)/;
	$pm = $1;
	for my $stat (glob('/proc/[0-9]*/stat'))
	{
		open(my $sf, '<', $stat) or next;
		my $line = <$sf> // '';
		close $sf;
		next unless $line =~ /^(\d+) \(.*\) \S+ (\d+) / && $2 == $pm;
		my $pid = $1;
		open(my $cf, '<', "/proc/$pid/cmdline") or next;
		my $title = do { local $/; <$cf> } // '';
		close $cf;
		$title =~ s/\0/ /g;
		return ($pid, $title) if $title =~ /s2s_tracking worker/;
	}
	return ();
}

# The status line of postmaster.pid ('ready', 'starting', 'stopping', 'standby'), or ''.
sub postmaster_status
{
	my ($pgdata) = @_;
	open(my $fh, '<', "$pgdata/postmaster.pid") or return '';
	my @l = <$fh>;
	close $fh;
	my $st = $l[7] // '';
	$st =~ s/\s+$//;
	return $st;
}

sub slurp_all
{
	my ($dir) = @_;
	return join('', map { slurp_file($_) } sort glob("$dir/*.log"));
}

sub create_node
{
	my ($name, $port) = @_;
	my $pgdata = "$base/$name";
	my $ok = autoctl(300, 'create', 'postgres', '--pgctl', "$bindir/pg_ctl", '--pgdata', $pgdata,
		'--pgport', $port, '--listen', '127.0.0.1', '--hostname', '127.0.0.1', '--name', $name,
		'--dbname', 'shop', '--auth', 'trust', '--no-ssl', '--monitor', $monitor_uri);
	return ($ok, $pgdata);
}

my ($ok1, $n1) = create_node('node1', $p1);
ok($ok1, 'pg_autoctl create postgres: node1');
PostgreSQL::Test::Utils::append_to_file("$n1/postgresql.conf",
	$conf_text . "log_directory = '$base/node1.pglog'\n");
autoctl_run($n1);
ok(poll_at($p1, 'shop', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker'"),
	'node1 runs with s2s_tracking preloaded');
psql_at($p1, 'shop', 'CREATE EXTENSION s2s_tracking');
psql_at($p1, 'shop', sprintf(
		"INSERT INTO s2s.endpoints (name, kind, url, secret) VALUES ('aff', 'affilae', '%s/aff', '0123456789abcdef01234567-89abcdef0123456789abcdef')",
		$r->url));
defined(psql_at($p1, 'shop', S2S::Failover::orders_sql('aff'))) or die 'cannot create the orders table';

# --- Node 2 (the secondary, a base backup of node1: our settings come with it) -------------
my ($ok2, $n2) = create_node('node2', $p2);
ok($ok2, 'pg_autoctl create postgres: node2');
PostgreSQL::Test::Utils::append_to_file("$n2/postgresql.conf", "log_directory = '$base/node2.pglog'\n");
autoctl_run($n2);

sub states
{
	my $v = psql_at($mport, 'pg_auto_failover',
		"SELECT string_agg(nodename || '=' || reportedstate || '/' || goalstate, ' ' ORDER BY nodename) FROM pgautofailover.node");
	return $v // '';
}
# The monitor's event log since T (epoch seconds): what pg_auto_failover decided, and when
# (relative to the failover), one line per event; printed when a check that depends on
# its decisions fails.
sub events_since
{
	my ($t, $rel) = @_;
	my $v = psql_at($mport, 'pg_auto_failover', sprintf(
			"SELECT string_agg(format('%%s s  %%s  %%s/%%s  %%s', "
			  . "to_char(extract(epoch FROM eventtime) - %.3f, 'FM99990.00'), "
			  . "nodename, reportedstate, goalstate, description), E'\\n' ORDER BY eventid) "
			  . 'FROM pgautofailover.event WHERE eventtime >= to_timestamp(%.3f)', $rel, $t));
	return $v // '(the monitor did not answer)';
}
my $healthy = 'node1=primary/primary node2=secondary/secondary';
ok(poll_at($mport, 'pg_auto_failover',
		"SELECT string_agg(nodename || '=' || reportedstate || '/' || goalstate, ' ' ORDER BY nodename) FROM pgautofailover.node",
		$healthy),
	'node1 primary, node2 secondary') or diag('states: ' . states());
like(psql_at($p1, 'shop', 'SHOW synchronous_standby_names'), qr/pgautofailover_standby_/,
	'pg_auto_failover runs node1 with synchronous replication');
is(psql_at($p2, 'shop', 'SELECT pg_is_in_recovery()'), 't', 'node2 is a standby');
is(psql_at($p2, 'shop', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker'"),
	'0', 'no s2s_tracking worker on the standby');
is(psql_at($p2, 'shop', 'SHOW shared_preload_libraries'), 'pg_stat_statements,s2s_tracking',
	'node2 has our settings (from the base backup)');

# --- Orders, drain, failover ------------------------------------------------------------
# The endpoint is disabled while the first orders are committed, so that the drain starts
# from the whole backlog however slowly a busy machine commits them.
my $t_orders = time();
defined(psql_at($p1, 'shop', "UPDATE s2s.endpoints SET enabled = false WHERE name = 'aff'"))
  or die 'cannot disable the endpoint';
for my $b (0 .. 19)
{
	defined(psql_at($p1, 'shop', S2S::Failover::insert_sql($b * 100 + 1, $b * 100 + 100)))
	  or die 'cannot insert orders';
}
defined(psql_at($p1, 'shop', "UPDATE s2s.endpoints SET enabled = true WHERE name = 'aff'"))
  or die 'cannot enable the endpoint';
ok(poll_at($p1, 'shop', "SELECT count(*) >= 100 FROM s2s.deliveries WHERE status = 'sent'"),
	'node1 is draining');
my $writer = S2S::Failover::start_writer($first_orders + 1, $more_orders, 20,
	[ "$bindir/psql", '-X', '-h', '127.0.0.1', '-p', $p1, '-d', 'shop' ]);
ok($writer->wait_acked($first_orders + 100, 120), 'the checkout commits orders during the drain');
ok(poll_at($p1, 'shop', "SELECT count(*) >= 800 FROM s2s.deliveries WHERE status = 'sent'"),
	'node1 sent 800');
is(psql_at($p2, 'shop', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker'"),
	'0', 'mid-drain: still no worker on the standby');

# The failover takes seconds: slow the receiver down (1 s an answer, 16 a second at most)
# so that node1 is still draining when it is stopped, and node2 has deliveries left.
$r->behave(delay_ms => 1000);
my $t_failover = time();
# `perform failover` in the background, watching node1 meanwhile. When pg_auto_failover
# stops node1 after node2 stopped replicating, a write-back of node1's worker may be waiting
# for the synchronous standby: its SIGTERM cancels that wait (src/worker_unit.c, s2s_worker_sigterm;
# before that fix node1 never shut down and the failover stalled, TAP 073). Should node1's
# worker be seen waiting for 10 s in a row in a stopping node1, the test fails, and cancels
# the wait itself (SIGINT, as pg_cancel_backend) so that the run ends. A wait seen for a
# moment is the SIGTERM on its way: what counts is how long one lasts, not how long ago
# the first was seen (that made this check fail once on 18, with node1 down in 2 s).
my $failover_pid = fork();
die "fork: $!" unless defined $failover_pid;
if ($failover_pid == 0)
{
	%ENV = (%ENV, %env);
	open(STDOUT, '>>', "$base/autoctl.log");
	open(STDERR, '>&', \*STDOUT);
	exec('timeout', '300', $autoctl, 'perform', 'failover', '--pgdata', $n1, '--wait', '240')
	  or POSIX::_exit(127);
}
my ($stuck_since, $longest_stuck, $sightings, $cancels) = (undef, 0, 0, 0);
my $failover_rc;
my $deadline = time() + 320;
while (time() < $deadline)
{
	if (waitpid($failover_pid, WNOHANG) == $failover_pid) { $failover_rc = $?; last; }
	my ($wpid, $title) = node_worker($n1);
	my $stopping = postmaster_status($n1) eq 'stopping';
	if ($wpid && $stopping && $title =~ m{waiting for [0-9A-F]+/[0-9A-F]+})
	{
		$stuck_since //= time();
		$sightings++;
		my $stuck = time() - $stuck_since;
		$longest_stuck = $stuck if $stuck > $longest_stuck;
		if ($stuck > 10 && $cancels < 20)
		{
			note("node1 stopping, its worker $wpid waits for the standby: $title; SIGINT");
			kill 'INT', $wpid;
			$cancels++;
		}
	}
	else
	{
		$stuck_since = undef;
	}
	sleep(0.5);
}
if (!defined $failover_rc)
{
	kill 'KILL', -$failover_pid, $failover_pid;
	waitpid($failover_pid, 0);
	$failover_rc = -1;
}
my $t_done = time();
is($failover_rc, 0, 'pg_autoctl perform failover');
ok($cancels == 0 && $longest_stuck < 10,
	"node1's worker let node1 shut down without help");
note(sprintf("node1's worker seen waiting for the standby in a stopping node1 %d times, for %.1f s at most",
		$sightings, $longest_stuck))
  if $sightings;
note("node1's worker needed $cancels cancels to let node1 stop") if $cancels;
$writer->wait(60);
my $acked = $writer->acked;
ok(poll_at($mport, 'pg_auto_failover',
		"SELECT reportedstate IN ('primary', 'wait_primary') FROM pgautofailover.node WHERE nodename = 'node2'"),
	'node2 is the primary') or diag('states: ' . states());
ok(poll_at($p2, 'shop', 'SELECT pid IS NOT NULL FROM s2s.worker_status()'), "node2's worker runs");
$r->behave(delay_ms => $delay_ms);

# Its worker started after the promotion (the end of recovery, in node2's log).
my $worker_started = psql_at($p2, 'shop', 'SELECT extract(epoch FROM started_at) FROM s2s.worker_status()');
my ($promoted_at) = grep { $_ >= $t_failover } log_times("$base/node2.pglog", qr/selected new timeline ID/);
ok(defined $promoted_at, "node2's log shows its promotion");
$promoted_at //= $t_failover;
cmp_ok($worker_started, '>=', $promoted_at,
	sprintf("node2's worker started after the promotion (%.3f s after it)", $worker_started - $promoted_at));

my $committed = psql_at($p2, 'shop', 'SELECT count(*) FROM orders');
my $events_shown = 0;
sub show_events
{
	return if $events_shown++;
	# one diag a line: run-tests shows a failed test's diagnostics line by line
	diag("pg_auto_failover's events (times from the start of the failover):");
	diag("  $_") for split /\n/, events_since($t_orders, $t_failover);
	# and what each node's pg_autoctl did about it (transitions, settings, failures)
	for my $n ([ node1 => $n1 ], [ node2 => $n2 ])
	{
		my $log = -f "$n->[1].run.log" ? slurp_file("$n->[1].run.log") : '';
		my @l = grep { /FSM transition|Transition complete|synchronous|read_only|ERROR|WARN|FATAL|partition/ }
		  split /\n/, $log;
		diag("$n->[0]'s pg_autoctl (last 40 of its transitions, settings and failures):");
		diag("  $_") for @l > 40 ? @l[-40 .. -1] : @l;
	}
	my @sync = grep { /synchronous|default_transaction_read_only|shutdown|shut down/ }
	  split /\n/, slurp_all("$base/node1.pglog");
	diag("node1's server log on replication settings and shutdown (last 30):");
	diag("  $_") for @sync > 30 ? @sync[-30 .. -1] : @sync;
}

# Whether node1 ran without synchronous replication once the orders began. With one
# standby, pg_auto_failover empties synchronous_standby_names when it judges the standby
# unhealthy (wait_primary: availability over durability, its documented choice); commits
# acknowledged then were promised to no standby, and node1's write-backs were not either.
# node1's server log shows each change of the setting (a reload logs it).
# (Only while node1 was the primary: up to its shutdown in the failover.)
my ($node1_down) = grep { $_ >= $t_failover } log_times("$base/node1.pglog", qr/database system is shut down/);
$node1_down //= time();
my @async_at = grep { $_ >= $t_orders && $_ <= $node1_down } log_times("$base/node1.pglog",
	qr/parameter "synchronous_standby_names" changed to ""/);
my $acked_on_node2 = psql_at($p2, 'shop', "SELECT count(*) FROM orders WHERE id <= $acked");
my $async_why = @async_at
  ? sprintf('pg_auto_failover ran node1 without synchronous replication from %.2f s after the failover '
	  . 'started: what node1 acknowledged or wrote back then was promised to no standby',
	$async_at[0] - $t_failover)
  : '';
if ($async_why)
{
	diag($async_why);
	show_events();
}
SKIP:
{
	skip "$async_why (" . ($acked - $acked_on_node2) . ' acknowledged orders not on node2)', 1
	  if $async_why && $acked_on_node2 != $acked;
	is($acked_on_node2, $acked, "every acknowledged order (1..$acked) is on the new primary")
	  or show_events();
}
is(psql_at($p2, 'shop', 'SELECT max(id) = count(*) FROM orders'), 't', 'no order missing in between');
ok(poll_at($p2, 'shop', "SELECT count(*) = $committed FROM s2s.deliveries WHERE status = 'sent'"),
	"the new primary sends every committed order's conversion ($committed)");

# pg_auto_failover promotes node2 with default_transaction_read_only = on and turns it off
# only once node1 is known demoted (its split-brain guard). The worker obeys: it sends
# nothing until then (its writes fail; it retries every second). node1 sends nothing once
# its worker is gone (the postmaster logs its exit; 0.5 s more for a request written to a
# socket just before). So the receiver gets nothing in between.
my ($node1_gone) = grep { $_ >= $t_failover } log_times("$base/node1.pglog",
	qr/background worker "s2s_tracking worker" \(PID \d+\) exited|database system is shut down/);
my ($writable) = grep { $_ >= $promoted_at } log_times("$base/node2.pglog",
	qr/parameter "default_transaction_read_only" changed to "off"/);
ok(defined $node1_gone, "node1's log shows its worker's exit in the failover");
ok(defined $writable, "node2's log shows pg_auto_failover making it writable");
$node1_gone //= $t_failover;
$writable //= $worker_started;
my $hold_from = ($node1_gone > $promoted_at ? $node1_gone : $promoted_at) + 0.5;
my $all = [ sort { $a->{time} <=> $b->{time} } @{ $r->requests } ];

# Seen from node2: every request its worker started after the promotion (node1's attempts
# of that time cannot reach node2, which left node1's timeline) started once node2 was
# writable. started_at is taken when a request is handed to libcurl; the log's times
# are cut to the millisecond.
my $first_started = psql_at($p2, 'shop',
	sprintf('SELECT extract(epoch FROM min(started_at)) FROM s2s.attempts WHERE started_at >= to_timestamp(%.3f)',
		$promoted_at));
ok(defined $first_started && $first_started ne '' && $first_started >= $writable - 0.001,
	sprintf("node2's worker started no request while node2 was promoted but read-only "
		  . '(its first %.3f s after node2 became writable)', ($first_started || 0) - $writable));

# Seen from the receiver: nothing came while node2 was read-only and node1's worker gone.
# pg_auto_failover makes node2 writable once node1 is known demoted: usually more than
# the 0.5 s margin after node1's worker exits, but not always (0.44 s once, on 18).
SKIP:
{
	# With the known issue, node1's worker lives (and may send what its cancelled commit
	# had claimed) until the test cancels its wait, often after node2 became writable.
	skip sprintf('node1 stopped only after the workaround, %.2f s after node2 became writable',
		$hold_from - $writable), 1
	  if $cancels && $writable <= $hold_from;
	skip sprintf('node2 became writable %.2f s after node1 stopped sending, within the 0.5 s '
			. 'left for its last requests: no window to watch', $writable - $hold_from + 0.5), 1
	  if $writable <= $hold_from;
	my @between = grep { $_->{time} > $hold_from && $_->{time} < $writable } @$all;
	is(scalar(@between), 0,
		sprintf('nothing was sent in the %.2f s node2 was promoted but read-only after node1 stopped sending',
			$writable - $hold_from));
}
my @from_new = grep { $_->{time} >= ($hold_from > $writable ? $hold_from : $writable) } @$all;
ok(@from_new > 0, 'the new primary sent');
my $first_new = @from_new ? $from_new[0]{time} : $t_failover;
my $got = S2S::Failover::received($r);
is(scalar(keys %$got), $committed, 'the receiver got every committed order');
is(scalar(grep { !/^\d+$/ || $_ < 1 || $_ > $committed } keys %$got), 0,
	'and no conversion of an order the new primary does not have');
my $dups = 0;
$dups += $_ - 1 for values %$got;
# (After the known issue's workaround, a cancelled commit may also have claimed: twice.)
my $bound = $cancels ? 2 * $max_concurrency : $max_concurrency;
SKIP:
{
	skip "$async_why ($dups duplicates)", 1 if $async_why && $dups > $bound;
	cmp_ok($dups, '<=', $bound, "duplicates ($dups) at most $bound (max_concurrency $max_concurrency"
		  . ($cancels ? ', twice after cancelled waits)' : ')')) or show_events();
}
is(psql_at($p2, 'shop',
		"SELECT count(*) FROM s2s.deliveries d WHERE status <> 'sent' OR attempts <> 1 "
		  . "OR (SELECT count(*) FROM s2s.attempts a WHERE a.delivery_id = d.id) <> 1"),
	'0', 'every delivery sent with exactly one counted attempt: nothing burned, none failed');

# The old primary comes back as a standby and sends nothing.
ok(poll_at($mport, 'pg_auto_failover',
		"SELECT string_agg(nodename || '=' || reportedstate || '/' || goalstate, ' ' ORDER BY nodename) FROM pgautofailover.node",
		'node1=secondary/secondary node2=primary/primary'),
	'node1 rejoined as the secondary') or diag('states: ' . states());
is(psql_at($p1, 'shop', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker'"),
	'0', 'no worker on the old primary, now a standby');
my $n_before = $r->count;
defined(psql_at($p2, 'shop', S2S::Failover::insert_sql($committed + 1, $committed + 100)))
  or fail('orders on the new primary');
ok(poll_at($p2, 'shop', "SELECT count(*) = $committed + 100 FROM s2s.deliveries WHERE status = 'sent'"),
	'new orders on the new primary (synchronously replicated to node1) are sent');
is($r->count - $n_before, 100, 'exactly once each');

my ($given_back) = slurp_all("$base/node2.pglog") =~ /gave back (\d+) deliveries left in flight/;
$given_back //= 0;
diag(sprintf(
		'failover figures (pg_auto_failover): %d orders committed (%d acknowledged); perform failover took %.1f s; '
		  . "%d rows 'sending' given back by the new worker; "
		  . 'first delivery from the new primary %.2f s after the failover started '
		  . '(%.2f s after its promotion, %.2f s after pg_auto_failover made it writable); '
		  . 'duplicates %d (bound %d)',
		$committed, $acked, $t_done - $t_failover, $given_back, $first_new - $t_failover,
		$first_new - $promoted_at, $first_new - $writable, $dups, $bound));

note("pg_auto_failover's events (times from the start of the failover):");
note("  $_") for split /\n/, events_since($t_orders, $t_failover);

autoctl_stop($n2);
autoctl_stop($n1);
autoctl_stop($monitor);
$r->stop;
done_testing();
