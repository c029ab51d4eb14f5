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
# issue 12: amounts in the currency's minor unit, an IPv4-mapped client address as IPv4,
# Swaarm's POST with the Authorization header and the parameters in the query, the
# attribution-only s2sevent
$node->add_endpoint('aff2', 'affilae', $r->url . '/aff2/', secret => $key);
$node->add_endpoint('swpost', 'swaarm_postback', $r->url . '/post', secret => 'tok4',
	http_method => 'POST');
$node->add_endpoint('sws2', 'swaarm_s2sevent', $r->url . '/s2/', secret => 'tok5');

$node->sql(<<'SQL');
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, amount, currency,
                            payment, customer, cv, voucher, click_ids, client_ip, user_agent,
                            referer)
VALUES ('aff', 'conversion', 'o-1', 'order 1/é', 123.4500, 'EUR', 'online', 'cust&1', NULL,
        'V1;V2', '603ed1800000000000000000-603ed1800000000000000001', '2001:db8::1',
        'Mozilla/5.0 (X11) "q"', 'https://shop.example/p?a=1');
SELECT s2s.track_event('swp', 'user 1', 'purchase', '192.0.2.7', 'UA/1.0', 12.5, 'USD',
                       NULL, 'v=1&x', 'ev-1');
SELECT s2s.track_event('swq', 'u2', 'install', '192.0.2.8', 'UA/2.0', dedupe_key => 'ev-2');
SELECT s2s.track_event('sws', 'u3', '__open', '192.0.2.9', 'UA/3.0', dedupe_key => 'ev-3');
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, amount, currency,
                            click_ids, client_ip)
VALUES ('aff2', 'conversion', 'o-2', 'o-2', 100.0000, 'JPY', '603ed1800000000000000000',
        '::ffff:198.51.100.7');
SELECT s2s.track_event('swpost', 'u4', 'purchase', '::ffff:192.0.2.10', 'UA/4.0', 1.2345,
                       'EUR', dedupe_key => 'ev-4');
SELECT s2s.track_event('sws2', 'u5', '', '::ffff:192.0.2.11', 'UA/5.0', dedupe_key => 'ev-5');
SQL

$node->poll("SELECT count(*) = 7 FROM s2s.deliveries WHERE status = 'sent'", 'all seven sent');
my %by_path = map { $_->{path} => $_ } @{ $r->requests };
is(scalar keys %by_path, 7, 'seven distinct requests');

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
is(S2S::Receiver::header($a, 'User-Agent'), 's2s_tracking/' . S2S::Node::control_version(), 'User-Agent names the extension');
ok(!defined S2S::Receiver::header($a, 'Authorization'), 'Affilae: no Authorization header');

# Swaarm postback, token in the Authorization header
my $p = $by_path{'/postback'};
ok($p, 'Swaarm postback on /postback');
is($p->{method}, 'GET', 'Swaarm postback: GET');
is(S2S::Receiver::header($p, 'Authorization'), 'tok/en+1', 'Swaarm: Authorization header carries the token');
is_deeply(S2S::Receiver::query_pairs($p),
	[ [ user_id => 'user 1' ], [ event_id => 'purchase' ], [ ip_address => '192.0.2.7' ],
	  [ user_agent => 'UA/1.0' ], [ sale_amount => '12.50' ], [ sale_amount_currency => 'USD' ],
	  [ event_value => 'v=1&x' ] ],
	'Swaarm postback: parameters');
unlike($p->{query}, qr/tok/, 'Swaarm postback: token not in the URL');
is(S2S::Receiver::header($p, 'User-Agent'), 's2s_tracking/' . S2S::Node::control_version(), 'Swaarm: User-Agent');

# Swaarm postback, POST with the token in the query
my $q = $by_path{'/q/postback'};
ok($q, 'Swaarm POST postback on its domain + /postback');
is($q->{method}, 'POST', 'Swaarm postback: POST');
is($q->{query}, 's2s_token=tok2&user_id=u2&event_id=install&ip_address=192.0.2.8&user_agent=UA%2F2.0',
	'Swaarm POST: the token first, then the parameters, in the query');
is($q->{body}, '', 'Swaarm POST: no body');
is(S2S::Receiver::header($q, 'Content-Length'), '0', 'Swaarm POST: Content-Length: 0');
ok(!defined S2S::Receiver::header($q, 'Content-Type'), 'Swaarm POST: no Content-Type (no form)');

