# The first half of test/dump_restore (see run): on the old server (the host's, 15), a shop
# database with the extension and a queue in every state, dumped with pg_dump. restore.pl
# restores it on a newer server (17, 18) and checks that nothing is lost or sent twice.
#
# Needs S2S_DUMP_DIR (where shop.dump and manifest.json go) and S2S_RECEIVER_URL (a
# receiver that test/dump_restore/run keeps running for both halves).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use S2S::Node;
use S2S::Receiver;

my $dir = $ENV{S2S_DUMP_DIR};
my $rurl = $ENV{S2S_RECEIVER_URL};
BAIL_OUT('S2S_DUMP_DIR and S2S_RECEIVER_URL are not set: run test/dump_restore/run')
  unless $dir && -d $dir && $rurl;

# The secrets: an Affilae key and one Swaarm token per endpoint, each different, so that the
# receiver tells which one came.
my %KEY = (
	aff => '603ed1800000000000000000-603ed18000000000000000aa',
	sw => 'tok-sw-0001',
	bad => 'tok-bad-0002',
	held => 'tok-held-0003',
);
my $ROLES = "CREATE ROLE shop_app LOGIN;\nCREATE ROLE shop_admin LOGIN;\n";

my $r = S2S::Receiver->attach($rurl);
$r->reset;
$r->behave(status => 503, path_prefix => '/sw');     # sw: retried
$r->behave(status => 400, path_prefix => '/bad');    # bad: failed at once

# Retries far apart: the retried delivery is due again in 1 to 2 hours, long after the
# restores (restore.pl makes it due).
my $src = S2S::Node->create('src', conf => { 's2s_tracking.retry_base' => "'2h'",
	's2s_tracking.retry_max' => "'2h'" });
my $url = $r->url;
$src->add_endpoint('aff', 'affilae', "$url/aff/", secret => $KEY{aff});
$src->add_endpoint($_, 'swaarm_postback', "$url/$_", secret => $KEY{$_}) for qw(sw bad held);
$src->sql($ROLES . <<'SQL');
GRANT USAGE ON SCHEMA s2s TO shop_app, shop_admin;
GRANT EXECUTE ON FUNCTION s2s.track_event(text, text, text, inet, text, numeric, text, numeric, text, text) TO shop_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON s2s.endpoints TO shop_admin;
GRANT SELECT ON s2s.deliveries TO shop_admin;
CREATE TABLE public.orders (id text PRIMARY KEY, total numeric, aecid text);
GRANT INSERT ON public.orders TO shop_app;
SELECT s2s.track_orders('public.orders', 'aff', 'id', 'total', click_ids => 'aecid');
SQL
my $click = sprintf('%08x%s', time() - 60, '0000000000000001');
my $ev = sub {
	my ($ep, $user) = @_;
	return $src->sql("SELECT s2s.track_event('$ep', '$user', 'purchase', '192.0.2.1', 'ua', 5, 'EUR')");
};

# sent: two orders
$src->sql("INSERT INTO public.orders VALUES ('o1', 10, '$click'), ('o2', 20, '$click')");
$src->poll("SELECT count(*) = 2 FROM s2s.deliveries WHERE endpoint = 'aff' AND status = 'sent'", 'o1 and o2 sent');
# skipped: an order whose click ID is malformed
$src->sql("INSERT INTO public.orders VALUES ('o3', 30, 'not-a-click-id')");
# retrying: sw answers 503
my $retrying = $ev->('sw', 'user-retry');
$src->poll("SELECT status = 'retrying' AND attempts = 1 AND next_attempt_at > now() + interval '50 min' FROM s2s.deliveries WHERE id = $retrying",
	'the sw event is retrying, not due for an hour');
# failed: bad answers 400
my $failed = $ev->('bad', 'user-failed');
$src->poll("SELECT status = 'failed' FROM s2s.deliveries WHERE id = $failed", 'the bad event failed');
# a paused endpoint with waiting deliveries
$src->sql("SELECT s2s.pause('held', 'maintenance window')");
my @held = map { $ev->('held', $_) } qw(user-held-1 user-held-2);

