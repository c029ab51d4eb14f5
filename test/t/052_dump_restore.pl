# pg_dump / pg_restore of a shop database: the configuration (endpoints, their secrets,
# the orders trigger, the grants), the queue and the first-seen times of orders waiting
# for their validation come back, the endpoints guard does not wipe a restored secret, the
# identity sequences continue after the restored rows, the restored deliveries are then
# sent with the restored secret, and no role sees a secret it could not see before. A role
# without access to the secrets cannot dump them.
# The restored database is a copy (another cluster): the worker pauses its endpoints and
# sends nothing until s2s.adopt_home() confirms it is the queue's new home.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;
use S2S::Receiver;

my $KEY = '603ed1800000000000000000-603ed1800000000000000001';
my $r = S2S::Receiver->start;
my $src = S2S::Node->create('src');
my $url = $r->url;
$src->add_endpoint('aff', 'affilae', "$url/aff/", secret => $KEY);
$src->add_endpoint('sw', 'swaarm_postback', "$url/sw", secret => 'tok-sw', http_method => 'POST');
$src->add_endpoint('off', 'swaarm_s2sevent', "$url/off", secret => 'tok-off', enabled => 'false');
$src->sql("INSERT INTO s2s.endpoints (name, kind, url) VALUES ('nosecret', 'swaarm_postback', '$url/ns')");

my $ROLES = <<'SQL';
CREATE ROLE shop_app LOGIN;
CREATE ROLE shop_admin LOGIN;
SQL
$src->sql($ROLES . <<'SQL');
GRANT USAGE ON SCHEMA s2s TO shop_app, shop_admin;
GRANT EXECUTE ON FUNCTION s2s.track_event(text, text, text, inet, text, numeric, text, numeric, text, text),
    s2s.record_click(text, inet, text, text, text, text) TO shop_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON s2s.endpoints TO shop_admin;
GRANT SELECT ON s2s.deliveries TO shop_admin;
CREATE TABLE public.orders (id text PRIMARY KEY, total numeric, aecid text);
GRANT INSERT ON public.orders TO shop_app;
SELECT s2s.track_orders('public.orders', 'aff', 'id', 'total', click_ids => 'aecid');
SELECT s2s.pause('sw', 'maintenance window');
SQL

# One conversion sent (a sent row and its attempt), then 'aff' disabled: three more wait.
my $click = sprintf('%08x%s', time() - 60, '0000000000000001');
$src->sql("INSERT INTO public.orders VALUES ('o1', 10.5, '$click')");
$src->poll("SELECT status = 'sent' FROM s2s.deliveries WHERE dedupe_key LIKE '%o1%'", 'first order sent');
$src->sql("UPDATE s2s.endpoints SET enabled = false WHERE name = 'aff'");
$src->sql("INSERT INTO public.orders VALUES ('o$_', $_, '$click')") for 2 .. 4;
$src->sql("SELECT s2s.track_event('sw', 'user-1', 'purchase', '192.0.2.1', 'ua', 5, 'EUR')");
$src->sql("SELECT s2s.record_click('$click', '192.0.2.9', 'ua', NULL, 'https://shop.example/?aecid=$click')");
# an order waiting for its validation since it was first seen, three days ago
$src->sql("INSERT INTO s2s_private.order_first_seen VALUES ('aff', 'o-wire', now() - interval '3 days')");

my %q = (
	endpoints => "SELECT name, kind, url, secret, enabled, pause_reason, currency, http_method, token_in_query FROM s2s.endpoints ORDER BY name",
	secrets => "SELECT endpoint, secret FROM s2s_private.endpoint_secrets ORDER BY endpoint",
	deliveries => "SELECT id, endpoint, kind, dedupe_key, status, attempts, conversion_id, amount, click_ids FROM s2s.deliveries ORDER BY id",
	attempts => "SELECT delivery_id, attempt, http_status FROM s2s.attempts ORDER BY 1, 2",
	clicks => "SELECT id, network, click_id, ip FROM s2s.clicks ORDER BY id",
	first_seen => "SELECT endpoint, order_id, first_seen_at FROM s2s_private.order_first_seen ORDER BY 1, 2",
	grants => "SELECT has_function_privilege('shop_app', 's2s.track_event(text, text, text, inet, text, numeric, text, numeric, text, text)', 'EXECUTE'), has_table_privilege('shop_admin', 's2s.endpoints', 'INSERT'), has_table_privilege('shop_app', 's2s.endpoints', 'SELECT'), has_schema_privilege('shop_admin', 's2s_private', 'USAGE')",
	triggers => "SELECT tgname, tgrelid::regclass, tgenabled FROM pg_trigger WHERE tgrelid = 'public.orders'::regclass AND NOT tgisinternal",
);
my %before = map { $_ => $src->sql($q{$_}) } keys %q;
like($before{secrets}, qr/\Q$KEY\E/, 'the source holds the Affilae key');

