# Crash safety while draining thousands of deliveries: the worker killed with kill -9
# (the postmaster restarts everything), then the whole server stopped with
# "pg_ctl stop -m immediate" and started again. Every delivery is sent in the end, and a
# delivery reaches the receiver twice only if it was in flight at the crash.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;
use S2S::Receiver;

my $max_in_flight = 32;

# A delivery can be sent twice only if the crash fell between its send and the commit of
# its write-back: at most max_concurrency requests on the wire, plus at most as many that
# were answered and await the write-back that commits together with the next claim.
my $max_unrecorded = 2 * $max_in_flight;
my $r = S2S::Receiver->start;
my $node = S2S::Node->create('crash',
	conf => {
		's2s_tracking.max_concurrency' => $max_in_flight,
		's2s_tracking.endpoint_concurrency' => $max_in_flight,
		'restart_after_crash' => 'on',
	});
$node->add_endpoint('aff', 'affilae', $r->url . '/aff');

sub check_round
{
	my ($what, $total, $received) = @_;
	$node->poll("SELECT count(*) = $total FROM s2s.deliveries WHERE status = 'sent'",
		"$what: every delivery sent in the end");
	my $n = $r->received_ids;
	is(scalar keys %$n, $received, "$what: the receiver got every order");
	my $dups = grep { $_ > 1 } values %$n;
	cmp_ok($dups, '<=', $max_unrecorded,
		"$what: duplicates ($dups) no more than were sent but not yet recorded");
	is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE status <> 'sent' OR claim_token IS NOT NULL"),
		'0', "$what: no row left claimed");
}

# 1. kill -9 of the worker while draining.
$r->behave(delay_ms => 2);
$node->enqueue_conversions('aff', 5000);
$node->poll("SELECT count(*) >= 500 FROM s2s.deliveries WHERE status = 'sent'", 'draining');
my $pid = $node->worker_pid;
ok(kill('KILL', $pid), "worker $pid killed with SIGKILL");
ok($node->wait_for("SELECT pid IS NOT NULL AND pid <> $pid FROM s2s.worker_status()"),
	'server restarted after the crash, new worker running');
like(slurp_file($node->logfile), qr/gave back \d+ deliveries left in flight by a previous worker|terminated by signal 9/,
	'the crash is in the log');
check_round('kill -9', 5000, 5000);

# 2. pg_ctl stop -m immediate while draining, then start.
$r->reset;
$r->behave(delay_ms => 2);
$node->enqueue_conversions('aff', 5000, 5000);
$node->poll("SELECT count(*) >= 5500 FROM s2s.deliveries WHERE status = 'sent'", 'draining again');
$node->stop('immediate');
$node->start;
check_round('stop -m immediate', 10000, 5000);

$node->stop;
$r->stop;
done_testing();
