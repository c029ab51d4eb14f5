# Many databases per cluster (issue 13, item 3): a launcher starts one worker per database
# named in s2s_tracking.database (a list, or "*" for every database that has the
# extension), within s2s_tracking.max_databases.
#
# Named list: three shop databases, one of them with an endpoint at a hanging receiver;
# with the caps at 4 requests in flight and the safety-net poll at a minute, the other two
# deliver at once (their own process, caps and wake-on-commit); each database's
# s2s.worker_status() shows its own worker and counters; a fourth database beyond
# max_databases gets a clear log line, once; DROP DATABASE of a served database succeeds.
# "*": a database without the extension gets no lasting worker, CREATE EXTENSION is picked
# up within seconds, DROP EXTENSION and DROP DATABASE make the worker leave, and DROP
# DATABASE succeeds while requests are in flight.
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
$r->behave(mode => 'hang', path_prefix => '/hang/');

my $node = S2S::Node->create('dbs', extension => 0, conf => {
	's2s_tracking.database' => "'shop_a, shop_b,shop_c , shop_d'",
	's2s_tracking.max_databases' => 3,
	's2s_tracking.max_concurrency' => 4,
	's2s_tracking.endpoint_concurrency' => 4,
	's2s_tracking.request_timeout' => "'5min'",
	's2s_tracking.poll_interval' => "'1min'",
});

sub workers_in
{
	my ($db) = @_;
	return $node->sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker' AND datname = '$db'");
}

sub in_db { my ($db, $q) = @_; return $node->safe_psql($db, $q); }

is($node->sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 's2s_tracking launcher'"), '1',
	'one launcher');
ok($node->wait_for("SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker'")
	  && slurp_file($node->logfile) =~ /database "shop_a", "shop_b", "shop_c", "shop_d" named in s2s_tracking.database does not exist/,
	'no worker while the named databases do not exist, and the launcher says so');

for my $db (qw(shop_a shop_b shop_c))
{
	$node->sql("CREATE DATABASE $db");
	in_db($db, 'CREATE EXTENSION s2s_tracking');
}
for my $db (qw(shop_a shop_b shop_c))
{
	$node->poll_db($db, 'SELECT pid IS NOT NULL FROM s2s.worker_status()', "$db: its worker runs");
}
for my $db (qw(shop_a shop_b shop_c))
{
	is(workers_in($db), '1', "$db: one worker, connected to it");
}

in_db('shop_a', "INSERT INTO s2s.endpoints (name, kind, url, secret) VALUES ('aff', 'affilae', '" . $r->url . "/hang/', '0123456789abcdef01234567-89abcdef0123456789abcdef')");
in_db($_, "INSERT INTO s2s.endpoints (name, kind, url, secret) VALUES ('aff', 'affilae', '" . $r->url . "/$_/', '0123456789abcdef01234567-89abcdef0123456789abcdef')")
  for qw(shop_b shop_c);

my $enqueue = "INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, amount, currency, click_ids)
SELECT 'aff', 'conversion', 'order-' || i, 'order-' || i, 10, 'EUR', '603ed1800000000000000000'
  FROM generate_series(1, %d) i; SELECT s2s.wake();";

# shop_a's endpoint hangs: its worker's caps are full with 4 requests that never end.
in_db('shop_a', sprintf($enqueue, 50));
$node->poll_db('shop_a', 'SELECT in_flight = 4 FROM s2s.worker_status()',
	'shop_a: 4 requests hang in flight (its caps are full)');

# The others deliver at once, woken by their own commits (the poll is a minute away).
in_db('shop_b', sprintf($enqueue, 30));
in_db('shop_c', sprintf($enqueue, 20));
$node->poll_db('shop_b', "SELECT count(*) = 30 FROM s2s.deliveries WHERE status = 'sent'",
	'shop_b delivers while shop_a hangs');
$node->poll_db('shop_c', "SELECT count(*) = 20 FROM s2s.deliveries WHERE status = 'sent'",
	'shop_c delivers while shop_a hangs');
is(in_db('shop_a', "SELECT count(*) FROM s2s.deliveries WHERE status = 'sent'"), '0',
	'shop_a sent nothing');

# Each database's worker_status() is its own worker's.
for my $case ([ 'shop_a', 0, 4 ], [ 'shop_b', 30, 0 ], [ 'shop_c', 20, 0 ])
{
	my ($db, $sent, $in_flight) = @$case;
	my $pid = $node->sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker' AND datname = '$db'");
	is(in_db($db, 'SELECT pid, sent, in_flight FROM s2s.worker_status()'), "$pid|$sent|$in_flight",
		"$db: worker_status() shows its own worker (pid $pid), sent $sent, in flight $in_flight");
}