# A role that cannot read the secrets cannot dump them either.
my $dump = PostgreSQL::Test::Utils::tempdir() . '/shop.dump';
command_fails_like([ 'pg_dump', '-Fc', '-f', "$dump.admin", '-d', $src->connstr('postgres'), '-U', 'shop_admin' ],
	qr/permission denied/, 'pg_dump as shop_admin is refused');
command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $src->connstr('postgres') ], 'pg_dump as the owner');
$src->stop;
my $sent_before = $r->count;

# Restore into a fresh server: roles first (as pg_dumpall --globals-only would).
my $dst = S2S::Node->create('dst', extension => 0);
$dst->sql($ROLES);
my ($stdout, $stderr);
my $ok = PostgreSQL::Test::Utils::run_log(
	[ 'pg_restore', '--exit-on-error', '-d', $dst->connstr('postgres'), $dump ],
	'>' => \$stdout, '2>' => \$stderr);
ok($ok, 'pg_restore without error') or diag($stderr);
$dst->wait_worker;

# A copy: every endpoint that was sending is paused, with the reason, and logged once.
$dst->poll("SELECT count(*) = 3 FROM s2s.endpoints WHERE pause_reason LIKE 'this database is a copy (%'",
	'the worker pauses the endpoints of the restored copy');
is($dst->sql("SELECT pause_reason FROM s2s.endpoints WHERE name = 'sw'"), 'maintenance window',
	'an endpoint paused before keeps its reason');
is($r->count, $sent_before, 'nothing sent from the copy');
my @said = (slurp_file($dst->logfile) =~ /paused every endpoint of database "postgres": it is a copy/g);
is(scalar(@said), 1, 'one log line says so');
is($dst->sql('SELECT s2s.adopt_home()'), '3', 's2s.adopt_home() resumes the three endpoints');
is($dst->sql("SELECT count(*) FROM s2s_private.home h, s2s_private.current_home() c WHERE (h.system_identifier, h.database_oid) = (c.system_identifier, c.database_oid)")
	  . '/' . $dst->sql('SELECT count(*) FROM s2s_private.home'), '1/1',
	'and records the new home');

for my $what (sort keys %q)
{
	is($dst->sql($q{$what}), $before{$what}, "$what restored as they were");
}
is($dst->sql("SELECT secret FROM s2s_private.endpoint_secrets WHERE endpoint = 'aff'"), $KEY,
	'the guard did not wipe the restored key');

# Identity sequences continue after the restored rows.
my $max = $dst->sql('SELECT max(id) FROM s2s.deliveries');
my $id = $dst->sql("SELECT s2s.track_event('sw', 'user-2', 'signup', '192.0.2.2', 'ua')");
cmp_ok($id, '>', $max, "a new delivery gets a fresh id ($id > $max)");
my $cmax = $dst->sql('SELECT max(id) FROM s2s.clicks');
$dst->sql(sprintf("SELECT s2s.record_click('%08x%s')", time() - 30, '0000000000000002'));
cmp_ok($dst->sql('SELECT max(id) FROM s2s.clicks'), '>', $cmax, 'a new click gets a fresh id');

# The restored roles see what they saw before, and no more.
my ($rc, $out, $err);
$rc = $dst->psql('postgres', "SELECT string_agg(name || '=' || coalesce(secret, 'NULL'), ' ' ORDER BY name) FROM s2s.endpoints",
	stdout => \$out, stderr => \$err, extra_params => [ '-U', 'shop_admin' ]);
is($out, 'aff=******** nosecret=NULL off=******** sw=********',
	'shop_admin reads only masks (and NULL where there is no secret)');
$rc = $dst->psql('postgres', 'SELECT * FROM s2s_private.endpoint_secrets', stderr => \$err,
	extra_params => [ '-U', 'shop_admin' ]);
like($err, qr/permission denied/, 'shop_admin cannot read the restored secrets');

# The restored orders trigger enqueues, and the restored queue is sent with the restored key.
$dst->sql("INSERT INTO public.orders VALUES ('o5', 5, '$click')");
$r->reset;
$dst->sql("UPDATE s2s.endpoints SET enabled = true WHERE name = 'aff'");
$dst->poll("SELECT count(*) = 4 FROM s2s.deliveries WHERE endpoint = 'aff' AND status = 'sent' AND dedupe_key !~ 'o1'",
	'the waiting conversions and the new one are sent after the restore');
my @keys = map { S2S::Receiver::query_params($_)->{key} } @{ $r->requests };
is_deeply([ sort keys %{ { map { $_ => 1 } @keys } } ], [$KEY], 'each with the restored key');
$dst->sql("SELECT s2s.resume('sw')");
$dst->poll("SELECT count(*) = 0 FROM s2s.deliveries WHERE endpoint = 'sw' AND status <> 'sent'",
	'the paused endpoint\'s events are sent once resumed');
$dst->stop;
done_testing();
