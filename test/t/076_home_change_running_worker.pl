# A change of the queue's home is seen by a worker that is already delivering, before its
# next claim. The worker checks s2s_private.home in every claim's transaction, and reads it
# straight from the table when every row is this home (src/home.c): a row from elsewhere
# committed with new deliveries (what a restore into a served database brings), or the
# home's rows deleted, must be seen by the very next claim, whatever the worker read
# before. (Copies found by a worker that starts in them: 057_copies.pl, 052.)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('home_change');
$node->add_endpoint('aff', 'affilae', $r->url . '/aff/');

# The worker delivers: it has passed the home check in claims already.
$node->enqueue_conversions('aff', 3);
$node->poll("SELECT count(*) = 3 FROM s2s.deliveries WHERE status = 'sent'", 'the worker sends');
is($r->count, 3, 'three requests');

# Waits until the worker has gone round its loop twice more (every chance to claim), bounded.
sub two_loops
{
	my $t0 = $node->sql('SELECT clock_timestamp()');
	return $node->wait_for(
		"SELECT last_loop_at > '$t0'::timestamptz + interval '1.5 s' FROM s2s.worker_status()");
}

# A home from another cluster arrives in the same transaction as five deliveries.
$node->sql(<<'SQL');
BEGIN;
INSERT INTO s2s_private.home (system_identifier, database_oid)
SELECT h.system_identifier + 1, h.database_oid FROM s2s_private.current_home() h;
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, amount, currency,
                            payment, click_ids, client_ip, user_agent, referer)
SELECT 'aff', 'conversion', 'order-' || i, 'order-' || i, 10, 'EUR', 'online',
       '603ed1800000000000000000', '192.0.2.1', 'Mozilla/5.0 test', 'https://shop.example/'
  FROM generate_series(4, 8) AS i;
SELECT s2s.wake();
COMMIT;
SQL
$node->poll(
	"SELECT count(*) = 1 FROM s2s.endpoints WHERE name = 'aff' AND paused_at IS NOT NULL AND pause_reason LIKE 'this database is a copy (%'",
	'the running worker pauses the endpoint of what became a copy');
ok(two_loops(), 'the worker keeps looping');
is($r->count, 3, 'nothing of the five was sent');
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE status = 'pending'"), '5',
	'the five wait');
my @said = (slurp_file($node->logfile) =~ /paused every endpoint of database "postgres": it is a copy/g);
is(scalar(@said), 1, 'one log line');

# Adopted: the five are sent.
is($node->sql('SELECT s2s.adopt_home()'), '1', 's2s.adopt_home() resumes the endpoint');
$node->poll("SELECT count(*) = 8 FROM s2s.deliveries WHERE status = 'sent'", 'the five are sent');
is($r->count, 8, 'eight requests in all');

# Every row of the home deleted: the next claim records this home again, and sends.
$node->sql('DELETE FROM s2s_private.home');
$node->enqueue_conversions('aff', 2, 8);
$node->poll("SELECT count(*) = 10 FROM s2s.deliveries WHERE status = 'sent'",
	'with no home recorded, the worker sends');
is($node->sql(
	"SELECT count(*) FROM s2s_private.home h, s2s_private.current_home() c WHERE (h.system_identifier, h.database_oid) = (c.system_identifier, c.database_oid)")
	  . '/' . $node->sql('SELECT count(*) FROM s2s_private.home'),
	'1/1', 'and records this home again');
is($node->sql("SELECT count(*) FROM s2s.endpoints WHERE paused_at IS NOT NULL"), '0',
	'nothing paused');
$node->stop;
done_testing();
