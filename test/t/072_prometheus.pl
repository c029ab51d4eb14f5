# Monitoring the way PostgreSQL shops do it (issue 13, item 5): Debian's
# prometheus-postgres-exporter runs contrib/prometheus/s2s_tracking.yml as a role with only
# the grants of contrib/prometheus/monitoring_role.sql, against a cluster with a known
# queue; its /metrics, scraped over loopback, shows the right values, and they follow the
# queue when it changes.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HTTP::Tiny;
use POSIX qw(WNOHANG);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use S2S::Node;
use S2S::Receiver;

my $exporter = $ENV{S2S_PG_EXPORTER} // '/usr/bin/prometheus-postgres-exporter';
unless (-x $exporter)
{
	my $bindir = `pg_config --bindir`;
	chomp $bindir;
	plan skip_all => "$exporter not found (package prometheus-postgres-exporter); PostgreSQL at $bindir is a relocated copy"
	  if $bindir !~ m{^/usr/lib/postgresql/\d+/bin$};
	fail("$exporter not found: install prometheus-postgres-exporter (tools/common.sh lists it)");
	done_testing();
	exit 1;
}
my $queries = "$FindBin::RealBin/../../contrib/prometheus/s2s_tracking.yml";
my $grants = "$FindBin::RealBin/../../contrib/prometheus/monitoring_role.sql";

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('prom');

# The queue: 'aff' sends 5 (one after a 503: a retry), 'bad' fails one for good (400),
# 'held' is paused with 3 waiting for an hour, 'off' is disabled with 2 waiting.
$r->behave(status => 503, times => 1, path_prefix => '/aff');
$r->behave(status => 400, path_prefix => '/bad');
$node->add_endpoint('aff', 'affilae', $r->url . '/aff');
$node->add_endpoint('bad', 'affilae', $r->url . '/bad');
$node->add_endpoint('held', 'affilae', $r->url . '/held');
$node->add_endpoint('off', 'affilae', $r->url . '/off', enabled => 'false');
$node->sql("SELECT s2s.pause('held', 'paused for the test: 401 from the network')");
$node->enqueue_conversions('held', 3, 100);
$node->enqueue_conversions('off', 2, 200);
$node->sql("UPDATE s2s.deliveries SET created_at = now() - interval '1 hour' WHERE endpoint = 'held'");
$node->enqueue_conversions('bad', 1, 300);
$node->enqueue_conversions('aff', 5);
$node->poll("SELECT count(*) = 5 FROM s2s.deliveries WHERE endpoint = 'aff' AND status = 'sent'",
	'aff: 5 sent');
$node->poll("SELECT count(*) = 1 FROM s2s.deliveries WHERE endpoint = 'bad' AND status = 'failed'",
	'bad: 1 failed');
is($node->sql('SELECT sent, retried, failed FROM s2s.worker_status()'), '5|1|1',
	'the worker counted 5 sent, 1 retried, 1 failed');

# The monitoring role, with exactly the documented grants.
$node->sql('CREATE ROLE prometheus LOGIN');
$node->sql(slurp_file($grants));
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT client_ip FROM s2s.deliveries LIMIT 1',
	extra_params => [ '-U', 'prometheus' ]);
like($err, qr/permission denied/, "the monitoring role cannot read the shoppers' data");
($ret, $out, $err) = $node->psql('postgres', 'SELECT secret FROM s2s.endpoints LIMIT 1',
	extra_params => [ '-U', 'prometheus' ]);
like($err, qr/permission denied/, 'nor the endpoints beyond their state');

# The exporter, on loopback, on a free port.
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $log = PostgreSQL::Test::Utils::tempdir('exporter') . '/exporter.log';
my $pid = fork();
die "fork: $!" unless defined $pid;
if ($pid == 0)
{
	$ENV{DATA_SOURCE_NAME} =
	  'host=' . $node->host . ' port=' . $node->port . ' user=prometheus dbname=postgres sslmode=disable';
	open(STDOUT, '>', $log);
	open(STDERR, '>&', \*STDOUT);
	exec($exporter, "--web.listen-address=127.0.0.1:$port", "--extend.query-path=$queries")
	  or POSIX::_exit(127);
}
END
{
	local $?;
	if ($pid)
	{
		kill 'TERM', $pid;
		my $deadline = time() + 10;
		sleep(0.1) while waitpid($pid, WNOHANG) == 0 && time() < $deadline;
		if (waitpid($pid, WNOHANG) == 0) { kill 'KILL', $pid; waitpid($pid, 0); }
	}
}

my $http = HTTP::Tiny->new(timeout => 30);