# A fourth database beyond max_databases (3): one clear log line, however long it waits.
$node->sql('CREATE DATABASE shop_d');
in_db('shop_d', 'CREATE EXTENSION s2s_tracking');
ok($node->wait_for("SELECT pg_read_file('" . $node->logfile . "') ~ 'cannot start a worker for database \"shop_d\": s2s_tracking.max_databases \\(3\\) workers already run'"),
	'a database beyond max_databases is logged');
sleep(3);
my @lines = (slurp_file($node->logfile) =~ /s2s_tracking.max_databases \(3\) workers already run/g);
is(scalar(@lines), 1, 'once');
is(in_db('shop_d', 'SELECT pid IS NULL FROM s2s.worker_status()'), 't', 'shop_d has no worker');

# DROP DATABASE of a served database, without FORCE: its worker leaves for it, and the
# fourth database gets the slot.
my ($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE shop_c');
is($rc, 0, 'DROP DATABASE shop_c succeeds while its worker runs') or diag($err);
$node->poll_db('shop_d', 'SELECT pid IS NOT NULL FROM s2s.worker_status()',
	'shop_d gets the freed slot');
ok($node->wait_for("SELECT pg_read_file('" . $node->logfile . "') ~ 'database \"shop_c\" named in s2s_tracking.database does not exist'"),
	'the launcher says shop_c is gone');

# shop_a's worker, hanging all along, still serves shop_a alone.
is(in_db('shop_a', 'SELECT in_flight FROM s2s.worker_status()'), '4', 'shop_a still has its 4 requests in flight');

# The list is read again on reload: a database no longer named loses its worker (shop_a's
# gives its hanging requests back), one added gets one.
$node->set_conf('s2s_tracking.database', 'shop_b, postgres');
ok($node->wait_for("SELECT string_agg(datname, ',' ORDER BY datname) = 'postgres,shop_b' FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker'"),
	'after a reload, the workers are those of the new list');
is(in_db('shop_a', "SELECT count(*) FROM s2s.deliveries WHERE status = 'sending'"), '0',
	'shop_a\'s requests in flight were given back');
$node->stop;

# "*": every database that has the extension.
my $star = S2S::Node->create('star', conf => { 's2s_tracking.database' => "'*'" });
$star->sql('CREATE DATABASE shop_x');
my $waiting = 0;
for (1 .. 12)
{
	$waiting += $star->sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker' AND datname = 'shop_x' AND query = 'waiting for extension s2s_tracking'");
	sleep(0.25);
}
is($waiting, 0, '"*": no worker stays waiting in a database without the extension');
unlike(slurp_file($star->logfile), qr/not installed in database "shop_x"/, 'and nothing logged about it');

$star->safe_psql('shop_x', 'CREATE EXTENSION s2s_tracking');
ok($star->poll_query_until('shop_x', 'SELECT pid IS NOT NULL FROM s2s.worker_status()'),
	'"*": CREATE EXTENSION is picked up without a restart');
$star->safe_psql('shop_x', "INSERT INTO s2s.endpoints (name, kind, url, secret) VALUES ('aff', 'affilae', '" . $r->url . "/x/', '0123456789abcdef01234567-89abcdef0123456789abcdef')");
$star->safe_psql('shop_x', sprintf($enqueue, 10));
ok($star->poll_query_until('shop_x', "SELECT count(*) = 10 FROM s2s.deliveries WHERE status = 'sent'"),
	'"*": shop_x delivers');
ok($star->poll_query_until('postgres', 'SELECT pid IS NOT NULL FROM s2s.worker_status()'),
	'"*": postgres (which has the extension) is served too');

# (DROP EXTENSION never meets the worker in a deadlock: TAP 077.)
($rc, $out, $err) = $star->psql('shop_x', 'DROP EXTENSION s2s_tracking');
is($rc, 0, '"*": DROP EXTENSION succeeds') or diag($err);
ok($star->wait_for("SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker' AND datname = 'shop_x'"),
	'"*": the worker leaves after DROP EXTENSION');

# DROP DATABASE while the worker has requests in flight (a hanging endpoint).
$star->safe_psql('shop_x', 'CREATE EXTENSION s2s_tracking');
$star->safe_psql('shop_x', "INSERT INTO s2s.endpoints (name, kind, url, secret) VALUES ('aff', 'affilae', '" . $r->url . "/hang/', '0123456789abcdef01234567-89abcdef0123456789abcdef')");
$star->safe_psql('shop_x', sprintf($enqueue, 5));
ok($star->poll_query_until('shop_x', 'SELECT in_flight = 5 FROM s2s.worker_status()'),
	'"*": the worker is back, with 5 requests in flight');
($rc, $out, $err) = $star->psql('postgres', 'DROP DATABASE shop_x');
is($rc, 0, '"*": DROP DATABASE succeeds while the worker has requests in flight') or diag($err);
sleep(2);
is($star->sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker' AND datname IS DISTINCT FROM 'postgres'"),
	'0', '"*": no worker left for the dropped database');
is($star->sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker' AND datname = 'postgres'"),
	'1', '"*": postgres keeps its worker');
$star->stop;
done_testing();
