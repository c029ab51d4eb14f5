# Upgrade to 0.4.0 of tracked orders tables: the tracking triggers that 0.3.0 made
# (AFTER INSERT OR UPDATE OF <status>, which misses a status set by a shop's own BEFORE
# trigger) become the ones track_orders makes now (AFTER INSERT OR UPDATE), keeping their
# name, arguments, enabled state and comment, on plain and partitioned tables; a table
# without a status column keeps its INSERT trigger; a delivery that 0.3.0 skipped for a bad
# currency (left NULL) gets its currency back, so that s2s.retry refuses it; a role granted
# track_orders keeps it although its signature grows.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;

my $node = S2S::Node->create('upgrade_trigger', extension => 0);
$node->sql("CREATE EXTENSION s2s_tracking VERSION '0.3.0'");
$node->wait_worker;
$node->add_endpoint('aff', 'affilae', 'https://lb.affilae.com/', enabled => 'false');
$node->add_endpoint('aff2', 'affilae', 'https://lb.affilae.com/two', enabled => 'false');
my $cid = "lpad(to_hex(extract(epoch FROM now())::bigint - 60), 8, '0') || '0000000000000001'";

# The triggers exactly as 0.3.0's track_orders made them (this library's would already be
# the new ones), one disabled and commented, one on a partitioned table.
$node->sql(<<'SQL');
CREATE SCHEMA shop;
CREATE TABLE shop.orders (number text PRIMARY KEY, amount numeric, cids text,
                          "Order Status" text NOT NULL DEFAULT 'new', paid_at timestamptz);
CREATE FUNCTION shop.paid_when_paid_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.paid_at IS NOT NULL AND OLD.paid_at IS NULL THEN
        NEW."Order Status" := 'paid';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER paid_when_paid_at BEFORE UPDATE ON shop.orders
    FOR EACH ROW EXECUTE FUNCTION shop.paid_when_paid_at();
CREATE TRIGGER s2s_track_aff AFTER INSERT OR UPDATE OF "Order Status" ON shop.orders
    FOR EACH ROW EXECUTE FUNCTION s2s.enqueue_conversion('endpoint=aff', 'order_id=number',
        'amount=amount', 'click_ids=cids', 'status=Order Status', 'validated_status=paid');
CREATE TRIGGER s2s_track_aff2 AFTER INSERT OR UPDATE OF "Order Status" ON shop.orders
    FOR EACH ROW EXECUTE FUNCTION s2s.enqueue_conversion('endpoint=aff2', 'order_id=number',
        'amount=amount', 'click_ids=cids', 'status=Order Status', 'validated_status=paid');
ALTER TABLE shop.orders DISABLE TRIGGER s2s_track_aff2;
COMMENT ON TRIGGER s2s_track_aff2 ON shop.orders IS 'second program, off for now';
CREATE TABLE shop.plain (number text, amount numeric, cids text);
CREATE TRIGGER s2s_track_aff AFTER INSERT ON shop.plain
    FOR EACH ROW EXECUTE FUNCTION s2s.enqueue_conversion('endpoint=aff', 'order_id=number',
        'amount=amount', 'click_ids=cids');
CREATE TABLE shop.parted (number text, amount numeric, cids text, status text, region int)
    PARTITION BY LIST (region);
CREATE TABLE shop.parted_1 PARTITION OF shop.parted FOR VALUES IN (1);
CREATE TRIGGER s2s_track_aff AFTER INSERT OR UPDATE OF status ON shop.parted
    FOR EACH ROW EXECUTE FUNCTION s2s.enqueue_conversion('endpoint=aff', 'order_id=number',
        'amount=amount', 'click_ids=cids', 'status=status', 'validated_status=paid');
SQL
# A conversion skipped by 0.3.0 for its currency: the currency NULL, the value only in the
# reason.
$node->sql("INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, amount,
                                        click_ids, status, last_error, finished_at)
            VALUES ('aff', 'conversion', 'order:old-1', 'old-1', 5, $cid, 'skipped',
                    'The order''s currency \"US\$\" is not an ISO 4217 code (three letters).', now())");

