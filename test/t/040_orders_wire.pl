# The orders trigger end to end: an order validated in the shop's table reaches Affilae and
# Swaarm (the test receiver) exactly once, with the order's own values, promptly after the
# commit (the poll interval is one hour, so only the trigger's wake-on-commit explains it);
# a rolled-back order never leaves; a disabled endpoint's conversion waits and
# leaves when the endpoint is enabled again.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('orders', conf => { 's2s_tracking.poll_interval' => "'1h'" });

$node->add_endpoint('aff', 'affilae', $r->url . '/aff');
$node->add_endpoint('sw', 'swaarm_postback', $r->url);
$node->sql(<<'SQL');
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    number text NOT NULL,
    amount numeric(12,2),
    currency text,
    status text NOT NULL DEFAULT 'new',
    aecid text,
    device text,
    ip inet,
    ua text,
    referer text
);
SELECT s2s.track_orders('orders', 'aff', order_id => 'number', amount => 'amount',
                        currency => 'currency', click_ids => 'aecid', payment => '''online''',
                        client_ip => 'ip', user_agent => 'ua', referer => 'referer',
                        status => 'status', validated_statuses => ARRAY['paid']);
SELECT s2s.track_orders('orders', 'sw', order_id => 'number', amount => 'amount',
                        currency => 'currency', user_id => 'device', event_id => '''purchase''',
                        client_ip => 'ip', user_agent => 'ua',
                        status => 'status', validated_statuses => ARRAY['paid']);
SQL
$node->wait_for("SELECT last_loop_at > started_at FROM s2s.worker_status()");

# Two click IDs, one and two hours old; the cookie order is oldest first.
my ($c1, $c2) = split /\|/, $node->sql(
	"SELECT lpad(to_hex(extract(epoch FROM now())::bigint - 3600), 8, '0') || '00000000000000aa', "
	  . "lpad(to_hex(extract(epoch FROM now())::bigint - 7200), 8, '0') || '00000000000000bb'");

# Inserted new, then paid, then back and forth: one request per network, right away.
$node->sql(
	"INSERT INTO orders VALUES (1, 'A-1001', 123.45, NULL, 'new', '$c1-$c2', 'dev-42', "
	  . "'203.0.113.9', 'Mozilla/5.0 (test)', 'https://shop.example/cart')");
$node->sql("UPDATE orders SET status = 'paid' WHERE id = 1");
my $reqs = $r->wait_requests(2, 30);
is(scalar @$reqs, 2, 'one request per endpoint after the order became paid');
$node->sql("UPDATE orders SET status = 'refunded' WHERE id = 1");
$node->sql("UPDATE orders SET status = 'paid' WHERE id = 1");
$node->poll("SELECT count(*) = 2 FROM s2s.deliveries WHERE status = 'sent'", 'both sent');

my ($aff) = grep { $_->{path} =~ m{^/aff} } @$reqs;
my ($sw) = grep { $_->{path} =~ m{^/postback} } @$reqs;
ok($aff && $sw, 'Affilae and Swaarm each got their request');
my $q = S2S::Receiver::query_params($aff);
is($q->{id}, 'A-1001', 'Affilae id is the order number');
is($q->{amount}, '123.45', 'Affilae amount is exact');
is($q->{currency}, 'EUR', "Affilae currency is the endpoint's when the order has none");
is($q->{cids}, "$c2-$c1", 'Affilae cids are the click IDs, oldest first');
is($q->{payment}, 'online', 'constant payment');
is(S2S::Receiver::header($aff, 'x-ae-d-ip'), '203.0.113.9', 'client IP header');
is(S2S::Receiver::header($aff, 'x-ae-d-ua'), 'Mozilla/5.0 (test)', 'user agent header');
is(S2S::Receiver::header($aff, 'referer'), 'https://shop.example/cart', 'referer header');
my $s = S2S::Receiver::query_params($sw);
is($s->{user_id}, 'dev-42', 'Swaarm user_id');
is($s->{event_id}, 'purchase', 'Swaarm event_id is the constant');
is($s->{sale_amount}, '123.45', 'Swaarm sale_amount is exact');

# A rolled-back order never leaves; the next committed one does.
$node->sql(
	"BEGIN; INSERT INTO orders VALUES (2, 'A-1002', 5, 'EUR', 'paid', '$c1', 'dev-2', NULL, NULL, NULL); ROLLBACK");
$node->sql(
	"INSERT INTO orders VALUES (3, 'A-1003', 7, 'usd', 'paid', '$c1', NULL, NULL, NULL, NULL)");
$reqs = $r->wait_requests(3, 30);
is(scalar @$reqs, 3, 'the committed order (Affilae only: no Swaarm user) was sent');
my @ids = sort map { S2S::Receiver::query_params($_)->{id} // '' } grep { $_->{path} =~ m{^/aff} } @$reqs;
is_deeply(\@ids, [ 'A-1001', 'A-1003' ], 'the rolled-back order was never sent');
is(S2S::Receiver::query_params($reqs->[-1])->{currency}, 'USD', "the order's own currency");

# A disabled endpoint: the conversion is enqueued and waits; enabling sends it at once.
$node->sql("UPDATE s2s.endpoints SET enabled = false WHERE name = 'aff'");
$node->sql(
	"INSERT INTO orders VALUES (4, 'A-1004', 9, NULL, 'paid', '$c1', NULL, NULL, NULL, NULL)");
is($node->sql("SELECT status FROM s2s.deliveries WHERE dedupe_key = 'order:A-1004'"),
	'pending', 'enqueued while the endpoint is disabled');
sleep(1.5);
is(scalar @{ $r->requests }, 3, 'nothing sent to a disabled endpoint');
$node->sql("UPDATE s2s.endpoints SET enabled = true WHERE name = 'aff'");
$reqs = $r->wait_requests(4, 30);
is(scalar @$reqs, 4, 'sent as soon as the endpoint is enabled again');
is(S2S::Receiver::query_params($reqs->[-1])->{id}, 'A-1004', 'the waiting conversion');

$node->stop;
$r->stop;
done_testing();