# Swaarm postback, POST with the Authorization header (Swaarm's own POST example)
my $sp = $by_path{'/post/postback'};
ok($sp, 'Swaarm POST postback with the Authorization header');
is($sp->{method}, 'POST', 'Swaarm postback: POST');
is(S2S::Receiver::header($sp, 'Authorization'), 'tok4', 'Swaarm POST: Authorization header');
is($sp->{query},
	'user_id=u4&event_id=purchase&ip_address=192.0.2.10&user_agent=UA%2F4.0&sale_amount=1.2345&sale_amount_currency=EUR',
	'Swaarm POST: parameters in the query, an IPv4-mapped address as IPv4, a real fraction kept');
is($sp->{body}, '', 'Swaarm POST: no body');
is(S2S::Receiver::header($sp, 'Content-Length'), '0', 'Swaarm POST: Content-Length: 0');
ok(!defined S2S::Receiver::header($sp, 'Content-Type'), 'Swaarm POST: no Content-Type');

# Affilae: an amount in yen, an IPv4-mapped client address
my $a2 = $by_path{'/aff2/'};
ok($a2, 'second Affilae postback');
is(S2S::Receiver::query_params($a2)->{amount}, '100', 'Affilae: 100.0000 JPY sent as 100');
is(S2S::Receiver::header($a2, 'x-ae-d-ip'), '198.51.100.7',
	'Affilae: x-ae-d-ip of an IPv4-mapped address is the IPv4 address');

# Swaarm s2sevent
my $s = $by_path{'/s/s2sevent'};
ok($s, 'Swaarm s2sevent on /s2sevent');
is_deeply(S2S::Receiver::query_pairs($s),
	[ [ token => 'tok3' ], [ user_id => 'u3' ], [ event_id => '__open' ],
	  [ user_ip => '192.0.2.9' ], [ user_ua => 'UA/3.0' ] ],
	'Swaarm s2sevent: parameters');
my $s2 = $by_path{'/s2/s2sevent'};
ok($s2, 'attribution-only s2sevent');
like($s2->{query}, qr/&user_id=u5&event_id=&user_ip=192\.0\.2\.11&user_ua=UA%2F5\.0$/,
	'Swaarm s2sevent: an empty event_id is sent as "event_id="');

# What "sent" means: a 2xx whose body matches the endpoint's refused_pattern is a
# refusal, final, with the body as the reason; a 2xx that does not match is sent.
$node->add_endpoint('affr', 'affilae', $r->url . '/affr/', secret => $key,
	refused_pattern => '"status": *"error"|[Uu]nknown click');
$node->add_endpoint('affok', 'affilae', $r->url . '/affok/', secret => $key,
	refused_pattern => '"status": *"error"');
$r->behave(path_prefix => '/affr/', status => 200,
	body => qq({"status": "error", "message": "Unknown click ID for key $key"}));
$r->behave(path_prefix => '/affok/', status => 200, body => '{"status": "ok"}');
$node->enqueue_conversions('affr', 1);
$node->enqueue_conversions('affok', 1);
$node->poll("SELECT count(*) = 2 FROM s2s.deliveries WHERE endpoint IN ('affr', 'affok') AND status IN ('sent', 'failed')",
	'both answered');
is($node->sql("SELECT status || ' ' || last_http_status || ' ' || attempts FROM s2s.deliveries WHERE endpoint = 'affr'"),
	'failed 200 1', 'a matching 2xx: failed after one attempt');
my $reason = $node->sql("SELECT last_error FROM s2s.deliveries WHERE endpoint = 'affr'");
like($reason, qr/^HTTP 200: refused: the answer matches the endpoint's refused_pattern: \{"status": "error", "message": "Unknown click ID for key \*+"\}$/,
	'the reason quotes the body, the key masked');
unlike($reason, qr/\Q$key\E/, 'no key in the reason');
is($node->sql("SELECT status || ' ' || coalesce(last_error, '') FROM s2s.deliveries WHERE endpoint = 'affok'"),
	'sent ', 'a 2xx that does not match: sent');
is($node->sql("SELECT count(*) FROM s2s.endpoints WHERE name = 'affr' AND paused_at IS NULL"), '1',
	'a refusal does not pause the endpoint');
# final ('failed', not 'retrying'), and the audit trail says why
is($node->sql("SELECT count(*) FROM s2s.attempts a JOIN s2s.deliveries d ON d.id = a.delivery_id WHERE d.endpoint = 'affr' AND a.http_status = 200 AND a.error LIKE '%refused_pattern%'"),
	'1', 'the attempt records the refusal');
# a changed pattern is compiled again: the same answer, now not matching, is sent
$node->sql("UPDATE s2s.endpoints SET refused_pattern = 'nothing like it' WHERE name = 'affr'");
$node->enqueue_conversions('affr', 1, 1);
$node->poll("SELECT status = 'sent' FROM s2s.deliveries WHERE endpoint = 'affr' AND dedupe_key = 'order-2'",
	'after the pattern changed, the same answer is a success');

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
