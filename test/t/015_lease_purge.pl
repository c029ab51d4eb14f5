# Leases and retention. A claim whose lease expired and that the running worker does not
# hold (a claim of a worker that is gone, a result that could not be written back) is given
# back, its attempt not counted, and claimed again; a stale result never overwrites a newer
# claim's. (A request in flight keeps its lease however long it takes: 062_lease_in_flight.)
# Finished deliveries older than s2s_tracking.retention are purged with their attempts,
# and so are the first-seen times of orders never validated; younger ones and waiting ones
# stay; the purge skips a delivery someone holds (an open re-queue) instead of waiting for
# it, and the delivery re-queued stays. Neither the look for expired leases nor the purge
# reads a whole table.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use List::Util;
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('lease',
	conf => {
		's2s_tracking.lease' => "'1s'",
		's2s_tracking.request_timeout' => "'4s'",
		# a look for expired leases at every poll: several of them in the last section
		's2s_tracking.poll_interval' => "'200ms'",
		'max_prepared_transactions' => 2,
	});
$node->add_endpoint('aff', 'affilae', $r->url . '/aff');

# A delivery left 'sending' under another claim whose lease expired.
$node->sql("INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, currency, click_ids,
                                        status, claim_token, lease_until, attempts, first_attempt_at)
            VALUES ('aff', 'conversion', 'order-0', 'order-0', 'EUR', '603ed1800000000000000000',
                    'sending', 42, now() - interval '1 second', 1, now() - interval '1 minute')");
$node->poll("SELECT status = 'sent' FROM s2s.deliveries", 'expired lease: given back, claimed again and sent');
is(scalar @{ $r->requests }, 1, 'one request: the new claim');
my $before = $node->sql("SELECT status || '|' || attempts || '|' || last_http_status FROM s2s.deliveries");
is($before, 'sent|1|200', 'sent on the new claim, the expired attempt not counted');
is($node->sql("SELECT sent || '|' || retried || '|' || failed FROM s2s.worker_status()"),
	'1|0|0', 'counted once');
is($node->sql("SELECT count(*) FROM s2s.attempts"), '1', 'one attempt row');

# Purge: backdate some finished rows beyond retention, restart the worker (it purges at
# start, then every minute).
$node->enqueue_conversions('aff', 20, 100);
$node->poll("SELECT count(*) = 21 FROM s2s.deliveries WHERE status = 'sent'", 'twenty more sent');
$node->sql("INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, currency, click_ids, status, next_attempt_at)
            VALUES ('aff', 'conversion', 'future', 'future', 'EUR', '603ed1800000000000000000', 'retrying', now() + interval '1 day')");
$node->sql("UPDATE s2s.deliveries SET finished_at = now() - interval '2 days', created_at = now() - interval '2 days' WHERE dedupe_key IN (SELECT 'order-' || i FROM generate_series(101, 110) i)");
# The first-seen times of orders never validated (s2s_private.order_first_seen) go too.
$node->sql("INSERT INTO s2s_private.order_first_seen (endpoint, order_id, first_seen_at)
            VALUES ('aff', 'abandoned', now() - interval '2 days'), ('aff', 'waiting', now())");
$node->set_conf('s2s_tracking.retention', '1d');
my $pid = $node->worker_pid;
kill 'TERM', $pid;
$node->poll("SELECT count(*) = 12 FROM s2s.deliveries", 'old finished deliveries purged');
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE dedupe_key IN (SELECT 'order-' || i FROM generate_series(101, 110) i)"),
	'0', 'exactly the old ones');
is($node->sql("SELECT count(*) FROM s2s.attempts a WHERE NOT EXISTS (SELECT FROM s2s.deliveries d WHERE d.id = a.delivery_id)"),
	'0', 'their attempts went with them');
is($node->sql("SELECT status FROM s2s.deliveries WHERE dedupe_key = 'future'"), 'retrying',
	'a waiting delivery is kept');
$node->poll("SELECT count(*) = 1 FROM s2s_private.order_first_seen", 'old first-seen times purged');
is($node->sql("SELECT order_id FROM s2s_private.order_first_seen"), 'waiting',
	'the first-seen time of an order still waiting is kept');

# The look for expired leases runs at every poll, and the purge every minute, for as long
# as the worker runs, in a table that holds the finished deliveries a shop keeps for
# s2s_tracking.retention (30 days by default) and any backlog: each must read what it
# works on (a chunk of waiting rows, a batch of old finished ones), never a whole table.
# With 20,000 deliveries waiting for a disabled endpoint (a backlog, as the planner sees
# it) and 20,000 finished ones with their attempts, leases left to expire are given back
# and sent, and a batch of deliveries past the retention is purged with their attempts,
# and neither s2s.deliveries nor s2s.attempts is scanned whole once. (Before: with a backlog,
# every look scanned s2s.deliveries whole, 0.34 s of the worker's CPU every poll_interval
# per 1,000,000 rows; every purge batch read the whole of s2s.attempts.) The test's own
# queries go through the unique index on (endpoint, dedupe_key) and the attempts' key.
$node->add_endpoint('held', 'affilae', $r->url . '/held', enabled => 'false');

# N deliveries of endpoint aff, KEY-1 .. KEY-N (KEY alone when N is 1), finished with
# STATUS at FINISHED (an SQL expression of i), each with its one attempt (answered
# HTTP_STATUS), with click ID CLICK (an SQL expression); returns "min id|max id".
sub finished_with_attempt
{
	my ($key, $n, $status, $finished, $http_status, $click) = @_;
	$click //= "'603ed1800000000000000000'";
	my $dedupe = $n == 1 ? "'$key'" : "'$key-' || i";
	return split /\|/, $node->sql(
		"WITH o AS (
		   INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, currency, click_ids,
		                               status, attempts, first_attempt_at, last_http_status,
		                               sent_at, finished_at)
		   SELECT 'aff', 'conversion', $dedupe, $dedupe, 'EUR', $click, '$status', 1, t, $http_status,
		          CASE WHEN '$status' = 'sent' THEN t END, t
		     FROM generate_series(1, $n) i, LATERAL (SELECT $finished AS t) x
		   RETURNING id, finished_at
		 ), a AS (
		   INSERT INTO s2s.attempts (delivery_id, attempt, started_at, duration_ms, http_status)
		   SELECT id, 1, finished_at, 1, $http_status FROM o
		 )
		 SELECT min(id) || '|' || max(id) FROM o");
}
finished_with_attempt('kept', 20000, 'sent', "now() - interval '1 hour'", 200);
$node->enqueue_conversions('held', 20000);
$node->sql('ANALYZE s2s.deliveries');
$node->sql('ANALYZE s2s.attempts');

