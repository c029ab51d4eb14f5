# Copies of production stay silent (issue 13, item 4). The queue's home is the cluster's
# system identifier and the database's OID: a promoted streaming standby is the same home
# and sends at once; a database made with CREATE DATABASE ... TEMPLATE and one restored
# with pg_restore into another database of the cluster are copies: the worker pauses their
# endpoints, sends nothing, logs one line, and sends once s2s.adopt_home() confirms.
# (A restore into another cluster: 052_dump_restore.pl.)
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
my $a = S2S::Node->create('home_a', init => { allows_streaming => 1 },
	conf => { 's2s_tracking.database' => "'*'" });
$a->add_endpoint('aff', 'affilae', $r->url . '/aff/');
$a->enqueue_conversions('aff', 3);
$a->poll("SELECT count(*) = 3 FROM s2s.deliveries WHERE status = 'sent'", 'the primary sends');

# A streaming standby has no worker; promoted, it is the same home and sends at once.
$a->backup('bk');
my $b = PostgreSQL::Test::Cluster->new('home_b');
bless $b, 'S2S::Node';
$b->init_from_backup($a, 'bk', has_streaming => 1);
$b->start;
$a->sql("UPDATE s2s.endpoints SET enabled = false WHERE name = 'aff'");
$a->enqueue_conversions('aff', 5, 3);
$a->wait_for_catchup('home_b');
is($b->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 's2s_tracking%'"),
	'0', 'no launcher nor worker on the standby');
$a->stop;
$r->reset;
$b->promote;
$b->wait_worker;
$b->sql("UPDATE s2s.endpoints SET enabled = true WHERE name = 'aff'");
$b->poll("SELECT count(*) = 8 FROM s2s.deliveries WHERE status = 'sent'",
	'the promoted standby sends the waiting conversions at once');
is($r->count, 5, 'five requests reached the receiver');
is($b->sql("SELECT count(*) FROM s2s.endpoints WHERE paused_at IS NOT NULL"), '0',
	'nothing paused on the promoted standby');
unlike(slurp_file($b->logfile), qr/it is a copy/, 'and nothing logged about a copy');

# Waits until the worker of database $db has gone round its loop twice more (so it had
# every chance to claim), bounded.
sub two_loops
{
	my ($node, $db) = @_;
	my $t0 = $node->safe_psql($db, 'SELECT clock_timestamp()');
	return $node->poll_query_until($db,
		"SELECT last_loop_at > '$t0'::timestamptz + interval '1.5 s' FROM s2s.worker_status()");
}

sub copy_is_silent
{
	my ($node, $db, $how) = @_;
	my $before = $r->count;
	$node->poll_db($db,
		"SELECT count(*) = 1 FROM s2s.endpoints WHERE pause_reason LIKE 'this database is a copy (%' AND paused_at IS NOT NULL",
		"$how: the worker pauses the copy's endpoint");
	$node->safe_psql($db, "UPDATE s2s.endpoints SET enabled = true WHERE name = 'aff'");
	ok(two_loops($node, $db), "$how: the copy's worker keeps looping");
	is($r->count, $before, "$how: nothing sent from the copy");
	my @said = (slurp_file($node->logfile) =~ /paused every endpoint of database "\Q$db\E": it is a copy/g);
	is(scalar(@said), 1, "$how: one log line");
	is($node->safe_psql($db, 'SELECT s2s.adopt_home()'), '1', "$how: s2s.adopt_home() resumes the endpoint");
	$node->poll_db($db, "SELECT count(*) = 13 FROM s2s.deliveries WHERE status = 'sent'",
		"$how: the adopted copy sends");
	is($r->count, $before + 5, "$how: five requests");
	ok(two_loops($node, $db), "$how: the worker goes on");
	is($node->safe_psql($db, "SELECT count(*) FROM s2s.endpoints WHERE paused_at IS NOT NULL"), '0',
		"$how: and does not pause again");
}

# Five conversions waiting (endpoint disabled) in the production database.
$b->sql("UPDATE s2s.endpoints SET enabled = false WHERE name = 'aff'");
$b->enqueue_conversions('aff', 5, 8);

# CREATE DATABASE ... TEMPLATE: the production worker leaves for it (it would fail after
# 5 s with "source database is being accessed by other users" otherwise).
my ($rc, $out, $err) = $b->psql('template1', 'CREATE DATABASE copy1 TEMPLATE postgres');
is($rc, 0, 'CREATE DATABASE ... TEMPLATE postgres succeeds while the worker runs') or diag($err);
copy_is_silent($b, 'copy1', 'CREATE DATABASE ... TEMPLATE');

# pg_dump / pg_restore into another database of the same cluster.
my $dump = PostgreSQL::Test::Utils::tempdir() . '/shop.dump';
command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $b->connstr('postgres') ], 'pg_dump');
$b->sql('CREATE DATABASE restored TEMPLATE template0');
command_ok([ 'pg_restore', '--exit-on-error', '--single-transaction', '-d', $b->connstr('restored'), $dump ],
	'pg_restore into another database');
copy_is_silent($b, 'restored', 'pg_restore into another database');

# Production itself was never paused, and sends its own.
is($b->sql("SELECT count(*) FROM s2s.endpoints WHERE paused_at IS NOT NULL"), '0',
	'the production database is not paused');
$b->sql("UPDATE s2s.endpoints SET enabled = true WHERE name = 'aff'");
$b->poll("SELECT count(*) = 13 FROM s2s.deliveries WHERE status = 'sent'", 'production sends its own');
$b->stop;
done_testing();