# The samples of one scrape: [[name, {label => value}, value], ...].
sub scrape
{
	my $res = $http->get("http://127.0.0.1:$port/metrics");
	return undef unless $res->{success};
	my @s;
	for (split /\n/, $res->{content})
	{
		next if /^#/ || !/\S/;
		next unless /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
		my ($name, $labels, $value) = ($1, $2 // '', $3);
		my %l;
		while ($labels =~ /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g) { $l{$1} = $2; }
		push @s, [ $name, \%l, $value ];
	}
	return \@s;
}

# The value of the one sample named NAME whose labels include LABELS (undef if none).
sub value
{
	my ($samples, $name, %labels) = @_;
	my @m = grep {
		my $s = $_;
		$s->[0] eq $name && !grep { ($s->[1]{$_} // "\0") ne $labels{$_} } keys %labels
	} @$samples;
	return @m == 1 ? $m[0][2] : undef;
}

# Scrapes until the check returns true (bounded: 60 s); returns the last scrape.
sub scrape_until
{
	my ($check) = @_;
	my $deadline = time() + 60;
	my $s;
	while (time() < $deadline)
	{
		$s = scrape();
		return $s if $s && $check->($s);
		sleep(0.5);
	}
	return $s // [];
}

my $s = scrape_until(sub { defined value($_[0], 's2s_worker_up') });
ok(defined value($s, 's2s_worker_up'), 'the exporter serves the s2s_tracking metrics')
  or diag(slurp_file($log));
is(value($s, 'pg_up'), 1, 'pg_up 1');
is(value($s, 'pg_exporter_last_scrape_error'), 0, 'the scrape had no error');
is(value($s, 'pg_exporter_user_queries_load_error', filename => $queries), 0,
	'the query file loaded');

# Queue depth and age per endpoint and status.
is(value($s, 's2s_queue_deliveries', endpoint => 'held', status => 'pending'), 3, 'held: 3 pending');
cmp_ok(value($s, 's2s_queue_oldest_age_seconds', endpoint => 'held', status => 'pending') // 0,
	'>=', 3600, 'held: the oldest waits for an hour');
cmp_ok(value($s, 's2s_queue_oldest_age_seconds', endpoint => 'held', status => 'pending') // 1e9,
	'<', 3600 + 120, '(not much more)');
is(value($s, 's2s_queue_deliveries', endpoint => 'off', status => 'pending'), 2, 'off: 2 pending');
for my $st ('pending', 'sending', 'retrying')
{
	is(value($s, 's2s_queue_deliveries', endpoint => 'aff', status => $st), 0, "aff: 0 $st");
	is(value($s, 's2s_queue_oldest_age_seconds', endpoint => 'aff', status => $st), 0,
		"aff: no age for $st");
}
# Endpoint state.
is(value($s, 's2s_endpoint_paused', endpoint => 'held'), 1, 'held is paused');
is(value($s, 's2s_endpoint_paused', endpoint => 'aff'), 0, 'aff is not');
cmp_ok(value($s, 's2s_endpoint_paused_seconds', endpoint => 'held') // -1, '>', 0, 'held: paused for some time');
is(value($s, 's2s_endpoint_enabled', endpoint => 'off'), 0, 'off is disabled');
is(value($s, 's2s_endpoint_enabled', endpoint => 'aff'), 1, 'aff is enabled');
is(value($s, 's2s_pause_info', endpoint => 'held', reason => 'paused for the test: 401 from the network'),
	1, 'the pause reason is a label');
is(value($s, 's2s_pause_info', endpoint => 'aff'), undef, 'no pause info for an endpoint that is not paused');
# The worker.
is(value($s, 's2s_worker_up'), 1, 'the worker is up');
is(value($s, 's2s_worker_standby'), 0, 'on a primary');
cmp_ok(value($s, 's2s_worker_last_loop_age_seconds'), '<', 30, 'its last loop is recent');
cmp_ok(abs((value($s, 's2s_worker_started_at_seconds') // 0)
		  - $node->sql('SELECT extract(epoch FROM started_at) FROM s2s.worker_status()')),
	'<', 0.01, 'its start time');
is(value($s, 's2s_worker_sent_total'), 5, 'sent_total 5');
is(value($s, 's2s_worker_retried_total'), 1, 'retried_total 1');
is(value($s, 's2s_worker_failed_total'), 1, 'failed_total 1');
is(value($s, 's2s_worker_attempts_total'), 7, 'attempts_total 7');
is(value($s, 's2s_worker_in_flight'), 0, 'nothing in flight');

# The values follow the queue: resumed, 'held' drains; enabled, 'off' too.
$node->sql("SELECT s2s.resume('held')");
$node->sql("UPDATE s2s.endpoints SET enabled = true WHERE name = 'off'");
$s = scrape_until(sub { (value($_[0], 's2s_worker_sent_total') // 0) == 10 });
is(value($s, 's2s_worker_sent_total'), 10, 'after resume and enable: sent_total 10');
is(value($s, 's2s_queue_deliveries', endpoint => 'held', status => 'pending'), 0, 'held: none pending');
is(value($s, 's2s_queue_oldest_age_seconds', endpoint => 'held', status => 'pending'), 0, 'held: no age');
is(value($s, 's2s_endpoint_paused', endpoint => 'held'), 0, 'held is no longer paused');
is(value($s, 's2s_pause_info', endpoint => 'held'), undef, 'and has no pause info');
is(value($s, 's2s_endpoint_enabled', endpoint => 'off'), 1, 'off is enabled');

# No worker: the library not preloaded (a restart without it), the metrics say so.
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
# (stop and start: pg_ctl restart bypasses the wrapper of the ASan runs, test/asan/run)
$node->stop;
$node->start;
$s = scrape_until(sub { defined value($_[0], 's2s_worker_up') && value($_[0], 's2s_worker_up') == 0 });
is(value($s, 's2s_worker_up'), 0, 'without the worker: s2s_worker_up 0');
is(value($s, 's2s_worker_standby'), 0, '(on a primary: an alert)');
unlike(slurp_file($log), qr/level=error.*s2s_/, 'the exporter logged no error for our queries');

$node->stop;
$r->stop;
done_testing();