# COLUMN of pg_stat_user_tables for TABLE.
sub stat_of
{
	my ($table, $column) = @_;
	return $node->sql("SELECT $column FROM pg_stat_user_tables WHERE relid = '$table'::regclass");
}
sub seq_scans { return stat_of($_[0], 'seq_scan'); }
my %seq_scans;

# Waits until the worker's counts of what it did to s2s.deliveries (n_tup_upd or
# n_tup_del, COUNT more than FROM) are in pg_stat_user_tables: they get there after its
# transactions, a second apart at most, and all it counted before with them.
sub counted
{
	my ($column, $from, $count, $what) = @_;
	my $to = $from + $count;
	$node->poll("SELECT $column >= $to FROM pg_stat_user_tables WHERE relid = 's2s.deliveries'::regclass",
		"$what: the worker's counts are in pg_stat_user_tables");
	return stat_of('s2s.deliveries', $column);
}

# A lease left to expire, given back and sent, and its 3 updates (give back, claim,
# write-back) counted.
my $upd = stat_of('s2s.deliveries', 'n_tup_upd');
sub expire_one
{
	my ($k) = @_;
	$node->sql("INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, currency, click_ids,
	                                        status, claim_token, lease_until, attempts, first_attempt_at)
	            VALUES ('aff', 'conversion', 'expired-$k', 'expired-$k', 'EUR', '603ed1800000000000000000',
	                    'sending', 42, now() - interval '1 second', 1, now() - interval '1 minute')");
	$node->poll("SELECT status = 'sent' FROM s2s.deliveries WHERE endpoint = 'aff' AND dedupe_key = 'expired-$k'",
		"expired lease $k given back and sent, 40,000 other rows in the table");
	$upd = counted('n_tup_upd', $upd, 3, "lease $k");
	return;
}
# (the first one after ANALYZE: by then, what the worker counted before, on a small table,
# is in pg_stat_user_tables too)
expire_one(0);
$seq_scans{$_} = seq_scans($_) for qw(s2s.deliveries s2s.attempts);
expire_one($_) for 1 .. 3;
is(seq_scans('s2s.deliveries') - $seq_scans{'s2s.deliveries'}, 0,
	'no look for expired leases scanned s2s.deliveries whole');

