# Failover with PostgreSQL's own streaming replication (issue 13, item 1).
#
# A primary and a streaming standby, both preloading s2s_tracking with the same settings,
# synchronous replication on (synchronous_commit = on, the standby named in
# synchronous_standby_names). 2,000 orders are committed, then a checkout keeps committing
# orders while the worker drains them to a slow receiver; mid-drain the primary is killed
# (pg_ctl stop -m immediate); a pause; the standby is promoted. Checked:
#   - nothing reaches the receiver from the standby before its promotion (no worker runs
#     in recovery: the receiver's count does not move between the kill and the promotion);
#   - every order acknowledged to the checkout is on the new primary, and every order on
#     the new primary reaches the receiver (distinct ids = committed orders), and nothing
#     else does (no conversion of an order the new primary does not have);
#   - duplicates at most s2s_tracking.max_concurrency (the bound, below);
#   - the dead primary's 'sending' rows are given back on the new primary, not burned:
#     every delivery ends 'sent' with exactly one counted attempt and one s2s.attempts row;
#   - the new primary takes orders (no synchronous standby left to wait for) and sends them.
#
# The bound. A conversion reaches the receiver twice only if the primary sent it and the
# standby does not know it was sent: its write-back was not replicated. A write-back
# commits synchronously, so with synchronous replication it is on the standby before it is
# visible on the primary; what the standby can miss is only rows that were 'sending' on the
# primary at the kill (claimed, sent or about to be, the write-back not yet acknowledged),
# including claims committed with synchronous_commit = off that had not reached the standby
# (those are 'pending' there). The worker never holds more than max_concurrency rows
# 'sending': a claim takes at most max_concurrency minus the requests in flight, and answered
# requests give their room back only in the transaction that writes them back. So:
#     duplicates <= rows 'sending' on the primary at the kill <= max_concurrency.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use S2S::Node;
use S2S::Receiver;
use S2S::Failover;

# Draining thousands of orders through a slow receiver on a busy machine: bounded waits of
# two minutes (each ends as soon as its condition holds).
$PostgreSQL::Test::Utils::timeout_default = $ENV{S2S_TEST_WAIT} // 120;

my $max_concurrency = 16;
my $first_orders = 2000;     # committed before the drain starts
my $more_orders = 2000;      # committed by the checkout while the primary dies
my $delay_ms = 100;          # the receiver's answer time: at most 160 requests/s

my $r = S2S::Receiver->start;
$r->behave(delay_ms => $delay_ms);

my %conf = (
	S2S::Node::default_conf(),
	's2s_tracking.max_concurrency' => $max_concurrency,
	's2s_tracking.endpoint_concurrency' => $max_concurrency,
	'synchronous_commit' => 'on',
	'shared_buffers' => "'32MB'",
	'log_line_prefix' => "'%m [%p] '",
);
my $conf_text = join('', map { "$_ = $conf{$_}\n" } sort keys %conf);

my $primary = PostgreSQL::Test::Cluster->new('primary');
bless $primary, 'S2S::Node';
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $conf_text);
$primary->start;
$primary->sql('CREATE EXTENSION s2s_tracking');
$primary->wait_worker;
$primary->add_endpoint('aff', 'affilae', $r->url . '/aff');
$primary->sql(S2S::Failover::orders_sql('aff'));

# The standby: same settings (they come with the backup), streaming, named for sync rep.
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
bless $standby, 'S2S::Node';
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf',
	"primary_conninfo = '" . $primary->connstr . " application_name=standby'\n");
$standby->start;
$primary->append_conf('postgresql.conf', "synchronous_standby_names = 'standby'\n");
$primary->reload;
$primary->poll(
	"SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = 'standby' AND sync_state = 'sync' AND state = 'streaming'",
	'the standby streams synchronously');
