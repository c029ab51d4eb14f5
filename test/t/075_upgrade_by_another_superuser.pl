# An update run by another superuser than the extension's owner (security review of 0.5.0,
# item 1). doc/hardening.md lets a shop make the owner NOSUPERUSER once installed; the
# update must then be run by another superuser, and the tables it makes would belong to
# that one: the orders trigger (which writes s2s_private.order_first_seen as the owner of
# s2s.deliveries) and the worker (which reads s2s_private.home as the extension's owner)
# would get "permission denied", and SECURITY DEFINER functions made by the 0.3.0--0.4.0
# update (s2s.adopt_home) would run as that other superuser. The update gives every object
# of the extension to the extension's owner, as at a fresh install.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('upgrade_other', extension => 0,
	conf => { 's2s_tracking.database' => "'shop'" });

$node->safe_psql('postgres', <<'SQL');
CREATE ROLE shop_owner LOGIN SUPERUSER;
CREATE ROLE app LOGIN;
CREATE DATABASE shop OWNER shop_owner;
SQL
$node->safe_psql('shop', "CREATE EXTENSION s2s_tracking VERSION '0.3.0'",
	extra_params => [ '-U', 'shop_owner' ]);
sub shop { return $node->safe_psql('shop', $_[0]); }
is(shop("SELECT extowner::regrole || ' ' || extversion FROM pg_extension WHERE extname = 's2s_tracking'"),
	'shop_owner 0.3.0', '0.3.0 installed by shop_owner');

# The shop's tables and endpoint, made by their owner while it still is a superuser.
my $url = $r->url . '/aff/';
$node->safe_psql('shop', <<"SQL", extra_params => [ '-U', 'shop_owner' ]);
INSERT INTO s2s.endpoints (name, kind, url, secret, currency)
VALUES ('aff', 'affilae', '$url', '0123456789abcdef01234567-89abcdef0123456789abcdef', 'EUR');
CREATE TABLE public.orders (number text, amount numeric, cid text, status text NOT NULL DEFAULT 'pending');
GRANT SELECT, INSERT, UPDATE ON public.orders TO app;
SELECT s2s.track_orders('public.orders', 'aff', 'number', 'amount', click_ids => 'cid',
                        status => 'status', validated_statuses => ARRAY['paid']);
SQL

# The hardening, then the update by the bootstrap superuser.
shop('ALTER ROLE shop_owner NOSUPERUSER');

# The demoted owner, who owns schema s2s and the extension's tables, plants code that
# makes it a superuser again when a superuser runs it: operators matching the update's
# comparisons exactly (ahead of pg_catalog's in the update's search_path), and a trigger
# on s2s.deliveries, which the update changes (security review of 0.5.0, second round).
my $escalate = q{IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
                 THEN EXECUTE 'ALTER ROLE shop_owner SUPERUSER'; END IF;};
