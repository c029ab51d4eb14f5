# Two-phase commit: an order paid in a transaction that is prepared (PREPARE TRANSACTION)
# and later committed (COMMIT PREPARED, here from another session) is delivered right
# after the COMMIT PREPARED, not at the next poll (one hour here: only the worker watching
# the prepared transaction explains a prompt delivery). Nothing leaves while it is only
# prepared, nor after ROLLBACK PREPARED. Prepared transactions survive a restart, and so
# more than the shared inbox holds (64): both are found by reading pg_prepared_xacts.
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
my $node = S2S::Node->create('twophase',
	conf => {
		's2s_tracking.poll_interval' => "'1h'",
		'max_prepared_transactions' => 100,
	});
$node->add_endpoint('aff', 'affilae', $r->url . '/aff');
$node->sql(<<'SQL');
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    amount numeric(12,2),
    status text NOT NULL DEFAULT 'new',
    aecid text
);
SELECT s2s.track_orders('orders', 'aff', order_id => 'id', amount => 'amount',
                        currency => '''EUR''', click_ids => 'aecid',
                        status => 'status', validated_statuses => ARRAY['paid']);
SQL
$node->wait_for("SELECT last_loop_at > started_at FROM s2s.worker_status()");
my $click = $node->sql(
	"SELECT lpad(to_hex(extract(epoch FROM now())::bigint - 60), 8, '0') || '0000000000000000'");

# An order paid in a prepared transaction.
sub prepare_order
{
	my ($id, $gid) = @_;
	return "BEGIN; INSERT INTO orders VALUES ($id, 10.5, 'paid', '$click'); "
	  . "PREPARE TRANSACTION '$gid';";
}

# Waits (bounded) for n requests; returns the seconds it took.
sub delivered_within
{
	my ($n, $max) = @_;
	my $t0 = time;
	my $reqs = $r->wait_requests($n, $max);
	return (scalar @$reqs, time - $t0);
}

# 1. Prepared: nothing leaves. COMMIT PREPARED: delivered at once.
$node->sql(prepare_order(1, 'o1'));
sleep 1;
is(scalar @{ $r->requests }, 0, 'nothing is sent while the transaction is only prepared');
$node->sql("COMMIT PREPARED 'o1'");
my ($n, $secs) = delivered_within(1, 20);
is($n, 1, 'the order committed by COMMIT PREPARED is delivered');
cmp_ok($secs, '<', 10, 'promptly after COMMIT PREPARED, not at the next poll (1 h)');
$node->poll("SELECT status = 'sent' FROM s2s.deliveries WHERE dedupe_key = 'order:1'", 'and recorded as sent');

# 2. ROLLBACK PREPARED: nothing leaves, nothing is queued.
$r->reset;
$node->sql(prepare_order(2, 'o2'));
$node->sql("ROLLBACK PREPARED 'o2'");
sleep 1;
is(scalar @{ $r->requests }, 0, 'a rolled-back prepared order is not sent');
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE dedupe_key = 'order:2'"), '0',
	'nor queued');
# The worker stops watching it: a later prepared order still leaves promptly.
$node->sql(prepare_order(3, 'o3'));
$node->sql("COMMIT PREPARED 'o3'");
($n, $secs) = delivered_within(1, 20);
is($n, 1, 'an order prepared after a rollback is delivered');
cmp_ok($secs, '<', 10, 'promptly');

# 3. More prepared transactions than the inbox holds, committed together.
$r->reset;
$node->sql(join("\n", map { prepare_order(100 + $_, "m$_") } 1 .. 80));
is($node->sql("SELECT count(*) FROM pg_prepared_xacts"), '80', 'eighty prepared orders');
$node->sql(join("\n", map { "COMMIT PREPARED 'm$_';" } 1 .. 80));
($n, $secs) = delivered_within(80, 30);
is($n, 80, 'all eighty delivered after COMMIT PREPARED');
cmp_ok($secs, '<', 20, 'promptly');

# 4. A restart between PREPARE and COMMIT PREPARED (the inbox in shared memory is gone).
$r->reset;
$node->sql(prepare_order(4, 'o4'));
# (stop and start rather than restart: pg_ctl restart runs the binary recorded in
# postmaster.opts, which bypasses the wrapper of the ASan runs, test/asan/run)
$node->stop;
$node->start;
$node->wait_worker;
$node->sql("COMMIT PREPARED 'o4'");
($n, $secs) = delivered_within(1, 20);
is($n, 1, 'an order prepared before a restart is delivered after COMMIT PREPARED');
cmp_ok($secs, '<', 10, 'promptly');
is(S2S::Receiver::query_params($r->requests->[0])->{id}, '4', 'that request is order 4');

is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE status = 'sent'"), '83',
	'every committed order sent once');

$node->stop;
$r->stop;
done_testing();
