# A database whose queue holds values the orders trigger shortened (raw click IDs kept on a
# skipped delivery, a bad currency) survives pg_dump | pg_restore: every value is cut
# between characters, so the dump is valid UTF-8 and the queue comes back as it was.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;

my $node = S2S::Node->create('dump_cut');
is($node->sql('SHOW server_encoding'), 'UTF8', 'the database is UTF-8');
$node->add_endpoint('aff', 'affilae', 'https://lb.affilae.com/', enabled => 'false');
my $cid = "lpad(to_hex(extract(epoch FROM now())::bigint - 60), 8, '0') || '0000000000000001'";
$node->sql(<<"SQL");
CREATE TABLE public.orders (number text PRIMARY KEY, amount numeric, currency text, cids text);
SELECT s2s.track_orders('public.orders', 'aff', 'number', 'amount', currency => 'currency',
                        click_ids => 'cids');
INSERT INTO public.orders VALUES
    ('o-1', 1, NULL, repeat('x', 1023) || 'é'),
    ('o-2', 1, NULL, repeat('x', 1023) || '€'),
    ('o-3', 1, NULL, repeat('x', 1022) || '😀'),
    ('o-4', 5, '€€€€€€', $cid),
    ('o-5', 5, 'XÉÉÉÉÉÉÉÉ', $cid);
SQL
my $q = "SELECT dedupe_key, status, md5(click_ids), currency, last_error
           FROM s2s.deliveries ORDER BY dedupe_key";
my $before = $node->sql($q);
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE status = 'skipped'"), '5',
	'five skipped deliveries with shortened values');

my $dump = PostgreSQL::Test::Utils::tempdir() . '/shop.dump';
command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump');
$node->sql('CREATE DATABASE restored');
my ($stdout, $stderr);
my $ok = PostgreSQL::Test::Utils::run_log(
	[ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ],
	'>' => \$stdout, '2>' => \$stderr);
ok($ok, 'pg_restore without error') or diag($stderr);
is($node->safe_psql('restored', $q), $before, 'the queue is restored as it was');

$node->stop;
done_testing();