# pending: the worker is sent elsewhere (a database without the extension, where it waits),
# as if the shop had stopped for the move; then orders and an event arrive.
$src->sql('CREATE DATABASE idle');
$src->append_conf('postgresql.conf', "s2s_tracking.database = 'idle'\n");
$src->restart;
ok($src->poll_query_until('postgres',
	"SELECT datname = 'idle' FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker'"),
	'the worker now waits in database idle');
$src->sql("INSERT INTO public.orders VALUES ('o4', 40, '$click'), ('o5', 50, '$click')");
my $pending_sw = $ev->('sw', 'user-pending');
sleep 2;

my %counts = (sent => 2, skipped => 1, retrying => 1, failed => 1, pending => 5);
is($src->sql("SELECT string_agg(status || '=' || n, ' ' ORDER BY status) FROM (SELECT status::text, count(*) AS n FROM s2s.deliveries GROUP BY 1) s"),
	join(' ', map { "$_=$counts{$_}" } sort keys %counts), 'the queue holds every state');
is($src->sql("SELECT string_agg(endpoint, ' ' ORDER BY endpoint) FROM s2s.deliveries WHERE status = 'pending'"),
	'aff aff held held sw', 'pending: two orders, the paused endpoint\'s two events, one event');
is($src->sql("SELECT paused_at IS NOT NULL FROM s2s.endpoints WHERE name = 'held'"), 't', 'held is paused');

# What the receiver got from the old server: the two orders, one 503, one 400, nothing else.
my @reqs = @{ $r->requests };
my @seen = map { $_->{path} . ' ' . (S2S::Receiver::query_params($_)->{id} // S2S::Receiver::query_params($_)->{user_id} // '') } @reqs;
is(join(', ', sort @seen), '/aff/ o1, /aff/ o2, /bad/postback user-failed, /sw/postback user-retry',
	'the old server sent o1, o2 and one try of each event, nothing of what waits');

my $rows = decode_json($src->sql(
	"SELECT json_agg(json_build_object('id', id, 'endpoint', endpoint, 'status', status, 'attempts', attempts,
	   'conversion_id', conversion_id, 'user_id', user_id, 'dedupe_key', dedupe_key) ORDER BY id) FROM s2s.deliveries"));
my $manifest = {
	source_version_num => $src->sql('SHOW server_version_num') + 0,
	pg_dump_version => (split /\n/, `pg_dump --version`)[0],
	keys => \%KEY,
	roles_sql => $ROLES,
	click => $click,
	deliveries => $rows,
	counts => \%counts,
	secrets => $src->sql('SELECT endpoint || \'=\' || secret FROM s2s_private.endpoint_secrets ORDER BY endpoint'),
	attempts => $src->sql('SELECT delivery_id || \':\' || attempt || \':\' || coalesce(http_status, 0) FROM s2s.attempts ORDER BY 1'),
	sent_at_source => [ map { S2S::Receiver::query_params($_)->{id} } grep { $_->{path} eq '/aff/' } @reqs ],
	retrying_id => $retrying + 0,
	failed_id => $failed + 0,
	held_ids => [ map { $_ + 0 } @held ],
	pending_sw_id => $pending_sw + 0,
};
is($manifest->{secrets}, join("\n", map { "$_=$KEY{$_}" } sort keys %KEY), 'each endpoint holds its secret');

command_ok([ 'pg_dump', '-Fc', '-f', "$dir/shop.dump", '-d', $src->connstr('postgres') ],
	"pg_dump ($manifest->{pg_dump_version})");
open(my $fh, '>', "$dir/manifest.json") or die "$dir/manifest.json: $!";
print $fh JSON::PP->new->pretty->canonical->encode($manifest);
close $fh;
chmod 0644, "$dir/shop.dump", "$dir/manifest.json";
$src->stop;
done_testing();
