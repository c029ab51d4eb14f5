# A cluster that preloads the library: the extension is created and its worker runs,
# connected to s2s_tracking.database.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 's2s_tracking'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION s2s_tracking');
is($node->safe_psql('postgres',
	"SELECT extversion FROM pg_extension WHERE extname = 's2s_tracking'"),
	S2S::Node::control_version(), 'extension created in a server that preloads the library');

ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker' AND datname = 'postgres'"),
	'the worker runs, connected to s2s_tracking.database');

$node->stop;

# Without shared_preload_libraries there is no worker, but the SQL side works: clicks are
# recorded and conversions enqueued; they wait for a server that runs the worker.
my $plain = PostgreSQL::Test::Cluster->new('no_preload');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION s2s_tracking');
my $id = $plain->safe_psql('postgres', q{
	SELECT s2s.record_click(lpad(to_hex(extract(epoch FROM now())::bigint - 60), 8, '0')
	                        || '0000000000000000')});
ok($id > 0, 'record_click works in a server that does not preload the library');
$plain->safe_psql('postgres', q{
	INSERT INTO s2s.endpoints (name, kind, url, secret)
	VALUES ('sw', 'swaarm_postback', 'https://track.example.com', 'token')});
my $delivery = $plain->safe_psql('postgres',
	q{SELECT s2s.track_event('sw', 'user-1', 'register', '192.0.2.1', 'ua')});
is($plain->safe_psql('postgres', "SELECT status FROM s2s.deliveries WHERE id = $delivery"),
	'pending', 'track_event enqueues without a worker; the delivery waits');
is($plain->safe_psql('postgres',
	"SELECT s2s.is_valid_click_id('x'); SHOW s2s_tracking.allow_http"), "f\noff",
	'settings are defined once a function has loaded the library');
$plain->stop;

done_testing();