# 2,000 deliveries finished two days ago and more (the retention is one day now), with
# their attempts, and a failed one, older still, that an administrator re-queues
# (s2s.retry) in a transaction left prepared. The next purge (a minute at most) skips the
# failed one, which that transaction holds, and deletes the 2,000 others with their
# attempts, in two batches, without waiting: meanwhile the worker goes on delivering.
# Once the transaction commits, the re-queued delivery is finished no longer: it stays,
# with its attempt. (In 0.5.0 the purge waited for that transaction, the whole queue with
# it, then deleted the re-queued delivery and its attempt: a delivery lost. After a first
# fix, it kept the delivery but still waited.)
# The same goes for the first-seen times of orders never validated: a shop's transaction
# that validates an old order takes its first-seen row (the orders trigger deletes it) and
# holds it until it ends; here it is left prepared. The purge deletes the other old ones
# and goes on (before, it waited for that transaction, and the queue with it).
my $del = stat_of('s2s.deliveries', 'n_tup_del');
$node->sql("INSERT INTO s2s_private.order_first_seen (endpoint, order_id, first_seen_at)
            SELECT 'aff', 'never-' || i, now() - interval '3 days' FROM generate_series(1, 3) i
            UNION ALL SELECT 'aff', 'validated-late', now() - interval '3 days'");
$node->sql("BEGIN; DELETE FROM s2s_private.order_first_seen WHERE order_id = 'validated-late';
            PREPARE TRANSACTION 'validate_late'");
# (a click of now: s2s.retry checks the click ID's age, as the trigger does)
my ($failed) = finished_with_attempt('old-failed', 1, 'failed', "now() - interval '3 days'", 500,
	"lpad(to_hex(extract(epoch FROM now())::int), 8, '0') || '0000000000000000'");
$node->sql("BEGIN; SELECT s2s.retry($failed); PREPARE TRANSACTION 'retry_old'");
my ($old_min, $old_max) =
  finished_with_attempt('old', 2000, 'sent', "now() - interval '2 days' - i * interval '1 second'", 200);
{
	# (the purge runs every minute: a longer wait than other polls')
	local $PostgreSQL::Test::Utils::timeout_default =
	  List::Util::max(90, $PostgreSQL::Test::Utils::timeout_default);
	$node->poll("SELECT NOT EXISTS (SELECT FROM s2s.deliveries WHERE endpoint = 'aff' AND dedupe_key IN ('old-1', 'old-2000'))",
		'the purge deletes the others, with the re-queueing transaction still open');
	$node->poll("SELECT NOT EXISTS (SELECT FROM s2s_private.order_first_seen WHERE order_id LIKE 'never-%')",
		'and the old first-seen times, with the validating transaction still open');
}
is($node->sql("SELECT count(*) FROM pg_locks l, s2s.worker_status() w WHERE l.pid = w.pid AND NOT l.granted"),
	'0', 'the worker waits for no lock');
$node->enqueue_conversions('aff', 1, 500000);
$node->poll("SELECT status = 'sent' FROM s2s.deliveries WHERE endpoint = 'aff' AND dedupe_key = 'order-500001'",
	'and goes on delivering meanwhile');
$node->sql("COMMIT PREPARED 'retry_old'");
$node->sql("COMMIT PREPARED 'validate_late'");
counted('n_tup_del', $del, 2000, 'the purge');
is(seq_scans('s2s.deliveries') - $seq_scans{'s2s.deliveries'}, 0,
	'nor did the purge (nor the looks since)');
is(seq_scans('s2s.attempts') - $seq_scans{'s2s.attempts'}, 0,
	'no purge scanned s2s.attempts whole');
is($node->sql("SELECT status IN ('pending', 'sending', 'sent')
                 FROM s2s.deliveries WHERE endpoint = 'aff' AND dedupe_key = 'old-failed'"),
	't', 'the delivery re-queued meanwhile stays, re-queued (or sent since)');
is($node->sql("SELECT count(*) FROM s2s.attempts WHERE delivery_id = $failed AND attempt = 1"), '1',
	'with its attempt');
is($node->sql("SELECT count(*) FROM s2s.attempts t
                WHERE t.delivery_id BETWEEN $old_min AND $old_max
                  AND NOT EXISTS (SELECT FROM s2s.deliveries d WHERE d.id = t.delivery_id)"),
	'0', 'the deliveries purged went with their attempts');
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE endpoint = 'aff' AND dedupe_key IN ('kept-1', 'kept-20000')"),
	'2', 'the younger ones stay');

$node->stop;
$r->stop;
done_testing();
