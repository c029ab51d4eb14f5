# Upgrade from 0.4.0 to the queue layout of issue 15 (waiting rows told by finished_at IS
# NULL): a queue holding a delivery in every state upgrades with every row unchanged (but
# for a waiting row that an administrator had given a finish time: it loses it, and is
# sent), the waiting ones are sent afterwards, the finished ones are left alone, and the
# new constraint refuses a waiting row with a finish time.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('layout', extension => 0,
	conf => { 's2s_tracking.lease' => "'1s'" });
$node->sql("CREATE EXTENSION s2s_tracking VERSION '0.4.0'");
$node->wait_worker;
# The worker looks for the extension every few seconds and, the first time it finds it,
# gives back every row left 'sending': the queue below is written only after that.
$node->wait_for_log(qr/s2s_tracking worker found the extension; delivering/);
$node->add_endpoint('aff', 'affilae', $r->url . '/aff', enabled => 'false');

# One delivery per state, written as each version's code leaves it. The claim's lease ends
# in an hour, so that the worker leaves it alone until the update is checked however slow
# the machine; it is made to end below, before the endpoint is enabled.
$node->sql(<<'SQL');
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, currency, click_ids,
                            status, attempts, next_attempt_at, first_attempt_at,
                            claim_token, lease_until, last_http_status, last_error,
                            sent_at, finished_at)
VALUES ('aff', 'conversion', 'pending', 'pending', 'EUR', '603ed1800000000000000000',
        'pending', 0, now(), NULL, NULL, NULL, NULL, NULL, NULL, NULL),
       ('aff', 'conversion', 'sending', 'sending', 'EUR', '603ed1800000000000000000',
        'sending', 1, now() - interval '1 minute', now() - interval '1 minute',
        42, now() + interval '1 hour', NULL, NULL, NULL, NULL),
       ('aff', 'conversion', 'retrying-due', 'retrying-due', 'EUR', '603ed1800000000000000000',
        'retrying', 1, now() - interval '1 second', now() - interval '1 minute',
        NULL, NULL, 503, 'HTTP 503', NULL, NULL),
       ('aff', 'conversion', 'retrying-later', 'retrying-later', 'EUR', '603ed1800000000000000000',
        'retrying', 2, now() + interval '1 day', now() - interval '1 minute',
        NULL, NULL, 503, 'HTTP 503', NULL, NULL),
       ('aff', 'conversion', 'sent', 'sent', 'EUR', '603ed1800000000000000000',
        'sent', 1, now() - interval '1 hour', now() - interval '1 hour',
        NULL, NULL, 200, NULL, now() - interval '1 hour', now() - interval '1 hour'),
       ('aff', 'conversion', 'failed', 'failed', 'EUR', '603ed1800000000000000000',
        'failed', 3, now() - interval '1 hour', now() - interval '2 hours',
        NULL, NULL, 400, 'HTTP 400', NULL, now() - interval '1 hour'),
       ('aff', 'conversion', 'skipped', 'skipped', 'EUR', NULL,
        'skipped', 0, now(), NULL, NULL, NULL, NULL, 'no click ID', NULL, now()),
       ('aff', 'conversion', 'by-hand', 'by-hand', 'EUR', '603ed1800000000000000000',
        'pending', 0, now(), NULL, NULL, NULL, 400, 'HTTP 400', NULL, now() - interval '1 hour');
INSERT INTO s2s.attempts (delivery_id, attempt, started_at, duration_ms, http_status)
SELECT id, 1, now() - interval '1 hour', 3, 200 FROM s2s.deliveries WHERE dedupe_key = 'sent';
SQL
my $rows = "SELECT string_agg(to_jsonb(d)::text, E'\\n' ORDER BY id) FROM s2s.deliveries d";
my $before = $node->sql($rows);

# The row edited by hand stops the update, which says how to mend it: the update writes
# no row of the extension's tables itself (doc/hardening.md).
my ($urc, $uout, $uerr) = $node->psql('postgres', 'ALTER EXTENSION s2s_tracking UPDATE');
like($uerr, qr/1 waiting deliveries of s2s\.deliveries have a finish time/,
	'a waiting row with a finish time stops the update');
like($uerr, qr/HINT:  As the extension's owner, run (UPDATE s2s\.deliveries SET finished_at = NULL [^;]+);/,
	'which says how to mend it');
my ($mend) = $uerr =~ /run (UPDATE s2s\.deliveries SET finished_at = NULL [^;]+);/;
is($node->sql("SELECT extversion FROM pg_extension WHERE extname = 's2s_tracking'"), '0.4.0',
	'nothing was updated');
$node->sql($mend);
$node->sql('ALTER EXTENSION s2s_tracking UPDATE');
is($node->sql("SELECT extversion FROM pg_extension WHERE extname = 's2s_tracking'"),
	$node->sql("SELECT default_version FROM pg_available_extensions WHERE name = 's2s_tracking'"),
	'updated');
my $after = $node->sql($rows);
my @b = split /\n/, $before;
my @a = split /\n/, $after;
is(scalar(@a), 8, 'every delivery is still there');
for my $i (0 .. $#b)
{
	my ($key) = $b[$i] =~ /"dedupe_key": "([^"]+)"/;
	if ($key eq 'by-hand')
	{
		(my $expected = $b[$i]) =~ s/"finished_at": "[^"]+"/"finished_at": null/;
		is($a[$i], $expected, 'a waiting row edited by hand, mended as the hint says, loses only its finish time');
	}
	else
	{
		is($a[$i], $b[$i], "delivery '$key' unchanged by the update");
	}
}
is($node->sql("SELECT count(*) FROM s2s.attempts"), '1', 'the attempts rows are kept');

# The constraint: a waiting row with a finish time would never be claimed.
my ($ok, $out, $err) = $node->psql('postgres',
	"UPDATE s2s.deliveries SET status = 'pending' WHERE dedupe_key = 'failed'");
like($err, qr/deliveries_waiting_unfinished/,
	'a finished row set back to waiting by hand, its finish time kept, is refused');

# The waiting ones are sent once the endpoint is enabled (which makes them all due; the
# expired claim is given back first), the finished ones are left alone.
$node->sql("UPDATE s2s.deliveries SET lease_until = now() - interval '1 second' WHERE dedupe_key = 'sending'");
$node->sql("UPDATE s2s.endpoints SET enabled = true WHERE name = 'aff'");
$node->poll("SELECT count(*) = 5 FROM s2s.deliveries WHERE status = 'sent' AND dedupe_key IN ('pending', 'sending', 'retrying-due', 'retrying-later', 'by-hand')",
	'every waiting delivery is sent after the update');
is($node->sql("SELECT string_agg(dedupe_key || ':' || status, ',' ORDER BY dedupe_key) FROM s2s.deliveries WHERE dedupe_key IN ('sent', 'failed', 'skipped')"),
	'failed:failed,sent:sent,skipped:skipped', 'the finished ones are left alone');
my %ids;
$ids{ S2S::Receiver::query_params($_)->{id} // '' }++ for @{ $r->requests };
is(join(',', sort keys %ids), 'by-hand,pending,retrying-due,retrying-later,sending',
	'each waiting one sent');
is(scalar(@{ $r->requests }), 5, 'once');
is($node->sql("SELECT attempts FROM s2s.deliveries WHERE dedupe_key = 'sending'"), '1',
	'the expired claim was not counted');

$node->stop;
$r->stop;
done_testing();
