# Secrets in stored responses. A receiver whose answer quotes the request (an error page
# of a proxy or firewall echoing the request line and headers) must not put the Affilae
# key or the Swaarm token into s2s.deliveries (last_response, last_error) or s2s.attempts
# (response, error), in any form: raw, percent-encoded with upper- or lower-case hex
# digits, decoded, and not even the start of it when the body is cut by
# s2s_tracking.response_limit in the middle of the secret. The receiver's "echo" mode
# answers the request line as received, with lower-case escapes, decoded, and the headers.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;
use S2S::Receiver;

my $key = '603ed1800000000000000000-5f8a9c000000000000000abc';
# a token whose percent-encoded form differs from its raw form
my $token = 'Tok/en+S3cr=t~x';
my $token_h = 'header-token-5e3b1c';
my $token_e = 'event/token+9f';

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('redact', conf => { 's2s_tracking.poll_interval' => "'1s'" });
$node->add_endpoint('aff', 'affilae', $r->url . '/aff', secret => $key);
$node->add_endpoint('swq', 'swaarm_postback', $r->url . '/swq', secret => $token,
	token_in_query => 'true');
$node->add_endpoint('swh', 'swaarm_postback', $r->url . '/swh', secret => $token_h);
$node->add_endpoint('sws', 'swaarm_s2sevent', $r->url . '/sws', secret => $token_e);

# The forms of a secret a stored text must not contain (compared case-insensitively).
sub forms
{
	my $s = shift;
	(my $enc = $s) =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord($1))/ge;
	(my $form = $enc) =~ s/%20/+/g;
	my %seen;
	return grep { !$seen{$_}++ } ($s, $enc, lc $enc, $form);
}

# Every stored text of every delivery and attempt, one per line.
sub stored
{
	return $node->sql(<<'SQL');
SELECT concat_ws(E'\n', last_response, last_error) FROM s2s.deliveries
UNION ALL
SELECT concat_ws(E'\n', response, error) FROM s2s.attempts
UNION ALL
SELECT concat_ws(E'\n', pause_reason) FROM s2s.endpoints
SQL
}

sub no_secret_stored
{
	my ($what, %prefixes) = @_;
	my $all = lc stored();
	for my $s ($key, $token, $token_h, $token_e)
	{
		for my $f (forms($s))
		{
			ok(index($all, lc $f) < 0, "$what: no stored text holds \"$f\"");
		}
	}
	for my $p (sort keys %prefixes)
	{
		ok(index($all, lc $p) < 0, "$what: no stored text holds $prefixes{$p} \"$p\"");
	}
}

sub enqueue_all
{
	my $n = shift;
	$node->enqueue_conversions('aff', 1, $n);
	$node->sql(<<"SQL");
SELECT s2s.track_event('swq', 'user-$n', 'purchase', '192.0.2.1', 'UA', 12.5, 'EUR');
SELECT s2s.track_event('swh', 'user-$n', 'register', '192.0.2.1', 'UA');
SELECT s2s.track_event('sws', 'user-$n', 'register', '192.0.2.1', 'UA');
SQL
}

# 1. The first attempt is answered 500 with the request echoed, the retry 200 with the
#    request echoed: both bodies are stored (attempts.response, last_response).
$r->behave(mode => 'echo', status => 200);
$r->behave(path_prefix => $_, mode => 'echo', status => 500, times => 1)
  for ('/aff', '/swq', '/swh', '/sws');
enqueue_all(1);
$node->poll("SELECT count(*) = 4 FROM s2s.deliveries WHERE status = 'sent'",
	'the first attempts were answered 500, the retries 200, both echoing the request');
is($node->sql("SELECT count(*) FILTER (WHERE http_status = 500) || '/' || count(*) FROM s2s.attempts"),
	'4/8', 'eight attempts, four of them answered 500');

my $resp = $node->sql("SELECT last_response FROM s2s.deliveries WHERE endpoint = 'aff'");
like($resp, qr{^GET /aff\?key=\*{49}&id=order-2}, 'the echoed request line is kept, the key masked');
$resp = $node->sql("SELECT last_response FROM s2s.deliveries WHERE endpoint = 'swq'");
like($resp, qr{s2s_token=\*+&user_id=user-1}, 'the token in the query is masked');
$resp = $node->sql("SELECT last_response FROM s2s.deliveries WHERE endpoint = 'swh'");
like($resp, qr{Authorization: \*{19}\n}i, 'the token in the Authorization header is masked');
no_secret_stored('whole bodies');

# 2. The body cut by response_limit in the middle of the secret: the start of the secret
#    at the end of the kept body is masked too. "GET /aff?key=" is 13 bytes: 20 bytes of
#    the key are kept. For swq, the cut falls inside the escape of '/'.
$node->set_conf('s2s_tracking.response_limit', '40');
$r->reset;
$r->behave(mode => 'echo', status => 200);
$r->behave(path_prefix => '/aff', mode => 'echo', status => 500, times => 1);
my $q = "GET /swq/postback?s2s_token=Tok%2";
$r->behave(path_prefix => '/swq', mode => 'echo', status => 500, times => 1,
	echo_pad => 40 - length($q));
$node->enqueue_conversions('aff', 1, 10);
$node->sql("SELECT s2s.track_event('swq', 'user-10', 'purchase', '192.0.2.1', 'UA', 1, 'EUR')");
$node->poll("SELECT count(*) = 6 FROM s2s.deliveries WHERE status = 'sent'",
	'two more deliveries: answered 500 then 200, their bodies cut at 40 bytes');
is($node->sql("SELECT response FROM s2s.attempts WHERE http_status = 500 AND length(response) = 40 AND response LIKE 'GET%'"),
	'GET /aff?key=' . ('*' x 27), 'the start of the key at the end of a cut body is masked');
like($node->sql("SELECT response FROM s2s.attempts WHERE http_status = 500 AND length(response) = 40 AND response LIKE 'x%'"),
	qr{s2s_token=\*{5}$}, 'a cut in the middle of an escape of the token is masked');
no_secret_stored('cut bodies', substr($key, 0, 27) => 'the start of the key',
	'Tok%2' => 'the start of the encoded token');

$node->stop;
$r->stop;
done_testing();
