# ./run-demo --serve: after the journeys it keeps the shop, the receiver and a page of
# s2s.deliveries running on loopback until Ctrl-C, then stops and removes everything.
#
# Runs it as a terminal would (its own process group, SIGINT to the group as Ctrl-C sends
# it), with the extension this run installed (S2S_DEMO_INSTALLED), and checks that the
# page answers on 127.0.0.1 and shows a delivery sent, that Ctrl-C ends it with status 0,
# and that afterwards every process it started (its children and the cluster's
# postmaster) is gone, every port it listened on is free and its directory removed.
# Every wait is bounded.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use File::Basename qw(dirname);
use File::Spec;
use HTTP::Tiny;
use IO::Socket::INET;
use IPC::Run;
use POSIX qw(setpgid);
use Time::HiRes qw(sleep time);
use PostgreSQL::Test::Utils;
use Test::More;

my $top = File::Spec->rel2abs(File::Spec->catdir(dirname(__FILE__), '..', '..'));
my $pg_config = $ENV{PG_CONFIG} // 'pg_config';

my ($out, $err) = ('', '');
my $demo = IPC::Run::start(
	[ "$top/run-demo", '--serve' ],
	'<', \undef, '>', \$out, '2>', \$err,
	init => sub {
		setpgid(0, 0) or die "setpgid: $!";
		# as from a terminal: a shell that starts with SIGINT ignored (a run in the
		# background) could not trap it
		$SIG{INT} = 'DEFAULT';
		$ENV{PG_CONFIG} = $pg_config;
		$ENV{S2S_DEMO_INSTALLED} = 1;
		# bounded even if this test dies before its Ctrl-C
		$ENV{S2S_DEMO_SERVE_SECONDS} = 600;
	});
my $pgid = $demo->{KIDS}[0]{PID};

# Waits at most $limit seconds for $cond, pumping the demo's output.
sub wait_until
{
	my ($limit, $cond) = @_;
	my $end = time + $limit;
	while (time < $end)
	{
		$demo->pump_nb;
		return 1 if $cond->();
		last unless $demo->pumpable;
		sleep 0.2;
	}
	$demo->pump_nb if $demo->pumpable;
	return $cond->();
}

# (until the last line of what it prints then: the lines may come in more than one read)
unless (ok(wait_until(900, sub {
				$out =~ m{the deliveries:\s+http://127\.0\.0\.1:\d+/} && $out =~ m{the database:\s+\S+ -h \S+ -p \d+}
			}),
		'the demo plays its journeys and serves'))
{
	diag("run-demo --serve did not start serving:\n$out\n$err");
	kill 'INT', -$pgid;
	wait_until(120, sub { !$demo->pumpable }) or kill 'KILL', -$pgid;
	$demo->finish;
	done_testing();
	exit;
}
my ($page_port) = $out =~ m{the deliveries:\s+http://127\.0\.0\.1:(\d+)/};
my ($shop_port) = $out =~ m{the shop:\s+http://localhost:(\d+)/};
my ($receiver_port) = $out =~ m{receiver at http://127\.0\.0\.1:(\d+)};
my ($work, $pg_port) = $out =~ m{the database:\s+\S+ -h (\S+) -p (\d+)};
ok($shop_port && $receiver_port && $pg_port && $work, 'it says where the shop, the receiver and the database are');

# The page, on loopback: a delivery the worker sent.
my $res = HTTP::Tiny->new(timeout => 30)->get("http://127.0.0.1:$page_port/");
is($res->{status}, 200, 'the deliveries page answers on 127.0.0.1');
like($res->{content}, qr{<td>affilae</td><td>conversion</td>.*?<td>sent</td>}s,
	'it shows an Affilae conversion sent');
is(HTTP::Tiny->new(timeout => 30)->get("http://127.0.0.1:$shop_port/healthz")->{status}, 200,
	'the shop still answers');

# What it started: its process group, and the cluster's postmaster (pg_ctl's child).
sub group_pids
{
	my @pids;
	for my $stat (glob '/proc/[0-9]*/stat')
	{
		open my $fh, '<', $stat or next;
		my $line = <$fh> // next;
		close $fh;
		# pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
		my ($pid, $rest) = $line =~ /^(\d+) \(.*\) (.*)$/s or next;
		my (undef, undef, $pgrp) = split / /, $rest;
		push @pids, $pid if $pgrp == $pgid;
	}
	return @pids;
}
my @pids = group_pids();
my $postmaster;
if (open my $fh, '<', "$work/data/postmaster.pid")
{
	chomp($postmaster = <$fh>);
	close $fh;
}
ok($postmaster, 'the cluster is running') and push @pids, $postmaster;
cmp_ok(scalar @pids, '>=', 5, 'run-demo, the shop, the receiver, the page and the cluster are running')
	or diag("processes: @pids");

# Ctrl-C.
kill 'INT', -$pgid;
my $finished = wait_until(120, sub { !$demo->pumpable });
ok($finished, 'Ctrl-C ends it within two minutes');
if ($finished)
{
	$demo->finish;
	is($demo->full_result(0), 0, 'with exit status 0') or diag($err);
}
else
{
	kill 'KILL', -$pgid;
	$demo->finish;
}
unlike($err, qr/run-demo: stopped/, 'as the normal end of --serve, not as a failure');

# Everything it started is gone (a process may take a moment to be reaped).
my @left;
wait_until(30, sub { @left = grep { kill 0, $_ } @pids; !@left });
is("@left", '', 'every process it started is gone');
for my $port ($page_port, $shop_port, $receiver_port, $pg_port)
{
	my $sock = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 5);
	ok(!$sock, "nothing listens on port $port any more");
	close $sock if $sock;
}
ok(!-e $work, 'its directory is removed');

# Whatever it left behind after a failure is stopped here (a fast shutdown of the cluster).
if (kill 0, $postmaster)
{
	kill 'INT', $postmaster;
	wait_until(60, sub { !kill 0, $postmaster });
}

done_testing();
