# One failing unit of work never kills the worker (pg_cron style): a write-back that
# fails (here a trigger added on s2s.attempts raises for one order) is logged and rolled
# back, the worker keeps delivering the others, and the failed delivery's result is held:
# its row stays 'sending' with its lease renewed (never given back, so never sent a
# second time), and the result is written back once the cause is gone.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('errors', conf => { 's2s_tracking.lease' => "'2s'" });
$node->add_endpoint('aff', 'affilae', $r->url . '/aff');
my $pid = $node->worker_pid;

$node->sql(<<'SQL');
CREATE FUNCTION public.refuse_order_1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT dedupe_key FROM s2s.deliveries WHERE id = NEW.delivery_id) = 'order-1' THEN
        RAISE EXCEPTION 'test: attempts row refused';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse BEFORE INSERT ON s2s.attempts
    FOR EACH ROW EXECUTE FUNCTION public.refuse_order_1();
SQL

$node->enqueue_conversions('aff', 1);
is(scalar @{ $r->wait_requests(1, 30) }, 1, 'order-1 sent');
my $log_ok = 0;
for (1 .. 100)
{
	if (slurp_file($node->logfile) =~ /ERROR:  test: attempts row refused/) { $log_ok = 1; last; }
	select(undef, undef, undef, 0.1);
}
ok($log_ok, 'the failed write-back is logged');

$node->enqueue_conversions('aff', 10, 1);
$node->poll("SELECT count(*) = 10 FROM s2s.deliveries WHERE status = 'sent'",
	'the worker keeps delivering the others');
is($node->worker_pid, $pid, 'same worker: the error did not kill it');
is($node->sql("SELECT status FROM s2s.deliveries WHERE dedupe_key = 'order-1'"), 'sending',
	'the delivery whose write-back failed is still claimed');
# well past its 2 s lease and several polls (each gives back expired leases)
sleep 5;
is($node->sql("SELECT status || '|' || (lease_until > now()) FROM s2s.deliveries WHERE dedupe_key = 'order-1'"),
	'sending|true', 'its lease is renewed while its result is held');
is(scalar @{ $r->requests }, 11, 'it was not given back and sent again');

$node->sql('DROP TRIGGER refuse ON s2s.attempts');
$node->poll("SELECT status = 'sent' FROM s2s.deliveries WHERE dedupe_key = 'order-1'",
	'its result is written back once the cause is gone');
is($node->sql("SELECT count(*) || '|' || max(http_status) FROM s2s.attempts a JOIN s2s.deliveries d ON d.id = a.delivery_id WHERE d.dedupe_key = 'order-1'"),
	'1|200', 'one attempt, the 200 it got');
is(scalar @{ $r->requests }, 11, 'eleven requests in all: each order once');
is($node->worker_pid, $pid, 'still the same worker');

$node->stop;
$r->stop;
done_testing();
