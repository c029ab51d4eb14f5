# Upgrade from 0.1.0: a database holding queued deliveries is updated with
# ALTER EXTENSION s2s_tracking UPDATE (the new library already loaded, as after a package
# upgrade and a restart), then its deliveries are sent; the updated extension is the same,
# object for object, as a fresh install of the current version.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('upgrade', extension => 0);
my $current = $node->sql("SELECT default_version FROM pg_available_extensions WHERE name = 's2s_tracking'");
isnt($current, '0.1.0', "the current version ($current) is newer than 0.1.0");

$node->sql("CREATE EXTENSION s2s_tracking VERSION '0.1.0'");
is($node->sql("SELECT extversion FROM pg_extension WHERE extname = 's2s_tracking'"), '0.1.0',
	'0.1.0 installed');
$node->wait_worker;

# Deliveries queued under 0.1.0: conversions for a disabled endpoint, events for a paused one.
$node->add_endpoint('aff', 'affilae', $r->url . '/aff/', enabled => 'false');
$node->add_endpoint('sw', 'swaarm_postback', $r->url . '/sw');
$node->sql("SELECT s2s.pause('sw', 'before the upgrade')");
$node->enqueue_conversions('aff', 200);
$node->sql("SELECT s2s.track_event('sw', 'user-' || i, 'purchase', '192.0.2.1', 'ua') FROM generate_series(1, 20) i");
# An orders table tracked under 0.1.0: the new library's trigger on 0.1.0's tables (whose
# foreign key makes it run the insert statement).
my $cid = "lpad(to_hex(extract(epoch FROM now())::bigint - 60), 8, '0') || '0000000000000001'";
$node->sql("CREATE TABLE orders (number text, amount numeric, cids text)");
$node->sql("SELECT s2s.track_orders('orders', 'aff', 'number', 'amount', click_ids => 'cids')");
$node->sql("INSERT INTO orders VALUES ('before-1', 5, $cid)");
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE status = 'pending'"), '221',
	'221 deliveries queued under 0.1.0');
is(scalar(@{ $r->requests }), 0, 'nothing sent yet');

$node->sql('ALTER EXTENSION s2s_tracking UPDATE');
is($node->sql("SELECT extversion FROM pg_extension WHERE extname = 's2s_tracking'"), $current,
	"updated to $current");
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE status = 'pending'"), '221',
	'the queue is intact after the update');
is($node->sql("SELECT count(*) FROM s2s_private.home h, s2s_private.current_home() c WHERE h.system_identifier = c.system_identifier AND h.database_oid = c.database_oid")
	  . '/' . $node->sql('SELECT count(*) FROM s2s_private.home'), '1/1',
	'the updated database records its current home');
# the same trigger after the update
$node->sql("INSERT INTO orders VALUES ('after-1', 6, $cid), ('before-1', 5, $cid)");
is($node->sql("SELECT string_agg(dedupe_key, ',' ORDER BY dedupe_key) FROM s2s.deliveries WHERE dedupe_key LIKE 'order:%'"),
	'order:after-1,order:before-1', 'an order enqueued after the update, once');

$node->sql("UPDATE s2s.endpoints SET enabled = true WHERE name = 'aff'");
$node->sql("SELECT s2s.resume('sw')");
$node->poll("SELECT count(*) = 222 FROM s2s.deliveries WHERE status = 'sent'",
	'every queued delivery is sent after the update');
my %ids;
$ids{ S2S::Receiver::query_params($_)->{id} // S2S::Receiver::query_params($_)->{user_id} // '' }++
  for @{ $r->requests };
is(scalar(keys %ids), 222, 'the receiver got each conversion and event');

# What 0.2.0 brought works on the updated database.
my ($rc, $out, $err) = $node->psql('postgres',
	"INSERT INTO s2s.endpoints (name, kind, url, secret) VALUES ('meta', 'swaarm_postback', 'https://169.254.169.254', 'x')");
like($err, qr/link-local/, 'the link-local guard is active after the update');
is($node->sql("SELECT string_agg(c::regclass::text, ',' ORDER BY c::regclass::text) FROM pg_extension, unnest(extconfig) c WHERE extname = 's2s_tracking' AND c::regclass::text LIKE '%seq'"),
	's2s.clicks_id_seq,s2s.deliveries_id_seq', 'the identity sequences are marked for pg_dump');

# What 0.3.0 brought: no foreign key, the guards that stand for it.
is($node->sql("SELECT count(*) FROM pg_constraint WHERE conrelid = 's2s.deliveries'::regclass AND contype = 'f'"),
	'0', 'no foreign key on s2s.deliveries after the update');
($rc, $out, $err) = $node->psql('postgres', "DELETE FROM s2s.endpoints WHERE name = 'sw'");
like($err, qr/still has deliveries/, 'an endpoint with deliveries cannot be deleted after the update');
$node->sql("UPDATE s2s.endpoints SET name = 'sw2' WHERE name = 'sw'");
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE endpoint = 'sw2'"), '20',
	'a rename is carried over to the deliveries after the update');

