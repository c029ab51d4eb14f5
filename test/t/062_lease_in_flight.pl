# A lease shorter than a request. The endpoint's request_timeout (8 s) exceeds
# s2s_tracking.lease (1 s) and the receiver takes 3 s to answer: the worker renews the
# lease of its requests in flight, so the poll's reconcile (every second here) never gives
# one back while it is in flight. Each delivery reaches the receiver exactly once and its
# result is recorded. Also with synchronous_commit = off for the whole cluster, and when
# a reload shortens the lease while requests are in flight.
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
my $node = S2S::Node->create('lease_in_flight',
	conf => {
		's2s_tracking.lease' => "'1s'",
		's2s_tracking.poll_interval' => "'1s'",
		'synchronous_commit' => 'off',
	});
$node->add_endpoint('aff', 'affilae', $r->url . '/aff', request_timeout => '8 s');

# Every request exactly once: no dedupe key (order id) twice among the requests.
sub each_once
{
	my ($what, $n) = @_;
	my %seen;
	$seen{ S2S::Receiver::query_params($_)->{id} }++ for @{ $r->requests };
	is(scalar(keys %seen), $n, "$what: $n deliveries reached the receiver");
	is(scalar(grep { $_ > 1 } values %seen), 0, "$what: none of them twice");
}

# 1. Requests that outlive the lease three times over.
$r->behave(path_prefix => '/aff', delay_ms => 3000);
$node->enqueue_conversions('aff', 5);
$node->poll("SELECT count(*) = 5 FROM s2s.deliveries WHERE status = 'sending'",
	'five requests in flight');
$node->poll("SELECT count(*) = 5 FROM s2s.deliveries WHERE status = 'sending' AND lease_until > now() + interval '100 ms' AND lease_until > created_at + interval '1.5 s'",
	'their leases were renewed while they are in flight');
$node->poll("SELECT count(*) = 5 FROM s2s.deliveries WHERE status = 'sent'",
	'all five sent');
# a duplicate claim would have sent again while the first requests were in flight; give
# a second copy every chance to arrive
sleep 2;
each_once('lease shorter than the requests', 5);
is($node->sql("SELECT string_agg(DISTINCT attempts || '|' || last_http_status, ',') FROM s2s.deliveries"),
	'1|200', 'each sent on its first attempt, its 200 recorded');
is($node->sql("SELECT count(*) || '|' || count(*) FILTER (WHERE http_status = 200) FROM s2s.attempts"),
	'5|5', 'one attempt row each, with the 200');
is($node->sql("SELECT sent || '|' || retried || '|' || failed FROM s2s.worker_status()"),
	'5|0|0', 'the worker counted five sent');

# 2. A reload shortens the lease while requests are in flight.
$r->reset;
$node->set_conf('s2s_tracking.lease', '30s');
$r->behave(path_prefix => '/aff', delay_ms => 3000);
$node->enqueue_conversions('aff', 3, 100);
$node->poll("SELECT count(*) = 3 FROM s2s.deliveries WHERE status = 'sending'",
	'three requests in flight under a 30 s lease');
$node->set_conf('s2s_tracking.lease', '1s');
$node->enqueue_conversions('aff', 3, 200);
$node->poll("SELECT count(*) = 11 FROM s2s.deliveries WHERE status = 'sent'",
	'the six sent after the lease was shortened');
sleep 2;
each_once('lease shortened by a reload', 6);

# 3. A request that times out (the receiver hangs) past its lease: its attempt is recorded
#    as a timeout and retried, not given back and resent while it hangs.
$r->reset;
$r->behave(path_prefix => '/aff', mode => 'hang', times => 1);
$node->enqueue_conversions('aff', 1, 300);
$node->poll("SELECT status = 'sent' FROM s2s.deliveries WHERE dedupe_key = 'order-301'",
	'the hanging request timed out after 8 s, its retry was sent');
like($node->sql("SELECT string_agg(attempt || ':' || coalesce(http_status::text, error), ' / ' ORDER BY attempt) FROM s2s.attempts a JOIN s2s.deliveries d ON d.id = a.delivery_id WHERE d.dedupe_key = 'order-301'"),
	qr{^1:.*timed out.* / 2:200$}i, 'two attempts recorded: the timeout, then the 200');
is(scalar @{ $r->requests }, 2, 'two requests: the one that hung, then the retry');

$node->stop;
$r->stop;
done_testing();
