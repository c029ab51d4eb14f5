# A cluster that preloads the library: the extension is created and its worker runs,
# connected to s2s_tracking.database.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 's2s_tracking'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION s2s_tracking');
is($node->safe_psql('postgres',
	"SELECT extversion FROM pg_extension WHERE extname = 's2s_tracking'"),
	'0.2.0', 'extension created in a server that preloads the library');

ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker' AND datname = 'postgres'"),
	'the worker runs, connected to s2s_tracking.database');

$node->stop;
done_testing();
