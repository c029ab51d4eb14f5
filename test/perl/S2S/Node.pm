# S2S::Node: a PostgreSQL test cluster that preloads s2s_tracking, for the worker's TAP tests.
#
#   my $node = S2S::Node->create('main', conf => { 's2s_tracking.poll_interval' => '1s' });
#   my $r = S2S::Receiver->start;
#   $node->add_endpoint('aff', 'affilae', $r->url . '/', secret => '...');
#   $node->enqueue_conversions('aff', 100);          # 100 Affilae conversions, ids 1..100
#   $node->poll("SELECT count(*) = 100 FROM s2s.deliveries WHERE status = 'sent'", 'all sent');
#   $node->set_conf('s2s_tracking.max_concurrency', 1);   # ALTER SYSTEM + reload
#   $node->worker_pid;  $node->stop;
#
# The cluster has s2s_tracking.allow_http on (the receiver speaks plain HTTP) and
# s2s_tracking.allowed_networks = '127.0.0.0/8, ::1/128' (it listens on loopback), short retry
# delays, the extension created in database postgres, and its worker running. Every wait
# is bounded: waits default to 30 s (not the harness's 180 s), so a test that cannot succeed
# fails in bounded time.
package S2S::Node;

use strict;
use warnings;
use Carp;
use File::Basename qw(dirname);
use File::Spec;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);

our @ISA = ('PostgreSQL::Test::Cluster');

# poll_query_until waits timeout_default seconds at most.
$PostgreSQL::Test::Utils::timeout_default = $ENV{S2S_TEST_WAIT} // 30;

my %DEFAULT_CONF = (
	'shared_preload_libraries' => "'s2s_tracking'",
	's2s_tracking.allow_http' => 'on',
	's2s_tracking.allowed_networks' => "'127.0.0.0/8, ::1/128'",
	's2s_tracking.retry_base' => "'100ms'",
	's2s_tracking.retry_max' => "'1s'",
	's2s_tracking.poll_interval' => "'1s'",
);

# The settings every test node gets (name => value as written in postgresql.conf), for
# clusters built otherwise (a streaming standby, a node managed by pg_auto_failover).
# S2S_HTTP_THREAD=on in the environment: the worker's HTTP client runs on a thread of
# its own (s2s_tracking.http_thread), as in the tests that rerun another with it on
# (078_crash_http_thread.pl, ...).
sub default_conf
{
	my %conf = %DEFAULT_CONF;
	$conf{'s2s_tracking.http_thread'} = $ENV{S2S_HTTP_THREAD}
	  if defined $ENV{S2S_HTTP_THREAD};
	return %conf;
}