$node->safe_psql('shop', <<"SQL", extra_params => [ '-U', 'shop_owner' ]);
CREATE FUNCTION s2s.planted_eq(a s2s.delivery_status, b s2s.delivery_status) RETURNS boolean
LANGUAGE plpgsql AS \$\$ BEGIN $escalate RETURN a::text OPERATOR(pg_catalog.=) b::text; END \$\$;
CREATE FUNCTION s2s.planted_ne(a s2s.delivery_status, b s2s.delivery_status) RETURNS boolean
LANGUAGE plpgsql AS \$\$ BEGIN $escalate RETURN a::text OPERATOR(pg_catalog.<>) b::text; END \$\$;
CREATE FUNCTION s2s.planted_class_eq(a oid, b regclass) RETURNS boolean
LANGUAGE plpgsql AS \$\$ BEGIN $escalate RETURN a OPERATOR(pg_catalog.=) b::oid; END \$\$;
CREATE OPERATOR s2s.= (FUNCTION = s2s.planted_eq, LEFTARG = s2s.delivery_status, RIGHTARG = s2s.delivery_status);
CREATE OPERATOR s2s.<> (FUNCTION = s2s.planted_ne, LEFTARG = s2s.delivery_status, RIGHTARG = s2s.delivery_status);
CREATE OPERATOR s2s.= (FUNCTION = s2s.planted_class_eq, LEFTARG = oid, RIGHTARG = regclass);
CREATE FUNCTION s2s.planted_proc_eq(a oid, b regprocedure) RETURNS boolean
LANGUAGE plpgsql AS \$\$ BEGIN $escalate RETURN a OPERATOR(pg_catalog.=) b::oid; END \$\$;
CREATE OPERATOR s2s.= (FUNCTION = s2s.planted_proc_eq, LEFTARG = oid, RIGHTARG = regprocedure);
CREATE FUNCTION s2s.planted_trigger() RETURNS trigger
LANGUAGE plpgsql AS \$\$ BEGIN $escalate RETURN NULL; END \$\$;
CREATE TRIGGER planted AFTER UPDATE ON s2s.deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION s2s.planted_trigger();
SQL
# a finished delivery: the update's statements compare its status
shop("INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, status, attempts, sent_at, finished_at)
      VALUES ('aff', 'conversion', 'finished-before-update', 'sent', 1, now(), now())");
my ($urc, $uout, $uerr) = $node->psql('shop', 'ALTER EXTENSION s2s_tracking UPDATE');
like($uerr, qr/the tables of s2s_tracking carry objects it did not make: trigger planted on table (s2s\.)?deliveries/,
	'the update refuses to run over a trigger the owner put on the extension\'s tables');
is(shop("SELECT extversion FROM pg_extension WHERE extname = 's2s_tracking'"), '0.3.0', 'nothing was updated');
$node->safe_psql('shop', 'DROP TRIGGER planted ON s2s.deliveries', extra_params => [ '-U', 'shop_owner' ]);

# The owner renames the enum and puts under its name a domain whose CHECK runs its code:
# the updates' casts to s2s.delivery_status would evaluate it as the superuser (third
# review). The update checks what the names resolve to, and refuses.
$node->safe_psql('shop', <<"SQL", extra_params => [ '-U', 'shop_owner' ]);
ALTER TYPE s2s.delivery_status RENAME TO delivery_status_real;
CREATE FUNCTION s2s.planted_check(s2s.delivery_status_real) RETURNS boolean
LANGUAGE plpgsql AS \$\$ BEGIN $escalate RETURN true; END \$\$;
CREATE DOMAIN s2s.delivery_status AS s2s.delivery_status_real CHECK (s2s.planted_check(VALUE));
SQL
($urc, $uout, $uerr) = $node->psql('shop', 'ALTER EXTENSION s2s_tracking UPDATE');
like($uerr, qr/s2s\.deliveries or s2s\.delivery_status is no longer what s2s_tracking made/,
	'the update refuses to run over a domain put under the name of the extension\'s enum');
is(shop("SELECT extversion FROM pg_extension WHERE extname = 's2s_tracking'"), '0.3.0', 'nothing was updated');
is(shop("SELECT rolsuper FROM pg_roles WHERE rolname = 'shop_owner'"), 'f',
	'the domain\'s CHECK did not run as the superuser');
$node->safe_psql('shop', <<'SQL', extra_params => [ '-U', 'shop_owner' ]);
DROP DOMAIN s2s.delivery_status;
DROP FUNCTION s2s.planted_check;
ALTER TYPE s2s.delivery_status_real RENAME TO delivery_status;
SQL

# A partial index on s2s.deliveries calling a routine of the extension: a member routine
# the owner replaced would run as the superuser when a query of the update is planned
# (its predicate is folded). The extension attaches none of its routines to that table,
# so the update refuses any (fourth review).
$node->safe_psql('shop',
	"CREATE INDEX planted_member_idx ON s2s.deliveries (id)
	  WHERE s2s.click_time('603ed1800000000000000000') IS NOT NULL",
	extra_params => [ '-U', 'shop_owner' ]);
($urc, $uout, $uerr) = $node->psql('shop', 'ALTER EXTENSION s2s_tracking UPDATE');
like($uerr, qr/the tables of s2s_tracking carry objects it did not make: index (s2s\.)?planted_member_idx/,
	'the update refuses an index on s2s.deliveries that calls a routine of the extension');
is(shop("SELECT extversion FROM pg_extension WHERE extname = 's2s_tracking'"), '0.3.0', 'nothing was updated');
$node->safe_psql('shop', 'DROP INDEX s2s.planted_member_idx', extra_params => [ '-U', 'shop_owner' ]);

shop('ALTER EXTENSION s2s_tracking UPDATE');
is(shop("SELECT rolsuper FROM pg_roles WHERE rolname = 'shop_owner'"), 'f',
	'no planted code ran as the superuser who updated (the operators of the update are pinned)');
$node->safe_psql('shop', <<'SQL', extra_params => [ '-U', 'shop_owner' ]);
DROP OPERATOR s2s.= (s2s.delivery_status, s2s.delivery_status);
DROP OPERATOR s2s.<> (s2s.delivery_status, s2s.delivery_status);
DROP OPERATOR s2s.= (oid, regclass);
DROP OPERATOR s2s.= (oid, regprocedure);
DROP FUNCTION s2s.planted_eq, s2s.planted_ne, s2s.planted_class_eq, s2s.planted_proc_eq,
              s2s.planted_trigger;
SQL
shop("DELETE FROM s2s.deliveries WHERE dedupe_key = 'finished-before-update'");
my $current = shop("SELECT default_version FROM pg_available_extensions WHERE name = 's2s_tracking'");
is(shop("SELECT extversion FROM pg_extension WHERE extname = 's2s_tracking'"), $current,
	"updated to $current by another superuser");
is(shop("SELECT string_agg(relname || ':' || relowner::regrole, ',' ORDER BY relname) FROM pg_class WHERE relnamespace = 's2s_private'::regnamespace AND relkind = 'r'"),
	'endpoint_secrets:shop_owner,home:shop_owner,order_first_seen:shop_owner',
	'the tables of s2s_private belong to the owner of s2s.deliveries');
is(shop(<<'SQL'), '', 'every object of the extension belongs to its owner (none to the superuser who updated it)');
SELECT string_agg(pg_describe_object(d.classid, d.objid, 0), ', ' ORDER BY 1)
  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 's2s_tracking'
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND coalesce((SELECT relowner FROM pg_class WHERE d.classid = 'pg_class'::regclass AND oid = d.objid),
                (SELECT proowner FROM pg_proc WHERE d.classid = 'pg_proc'::regclass AND oid = d.objid),
                (SELECT typowner FROM pg_type WHERE d.classid = 'pg_type'::regclass AND oid = d.objid),
                (SELECT nspowner FROM pg_namespace WHERE d.classid = 'pg_namespace'::regclass AND oid = d.objid),
                e.extowner) <> e.extowner
SQL
is(shop("SELECT proowner::regrole FROM pg_proc WHERE oid = 's2s.adopt_home()'::regprocedure"), 'shop_owner',
	's2s.adopt_home (SECURITY DEFINER, made by the 0.3.0--0.4.0 update) runs as the owner');

# The app places an order not validated yet, with a click ID: recorded, not refused.
my $cid = "lpad(to_hex(extract(epoch FROM now())::bigint - 60), 8, '0') || '0000000000000001'";
my ($rc, $out, $err) = $node->psql('shop', "INSERT INTO public.orders (number, amount, cid) VALUES ('wire-1', 10, $cid)",
	extra_params => [ '-U', 'app' ]);
is($rc . $err, '0', 'the app inserts an unvalidated order with a click ID');
is(shop("SELECT order_id FROM s2s_private.order_first_seen WHERE endpoint = 'aff'"), 'wire-1',
	'its first-seen time is recorded');

($rc, $out, $err) = $node->psql('shop', "UPDATE public.orders SET status = 'paid' WHERE number = 'wire-1'",
	extra_params => [ '-U', 'app' ]);
is($rc . $err, '0', 'the app validates it');
is(shop("SELECT dedupe_key FROM s2s.deliveries WHERE endpoint = 'aff'"), 'order:wire-1',
	'its conversion is enqueued');
is(shop("SELECT count(*) FROM s2s_private.order_first_seen"), '0', 'its first-seen row is taken');

# The worker, as the extension's owner, reads s2s_private.home before it claims.
ok($node->poll_query_until('shop', "SELECT count(*) = 1 FROM s2s.deliveries WHERE status = 'sent'"),
	'the worker sends the conversion');
is(shop("SELECT count(*) FROM s2s.endpoints WHERE paused_at IS NOT NULL"), '0', 'no endpoint paused');

$node->stop;
$r->stop;
done_testing();
