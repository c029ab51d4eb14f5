# The exact requests the worker sends for each endpoint kind, as the receiver got them:
# method, path, query parameters in order and percent-encoded, and headers (Affilae's
# x-ae-d-ip / x-ae-d-ua / Referer, Swaarm's Authorization, the User-Agent).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('wire');
my $key = '0123456789abcdef01234567-89abcdef0123456789abcdef';

$node->add_endpoint('aff', 'affilae', $r->url . '/aff/', secret => $key);
$node->add_endpoint('swp', 'swaarm_postback', $r->url, secret => 'tok/en+1');
$node->add_endpoint('swq', 'swaarm_postback', $r->url . '/q', secret => 'tok2',
	token_in_query => 'true', http_method => 'POST');
$node->add_endpoint('sws', 'swaarm_s2sevent', $r->url . '/s/', secret => 'tok3');

$node->sql(<<'SQL');
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, amount, currency,
                            payment, customer, cv, voucher, click_ids, client_ip, user_agent,
                            referer)
VALUES ('aff', 'conversion', 'o-1', 'order 1/é', 123.45, 'EUR', 'online', 'cust&1', NULL,
        'V1;V2', '603ed1800000000000000000-603ed1800000000000000001', '2001:db8::1',
        'Mozilla/5.0 (X11) "q"', 'https://shop.example/p?a=1');
SELECT s2s.track_event('swp', 'user 1', 'purchase', '192.0.2.7', 'UA/1.0', 12.5, 'USD',
                       NULL, 'v=1&x', 'ev-1');
SELECT s2s.track_event('swq', 'u2', 'install', '192.0.2.8', 'UA/2.0', dedupe_key => 'ev-2');
SELECT s2s.track_event('sws', 'u3', '__open', '192.0.2.9', 'UA/3.0', dedupe_key => 'ev-3');
SQL

$node->poll("SELECT count(*) = 4 FROM s2s.deliveries WHERE status = 'sent'", 'all four sent');
my %by_path = map { $_->{path} => $_ } @{ $r->requests };
is(scalar keys %by_path, 4, 'four distinct requests');

sub header_names_lc { [ map { lc $_->[0] } @{ $_[0]{headers} } ] }

# Affilae
my $a = $by_path{'/aff/'};
ok($a, 'Affilae postback on its URL');
is($a->{method}, 'GET', 'Affilae: GET');
is_deeply(S2S::Receiver::query_pairs($a),
	[ [ key => $key ], [ id => 'order 1/é' ], [ amount => '123.45' ], [ currency => 'EUR' ],
	  [ payment => 'online' ], [ customer => 'cust&1' ], [ voucher => 'V1;V2' ],
	  [ cids => '603ed1800000000000000000-603ed1800000000000000001' ] ],
	'Affilae: query parameters in order, decoded');
like($a->{query}, qr/id=order%201%2F%C3%A9&/, 'Affilae: values percent-encoded');
is(S2S::Receiver::header($a, 'x-ae-d-ip'), '2001:db8::1', 'Affilae: x-ae-d-ip');
is(S2S::Receiver::header($a, 'x-ae-d-ua'), 'Mozilla/5.0 (X11) "q"', 'Affilae: x-ae-d-ua');
is(S2S::Receiver::header($a, 'Referer'), 'https://shop.example/p?a=1', 'Affilae: Referer');
is(S2S::Receiver::header($a, 'User-Agent'), 's2s_tracking/0.4.0', 'User-Agent names the extension');
ok(!defined S2S::Receiver::header($a, 'Authorization'), 'Affilae: no Authorization header');

# Swaarm postback, token in the Authorization header
my $p = $by_path{'/postback'};
ok($p, 'Swaarm postback on /postback');
is($p->{method}, 'GET', 'Swaarm postback: GET');
is(S2S::Receiver::header($p, 'Authorization'), 'tok/en+1', 'Swaarm: Authorization header carries the token');
is_deeply(S2S::Receiver::query_pairs($p),
	[ [ user_id => 'user 1' ], [ event_id => 'purchase' ], [ ip_address => '192.0.2.7' ],
	  [ user_agent => 'UA/1.0' ], [ sale_amount => '12.5' ], [ sale_amount_currency => 'USD' ],
	  [ event_value => 'v=1&x' ] ],
	'Swaarm postback: parameters');
unlike($p->{query}, qr/tok/, 'Swaarm postback: token not in the URL');
is(S2S::Receiver::header($p, 'User-Agent'), 's2s_tracking/0.4.0', 'Swaarm: User-Agent');

# Swaarm postback, POST with the token in the query
my $q = $by_path{'/q/postback'};
ok($q, 'Swaarm POST postback on its domain + /postback');
is($q->{method}, 'POST', 'Swaarm postback: POST');
is($q->{query}, 's2s_token=tok2', 'Swaarm POST: only the token in the query');
is($q->{body}, 'user_id=u2&event_id=install&ip_address=192.0.2.8&user_agent=UA%2F2.0',
	'Swaarm POST: form body');
like(S2S::Receiver::header($q, 'Content-Type'), qr{^application/x-www-form-urlencoded},
	'Swaarm POST: form content type');

# Swaarm s2sevent
my $s = $by_path{'/s/s2sevent'};
ok($s, 'Swaarm s2sevent on /s2sevent');
is_deeply(S2S::Receiver::query_pairs($s),
	[ [ token => 'tok3' ], [ user_id => 'u3' ], [ event_id => '__open' ],
	  [ user_ip => '192.0.2.9' ], [ user_ua => 'UA/3.0' ] ],
	'Swaarm s2sevent: parameters');

# Secrets never reach the tables that the app can read, nor the log.
is($node->sql("SELECT count(*) FROM s2s.deliveries d, s2s.attempts a WHERE a.delivery_id = d.id AND (d::text LIKE '%tok%' OR a::text LIKE '%$key%')"),
	'0', 'no secret in deliveries or attempts');
# (The harness logs every statement, the test's own INSERTs of the secrets among them:
# those lines are left out.)
my $log = join('', grep { !/LOG:  statement: / } split /^/, slurp_file($node->logfile));
unlike($log, qr/\Q$key\E|tok2|tok3/, 'no secret in the server log');

$node->stop;
$r->stop;
done_testing();