# create(NAME, conf => {name => value}, extension => 1, init => {allows_streaming => 1}):
# init (with those options), configure, start, create the extension (unless
# extension => 0) and wait for the worker.
sub create
{
	my ($class, $name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	bless $node, $class;
	$node->init(%{ $opt{init} // {} });
	my %conf = (default_conf(), %{ $opt{conf} // {} });
	$node->append_conf('postgresql.conf',
		join('', map { "$_ = $conf{$_}\n" } sort keys %conf));
	$node->start;
	if ($opt{extension} // 1)
	{
		$node->safe_psql('postgres', 'CREATE EXTENSION s2s_tracking');
		$node->wait_worker;
	}
	return $node;
}

# A test rerun with S2S_HTTP_THREAD=on proves nothing unless its worker ran with the
# thread: the first stop checks that the worker said so in the log.
sub stop
{
	my ($self, @args) = @_;
	# (not from the harness's teardown, which runs after the test's done_testing)
	my $from_teardown = (caller(1))[3] // '';
	if (($ENV{S2S_HTTP_THREAD} // '') eq 'on' && !$self->{s2s_thread_checked}
		&& $from_teardown !~ /teardown_node$/)
	{
		$self->{s2s_thread_checked} = 1;
		my $log = slurp_file($self->logfile);
		like($log, qr/s2s_tracking worker runs its HTTP client on a thread of its own/,
			$self->name . ": the worker ran its HTTP client on a thread of its own");
		unlike($log, qr/cannot run its HTTP client on a thread of its own/,
			$self->name . ": and no worker went without it");
	}
	return $self->SUPER::stop(@args);
}

# The IDs of the worker's HTTP threads (named s2s_http; none without
# s2s_tracking.http_thread). Resolver threads libcurl starts from it for a host name would
# share the name: the tests' endpoints are IP literals, which start none.
sub worker_http_threads
{
	my $self = shift;
	my $pid = $self->worker_pid;
	opendir(my $dh, "/proc/$pid/task") or return ();
	my @tids = grep {
		/^\d+$/ && (eval { PostgreSQL::Test::Utils::slurp_file("/proc/$pid/task/$_/comm") } // '') eq "s2s_http\n"
	} readdir($dh);
	closedir($dh);
	return @tids;
}

# Polls until the query returns 't' (bounded); one test assertion named $what.
# PostgreSQL::Test::Cluster's poll_query_until feeds the query to psql's standard input:
# while the server refuses connections (restarting after a worker killed with SIGKILL, as
# the crash tests do), psql may exit before reading it, and IPC::Run then dies on the broken
# pipe instead of trying again. The same loop, with the query given by -c.
sub poll_query_until
{
	my ($self, $dbname, $query, $expected) = @_;
	local %ENV = $self->_get_env();
	$expected //= 't';
	my ($stdout, $stderr) = ('', '');
	my $max_attempts = 10 * $PostgreSQL::Test::Utils::timeout_default;
	for (my $attempt = 0; $attempt < $max_attempts; $attempt++)
	{
		my @cmd = ($self->installed_command('psql'), '-XAt', '-d', $self->connstr($dbname));
		push @cmd, '-c', $query if defined $query;
		IPC::Run::run(\@cmd, '<', \'', '>', \$stdout, '2>', \$stderr);
		chomp($stdout);
		chomp($stderr);
		return 1 if $stdout eq $expected && $stderr eq '';
		sleep(0.1);
	}
	diag("poll_query_until timed out executing this query:\n"
		  . ($query // '(connection attempt only)')
		  . "\nexpecting this output:\n$expected\nlast actual query output:\n$stdout\nwith stderr:\n$stderr");
	return 0;
}

sub poll
{
	my ($self, $query, $what, $expected) = @_;
	return ok($self->poll_query_until('postgres', $query, $expected // 't'), $what);
}

# The same in database DB.
sub poll_db
{
	my ($self, $db, $query, $what) = @_;
	return ok($self->poll_query_until($db, $query), $what);
}

# Polls without making a test of it; returns whether the query returned 't' in time.
sub wait_for
{
	my ($self, $query) = @_;
	return $self->poll_query_until('postgres', $query);
}

sub sql
{
	my ($self, $query) = @_;
	return $self->safe_psql('postgres', $query);
}

# Waits for the worker to run and to have gone round its loop once.
sub wait_worker
{
	my $self = shift;
	$self->wait_for("SELECT pid IS NOT NULL AND last_loop_at > started_at FROM s2s.worker_status()")
	  or croak "the s2s_tracking worker did not start";
	return $self->worker_pid;
}

sub worker_pid
{
	my $self = shift;
	return $self->sql(
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker'");
}

# Sets a setting with ALTER SYSTEM and reloads (the worker gets SIGHUP).
sub set_conf
{
	my ($self, $name, $value) = @_;
	$self->sql("ALTER SYSTEM SET $name = '$value'");
	$self->sql('SELECT pg_reload_conf()');
	return;
}

# add_endpoint(NAME, KIND, URL, secret => ..., column => value...).
sub add_endpoint
{
	my ($self, $name, $kind, $url, %cols) = @_;
	$cols{secret} //= $kind eq 'affilae'
	  ? '0123456789abcdef01234567-89abcdef0123456789abcdef'
	  : 'test-s2s-token';
	# endpoints have no implied currency since 0.4.0: EUR unless the test says otherwise
	# (currency => undef: none)
	$cols{currency} = 'EUR' unless exists $cols{currency};
	delete $cols{currency} unless defined $cols{currency};
	my @names = ('name', 'kind', 'url', sort keys %cols);
	my @values = ($name, $kind, $url, map { $cols{$_} } sort keys %cols);
	my $list = join(', ', map { quote_literal($_) } @values);
	$self->sql('INSERT INTO s2s.endpoints (' . join(', ', @names) . ") VALUES ($list)");
	return;
}

# Enqueues N Affilae conversions for ENDPOINT (order ids FROM+1 .. FROM+N), in one
# transaction, as the orders trigger would: the worker is woken at commit.
sub enqueue_conversions
{
	my ($self, $endpoint, $n, $from) = @_;
	$from //= 0;
	my $ep = quote_literal($endpoint);
	$self->sql(<<"SQL");
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, amount, currency,
                            payment, click_ids, client_ip, user_agent, referer)
SELECT $ep, 'conversion', 'order-' || i, 'order-' || i, 10 + i * 0.01, 'EUR', 'online',
       '603ed1800000000000000000', '192.0.2.1', 'Mozilla/5.0 test', 'https://shop.example/'
  FROM generate_series($from + 1, $from + $n) AS i;
SELECT s2s.wake();
SQL
	return;
}

# Private resident memory (RssAnon, kB) of a process, from /proc: shared buffers the
# process touched are not counted, so this is its own heap.
sub rss_kb
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/status") or return undef;
	while (<$fh>)
	{
		return $1 if /^RssAnon:\s+(\d+)\s+kB/;
	}
	return undef;
}

sub quote_literal
{
	my $v = shift;
	return 'NULL' unless defined $v;
	$v =~ s/'/''/g;
	return "'$v'";
}

# The extension's version: default_version in the tree's control file, the one place it
# is written (the Makefile builds the library's User-Agent from it).
my $CONTROL = File::Spec->rel2abs(dirname(__FILE__) . '/../../../s2s_tracking.control');

sub control_version
{
	open(my $fh, '<', $CONTROL) or croak "cannot open $CONTROL: $!";
	while (my $line = <$fh>)
	{
		return $1 if $line =~ /^default_version\s*=\s*'([^']+)'/;
	}
	croak "no default_version in $CONTROL";
}

1;
