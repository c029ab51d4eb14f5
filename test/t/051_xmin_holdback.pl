# A long-running transaction that holds back xmin for a minute must not stall a drain.
#
# While a REPEATABLE READ transaction keeps its snapshot open, no row version the worker
# leaves behind (each delivery is updated twice: claimed, then sent) can be pruned or
# vacuumed, and the index entries of the waiting rows cannot be killed. A claim that
# walked those dead versions would slow down as the backlog drains, and a drain could
# crawl. Here a first backlog is drained without the old snapshot (the reference), then a
# second one of the same size while a transaction holds xmin back (for a minute, or
# longer if the drain takes longer): it must be drained while the transaction is still
# open, at no less than a quarter of the reference rate (a stall would be orders of
# magnitude slower; the margin absorbs a busy machine). The rates are printed.
#
#   S2S_XMIN_N=20000  deliveries per backlog     S2S_XMIN_HOLD=60  seconds held
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use S2S::Node;
use S2S::Receiver;

my $N = $ENV{S2S_XMIN_N} // 20000;
my $HOLD = $ENV{S2S_XMIN_HOLD} // 60;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('xmin', conf => { 'log_min_messages' => 'warning' });
$node->add_endpoint('aff', 'affilae', $r->url . '/aff');

# Waits (bounded by $limit seconds) until every delivery is sent; returns the seconds.
sub drain
{
	my ($total, $limit) = @_;
	my $t0 = time();
	while (time() - $t0 < $limit)
	{
		return time() - $t0
		  if $node->sql("SELECT count(*) FROM s2s.deliveries WHERE status = 'sent'") == $total;
		sleep(0.2);
	}
	return undef;
}

# 1. the reference: a drain with no old snapshot around
$node->enqueue_conversions('aff', $N);
my $t_ref = drain($N, 300);
ok(defined $t_ref, "reference drain of $N deliveries done");
$r->reset;

# 2. the same drain while a transaction holds xmin back
my $limit = 4 * ($t_ref // 300);
my $holder = $node->background_psql('postgres', timeout => $HOLD + $limit + 60);
$holder->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
my $holder_pid = $holder->query_safe('SELECT pg_backend_pid()');
$holder->query_safe('SELECT count(*) FROM s2s.deliveries');
my $t_hold = time();
my $xmin = $node->sql("SELECT backend_xmin FROM pg_stat_activity WHERE pid = $holder_pid");
ok($xmin ne '', "the transaction holds xmin $xmin");

$node->enqueue_conversions('aff', $N, $N);
my $t_held = drain(2 * $N, $limit);
ok(defined $t_held, sprintf("drain of %d deliveries done while xmin is held, within 4 times the reference (%.0f s)", $N, $limit));
is($node->sql("SELECT backend_xmin || ' ' || state FROM pg_stat_activity WHERE pid = $holder_pid"),
	"$xmin idle in transaction", 'the old snapshot was still held when the drain ended');
my $dead = $node->sql(
	"SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 's2s.deliveries'::regclass");
is(scalar(keys %{ { map { S2S::Receiver::query_params($_)->{id} => 1 } @{ $r->requests } } }),
	$N, 'the receiver got every conversion of the second backlog');

# hold for the rest of the minute, then let go
sleep(0.5) while time() - $t_hold < $HOLD;
$holder->query_safe('COMMIT');
$holder->quit;

diag(sprintf("reference: %d deliveries in %.1f s (%.0f/s); with xmin held: %.1f s (%.0f/s), %s dead row versions kept; snapshot held %.0f s",
		$N, $t_ref, $N / $t_ref, $t_held // -1, $t_held ? $N / $t_held : 0, $dead,
		time() - $t_hold));
$node->stop;
done_testing();