# What 0.4.0 brought: an endpoint that an orders trigger tracks cannot be deleted or
# renamed; an endpoint made before the update stays open to track_event for every role
# allowed to call it (its NULL event_roles became 'public'), a new one is closed.
($rc, $out, $err) = $node->psql('postgres', "DELETE FROM s2s.endpoints WHERE name = 'aff'");
like($err, qr/cannot delete endpoint "aff": an orders table is tracked for it/,
	'a tracked endpoint cannot be deleted after the update');
$node->sql(<<'SQL');
CREATE ROLE shop_app LOGIN;
GRANT USAGE ON SCHEMA s2s TO shop_app;
GRANT EXECUTE ON FUNCTION
    s2s.track_event(text, text, text, inet, text, numeric, text, numeric, text, text) TO shop_app;
SQL
is($node->sql("SELECT event_roles FROM s2s.endpoints WHERE name = 'sw2'"), '{public}',
	"an endpoint made before the update is open to every role ('public')");
my $app_event = sub {
	my ($endpoint) = @_;
	my ($stdout, $stderr);
	$node->psql('postgres', "SELECT s2s.track_event('$endpoint', 'app-1', 'purchase', NULL, NULL) > 0",
		stdout => \$stdout, stderr => \$stderr, extra_params => [ '-U', 'shop_app' ]);
	return ($stdout, $stderr);
};
($out, $err) = $app_event->('sw2');
is($out, 't', 'the app role still enqueues events to an endpoint made before the update')
  or diag($err);
$node->add_endpoint('sw_new', 'swaarm_postback', $r->url . '/sw_new');
($out, $err) = $app_event->('sw_new');
like($err, qr/permission denied to enqueue events to endpoint "sw_new"/,
	'a new endpoint is closed to the app role');
$node->sql("UPDATE s2s.endpoints SET event_roles = ARRAY['shop_app'] WHERE name = 'sw_new'");
($out, $err) = $app_event->('sw_new');
is($out, 't', 'until its event_roles names the app role') or diag($err);
# (the grant would differ from a fresh install's below)
$node->sql('REVOKE EXECUTE ON FUNCTION s2s.track_event(text, text, text, inet, text, numeric, text, numeric, text, text) FROM shop_app');

# The updated extension equals a fresh install, object for object.
my $describe = <<'SQL';
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 's2s_tracking'),
members AS (
  SELECT d.classid, d.objid, d.objsubid FROM pg_depend d, ext
   WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e')
SELECT string_agg(line, E'\n' ORDER BY line COLLATE "C") FROM (
  SELECT 'member ' || pg_describe_object(classid, objid, objsubid) AS line FROM members
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid))
         || ' acl ' || coalesce(p.proacl::text, '-')
    FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
   WHERE p.prokind IN ('f', 'p')
  UNION ALL
  SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || ' collate ' || CASE WHEN a.attcollation = 0 THEN '-' ELSE a.attcollation::regcollation::text END
         || ' notnull ' || a.attnotnull || ' identity ' || a.attidentity::text
         || ' default ' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '-')
    FROM members m JOIN pg_attribute a ON m.classid = 'pg_class'::regclass AND a.attrelid = m.objid
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
   WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'acl ' || c.oid::regclass || ' ' || coalesce(c.relacl::text, '-')
    FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid)
    FROM members m JOIN pg_index i ON m.classid = 'pg_class'::regclass AND i.indrelid = m.objid
  UNION ALL
  SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(co.oid)
    FROM members m JOIN pg_constraint co ON m.classid = 'pg_class'::regclass AND co.conrelid = m.objid
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(t.oid)
    FROM members m JOIN pg_trigger t ON m.classid = 'pg_class'::regclass AND t.tgrelid = m.objid
   WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 'view ' || c.oid::regclass || ' ' || md5(pg_get_viewdef(c.oid))
    FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
   WHERE c.relkind = 'v'
  UNION ALL
  SELECT 'config ' || c::regclass || ' ' || coalesce(cond, '')
    FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(c, cond)
   WHERE e.extname = 's2s_tracking'
  UNION ALL
  SELECT 'schema ' || n.nspname || ' ' || coalesce(n.nspacl::text, '-')
    FROM members m JOIN pg_namespace n ON m.classid = 'pg_namespace'::regclass AND n.oid = m.objid
) x
SQL
$node->sql('CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION s2s_tracking');
my $updated = $node->sql($describe);
my $fresh = $node->safe_psql('fresh', $describe);
my @u = split /\n/, $updated;
my @f = split /\n/, $fresh;
my %in_f = map { $_ => 1 } @f;
my %in_u = map { $_ => 1 } @u;
my @only_updated = grep { !$in_f{$_} } @u;
my @only_fresh = grep { !$in_u{$_} } @f;
ok(@u > 50 && !@only_updated && !@only_fresh,
	sprintf('the updated extension equals a fresh install (%d catalog facts compared)', scalar @u))
  or diag("only after the update:\n  " . join("\n  ", @only_updated)
	  . "\nonly in a fresh install:\n  " . join("\n  ", @only_fresh));
$node->stop;
done_testing();