# Under 0.3.0, the shop's trigger setting the status is not seen.
$node->sql("INSERT INTO shop.orders (number, amount, cids) VALUES ('before-1', 5, $cid)");
$node->sql("UPDATE shop.orders SET paid_at = now() WHERE number = 'before-1'");
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE dedupe_key = 'order:before-1'"), '0',
	'0.3.0 triggers miss a status set by the shop\'s BEFORE trigger');

my $defs = "SELECT string_agg(tgrelid::regclass::text || ' ' || tgenabled::text || ' ' || pg_get_triggerdef(oid)
                              || coalesce(' -- ' || obj_description(oid, 'pg_trigger'), ''), E'\\n'
                              ORDER BY tgrelid::regclass::text, tgname)
              FROM pg_trigger WHERE tgfoid = 's2s.enqueue_conversion'::regproc";
# A delegated administrator granted track_orders under 0.3.0 keeps it through the new
# signature (the update drops and creates the function).
$node->sql("CREATE ROLE \"Shop Admin\"; GRANT EXECUTE ON FUNCTION s2s.track_orders TO \"Shop Admin\"");
$node->sql('ALTER EXTENSION s2s_tracking UPDATE');
is($node->sql("SELECT has_function_privilege('Shop Admin', "
	  . "'s2s.track_orders(regclass, text, text, text, text, text, text, text, text, text, text, "
	  . "text, text, text, text[], text, text, text, jsonb, text)', 'EXECUTE')"),
	't', 'a grant on track_orders survives its new signature');
my $after = $node->sql($defs);
unlike($after, qr/UPDATE OF/, 'no tracking trigger fires on UPDATE OF a column list any more')
  or diag($after);
like($after, qr/^shop\.orders D CREATE TRIGGER s2s_track_aff2 AFTER INSERT OR UPDATE ON shop\.orders .* -- second program, off for now$/m,
	'a disabled, commented trigger stays disabled and commented');
like($after, qr/^shop\.parted_1 O CREATE TRIGGER s2s_track_aff AFTER INSERT OR UPDATE ON shop\.parted_1 /m,
	'the partition follows its parent\'s trigger');
like($after, qr/^shop\.plain O CREATE TRIGGER s2s_track_aff AFTER INSERT ON shop\.plain /m,
	'a table without a status column keeps its INSERT trigger');

# What track_orders makes now is what the update made.
$node->sql(<<'SQL');
SELECT s2s.track_orders('shop.orders', 'aff', 'number', 'amount', click_ids => 'cids',
                        status => 'Order Status', validated_statuses => ARRAY['paid']);
SELECT s2s.track_orders('shop.orders', 'aff2', 'number', 'amount', click_ids => 'cids',
                        status => 'Order Status', validated_statuses => ARRAY['paid']);
ALTER TABLE shop.orders DISABLE TRIGGER s2s_track_aff2;
COMMENT ON TRIGGER s2s_track_aff2 ON shop.orders IS 'second program, off for now';
SELECT s2s.track_orders('shop.plain', 'aff', 'number', 'amount', click_ids => 'cids');
SELECT s2s.track_orders('shop.parted', 'aff', 'number', 'amount', click_ids => 'cids',
                        status => 'status', validated_statuses => ARRAY['paid']);
SQL
is($node->sql($defs), $after, 'the updated triggers are the ones track_orders makes');

# Every transition counts after the update.
$node->sql("INSERT INTO shop.orders (number, amount, cids) VALUES ('after-1', 6, $cid)");
$node->sql("UPDATE shop.orders SET paid_at = now() WHERE number = 'after-1'");
is($node->sql("SELECT endpoint || ' ' || status FROM s2s.deliveries WHERE dedupe_key = 'order:after-1'"),
	'aff pending', 'a status set by the shop\'s BEFORE trigger enqueues the conversion after the update');

# The conversion 0.3.0 skipped keeps its bad currency, and a retry refuses it.
is($node->sql("SELECT currency FROM s2s.deliveries WHERE dedupe_key = 'order:old-1'"), 'US$',
	'the bad currency is back in the skipped delivery');
my ($rc, $out, $err) = $node->psql('postgres',
	"SELECT s2s.retry(id) FROM s2s.deliveries WHERE dedupe_key = 'order:old-1'");
like($err, qr/cannot be sent.*\n.*DETAIL:  The order's currency "US\$" is not an ISO 4217 code/,
	'a retry of it is refused with the reason');

$node->stop;
done_testing();