is($standby->sql('SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
is($standby->sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker'"),
	'0', 'no s2s_tracking worker runs on the standby');

# 2,000 orders in 20 transactions, then the drain starts: the endpoint is disabled
# meanwhile, so that the backlog is whole however slowly the machine commits (the worker
# drains at most 160/s; committing 20 transactions took 20 s on a busy machine, and the
# drain had nearly caught up when the kill came, leaving the new primary nothing to send).
$primary->sql("UPDATE s2s.endpoints SET enabled = false WHERE name = 'aff'");
for my $b (0 .. 19)
{
	$primary->sql(S2S::Failover::insert_sql($b * 100 + 1, $b * 100 + 100));
}
$primary->sql("UPDATE s2s.endpoints SET enabled = true WHERE name = 'aff'");
$primary->poll("SELECT count(*) >= 100 FROM s2s.deliveries WHERE status = 'sent'",
	'the primary is draining');

# The checkout goes on: orders 2001..4000, 20 per transaction; the kill comes once it
# committed 100 of them and the worker sent 800.
my $writer = S2S::Failover::start_writer($first_orders + 1, $more_orders, 20,
	[ 'psql', '-X', '-d', $primary->connstr('postgres') ]);
ok($writer->wait_acked($first_orders + 100, 120), 'the checkout commits orders during the drain');
$primary->poll("SELECT count(*) >= 800 FROM s2s.deliveries WHERE status = 'sent'",
	'the primary sent 800');

# Mid-drain: the standby sees rows 'sending' and rows waiting, and has no worker.
my $waiting_standby = $standby->sql(
	"SELECT count(*) FROM s2s.deliveries WHERE status IN ('pending', 'retrying')");
cmp_ok($waiting_standby, '>', 0, "mid-drain: $waiting_standby deliveries still waiting");
my $sending_primary = $primary->sql("SELECT count(*) FROM s2s.deliveries WHERE status = 'sending'");
note("rows 'sending' on the primary just before the kill: $sending_primary");
cmp_ok($sending_primary, '<=', $max_concurrency, 'the primary never has more than max_concurrency claimed');

# Kill the primary.
my $t_kill = time();
$primary->stop('immediate');
my $t_killed = time();
$writer->wait(60);
my $acked = $writer->acked;
note(sprintf('primary killed in %.2f s; orders acknowledged to the checkout: 1..%d', $t_killed - $t_kill, $acked));
cmp_ok($acked, '<', $first_orders + $more_orders, 'the kill fell while the checkout was committing');

# Before the promotion: nothing reaches the receiver. A request the dead primary had
# written to a socket may still be read by the receiver just after the kill: 1 s to settle.
sleep(1);
my $n_after_kill = $r->count;
is($standby->sql('SELECT pg_is_in_recovery()'), 't', 'the standby is still in recovery');
is($standby->sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker'"),
	'0', 'still no worker on the standby');
is($standby->sql('SELECT pid IS NULL FROM s2s.worker_status()'), 't',
	"the standby's worker_status() shows no worker");
my $sending_standby = $standby->sql("SELECT count(*) FROM s2s.deliveries WHERE status = 'sending'");
sleep(3);
is($r->count, $n_after_kill, 'nothing was sent between the kill and the promotion (3 s)');

# Promote.
my $t_promote = time();
$standby->promote;
$standby->wait_worker;
my $committed = $standby->sql('SELECT count(*) FROM orders');
is($standby->sql("SELECT count(*) FROM orders WHERE id <= $acked"), $acked,
	"every acknowledged order (1..$acked) is on the new primary");
is($standby->sql('SELECT max(id) = count(*) FROM orders'), 't', 'and no order is missing in between');
$standby->poll("SELECT count(*) = $committed FROM s2s.deliveries WHERE status = 'sent'",
	"the new primary sends every committed order's conversion ($committed)");

my $after = S2S::Failover::requests_since($r, $t_promote);
ok(@$after > 0, 'the new primary sent');
my $first_after = @$after ? $after->[0]{time} : $t_promote;
my $got = S2S::Failover::received($r);
is(scalar(keys %$got), $committed, 'the receiver got every committed order');
my $phantoms = grep { !/^\d+$/ || $_ < 1 || $_ > $committed } keys %$got;
is($phantoms, 0, 'and no conversion of an order the new primary does not have');
my $dups = 0;
$dups += $_ - 1 for values %$got;
cmp_ok($dups, '<=', $max_concurrency,
	"duplicates ($dups) at most max_concurrency ($max_concurrency)");

# Given back, not burned.
like(slurp_file($standby->logfile),
	qr/gave back $sending_standby deliveries left in flight by a previous worker/,
	"the new primary's worker gave back the $sending_standby rows 'sending' at the kill")
  if $sending_standby > 0;
is($standby->sql(
		"SELECT count(*) FROM s2s.deliveries d WHERE status <> 'sent' OR attempts <> 1 "
		  . "OR (SELECT count(*) FROM s2s.attempts a WHERE a.delivery_id = d.id) <> 1"),
	'0', 'every delivery sent with exactly one counted attempt: nothing burned, none failed');

# The new primary takes orders (no synchronous standby to wait for) and sends them.
$standby->sql(S2S::Failover::insert_sql($committed + 1, $committed + 100));
$standby->poll("SELECT count(*) = $committed + 100 FROM s2s.deliveries WHERE status = 'sent'",
	'new orders on the new primary are sent');

diag(sprintf(
		'failover figures (streaming replication): %d orders committed (%d acknowledged), '
		  . "%d rows 'sending' on the primary at the kill, %d on the standby (given back); "
		  . 'first delivery from the new primary %.2f s after the promotion started '
		  . '(%.2f s after the kill, 4 s of it the deliberate pause); duplicates %d (bound %d)',
		$committed, $acked, $sending_primary, $sending_standby,
		$first_after - $t_promote, $first_after - $t_killed, $dups, $max_concurrency));

$standby->stop;
$r->stop;
done_testing();
