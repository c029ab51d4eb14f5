# S2S::Failover: what the failover tests (070 streaming replication, 071 pg_auto_failover)
# share: a shop's orders table tracked for one Affilae endpoint, a checkout that keeps
# committing orders in the background (and notes which commits were acknowledged), and
# the reading of what the receiver got.
#
#   $node->sql(S2S::Failover::orders_sql('aff'));
#   $node->sql(S2S::Failover::insert_sql(1, 100));          # orders 1..100, one transaction
#   my $w = S2S::Failover::start_writer($connstr, 2001, 1000, 10, $psql);
#   $w->acked;  $w->wait;  $w->stop;                        # highest acknowledged order id
#   my $got = S2S::Failover::received($receiver);          # {order id => times received}
package S2S::Failover;

use strict;
use warnings;
use Carp;
use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

my %LIVE;    # pid => writer, stopped at the end of the script

# The orders table and its trigger: every inserted order is a validated order, its
# conversion enqueued in the order's transaction (id = order number).
sub orders_sql
{
	my ($endpoint) = @_;
	return <<"SQL";
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    number text NOT NULL,
    amount numeric(12,2) NOT NULL,
    currency text NOT NULL DEFAULT 'EUR',
    aecid text,
    ip inet,
    ua text
);
SELECT s2s.track_orders('orders', '$endpoint', order_id => 'number', amount => 'amount',
                        currency => 'currency', click_ids => 'aecid', payment => '''online''',
                        client_ip => 'ip', user_agent => 'ua');
SQL
}

# Orders FROM..TO in one INSERT (one transaction), each with a click ID a minute old.
sub insert_sql
{
	my ($from, $to) = @_;
	return <<"SQL";
INSERT INTO orders (id, number, amount, aecid, ip, ua)
SELECT i, i::text, 10 + i * 0.01,
       lpad(to_hex(extract(epoch FROM now())::bigint - 60), 8, '0') || '0000000000000001',
       '192.0.2.1', 'Mozilla/5.0 (failover test)'
  FROM generate_series($from, $to) AS i
SQL
}

# A checkout in the background: orders FROM .. FROM+N-1 in transactions of BATCH orders, one
# psql each (PSQL: the command as a list, e.g. ['psql', '-X', '-d', $connstr]), a pause of
# 50 ms between them. After each acknowledged COMMIT the batch's last id is written to a
# file; the writer stops at the first failure (the server went away).
sub start_writer
{
	my ($from, $n, $batch, $psql) = @_;
	my $dir = tempdir('s2s_writer_XXXXXX', TMPDIR => 1, CLEANUP => 1);
	my $ack = "$dir/acked";
	my $pid = fork();
	croak "fork failed: $!" unless defined $pid;
	if ($pid == 0)
	{
		# The child must not run the parent's END blocks (they stop the test's servers).
		my $rc = 0;
		for (my $a = $from; $a < $from + $n; $a += $batch)
		{
			my $b = $a + $batch - 1;
			$b = $from + $n - 1 if $b > $from + $n - 1;
			my $ok = system('timeout', '30', @$psql, '-q', '-v', 'ON_ERROR_STOP=1',
				'-c', insert_sql($a, $b)) == 0;
			unless ($ok) { $rc = 1; last; }
			if (open(my $fh, '>>', $ack))
			{
				print $fh "$b\n";
				close $fh;
			}
			sleep(0.05);
		}
		POSIX::_exit($rc);
	}
	my $self = bless { pid => $pid, ack => $ack, from => $from }, __PACKAGE__;
	$LIVE{$pid} = $self;
	return $self;
}

# The highest order id whose transaction was acknowledged (FROM-1 when none yet).
sub acked
{
	my $self = shift;
	my $last = $self->{from} - 1;
	if (open(my $fh, '<', $self->{ack}))
	{
		while (<$fh>) { $last = $1 if /^(\d+)$/ && $1 > $last; }
		close $fh;
	}
	return $last;
}

# Waits (bounded) until order ID was acknowledged; returns whether it was.
sub wait_acked
{
	my ($self, $id, $timeout_s) = @_;
	my $deadline = time() + ($timeout_s // 60);
	while ($self->acked < $id && time() < $deadline)
	{
		my $pid = $self->{pid} or last;
		if (waitpid($pid, WNOHANG) == $pid)
		{
			$self->{pid} = undef;    # it ended (failed or done)
			delete $LIVE{$pid};
			last;
		}
		sleep(0.05);
	}
	return $self->acked >= $id;
}

# Waits (bounded) for the writer to end; kills it after TIMEOUT seconds.
sub wait
{
	my ($self, $timeout_s) = @_;
	my $pid = $self->{pid} or return;
	my $deadline = time() + ($timeout_s // 60);
	while (time() < $deadline)
	{
		if (waitpid($pid, WNOHANG) == $pid) { $self->{pid} = undef; delete $LIVE{$pid}; return; }
		sleep(0.05);
	}
	$self->stop;
}

sub stop
{
	my $self = shift;
	my $pid = $self->{pid} or return;
	$self->{pid} = undef;
	delete $LIVE{$pid};
	kill 'KILL', $pid;
	waitpid($pid, 0);
	return;
}

# Per order id, how many times the receiver got its conversion.
sub received
{
	my ($r) = @_;
	my %n;
	$n{ S2S::Receiver::query_params($_)->{id} }++ for @{ $r->requests };
	return \%n;
}

# The receiver's requests that arrived at or after TIME (epoch seconds), oldest first.
sub requests_since
{
	my ($r, $t) = @_;
	return [ sort { $a->{time} <=> $b->{time} } grep { $_->{time} >= $t } @{ $r->requests } ];
}

END
{
	local $?;
	$_->stop for grep { defined } values %LIVE;
}

1;
