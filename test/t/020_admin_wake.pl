# The administrator's switches take effect at once on the wire: re-enabling an endpoint,
# s2s.resume, s2s.retry, s2s.retry_failed and s2s.wake wake the worker when they commit.
# The poll interval is one hour here, so only a wake explains a prompt delivery; a
# disabled or paused endpoint gets nothing while its deliveries wait.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('admin_wake',
	conf => { 's2s_tracking.poll_interval' => "'1h'" });

# Waits until the worker has gone round its loop after this moment (so it has seen
# whatever was committed before), without making a test of it.
sub worker_looked
{
	my $t = $node->sql('SELECT clock_timestamp()');
	$node->sql('SELECT s2s.wake()');
	$node->wait_for("SELECT last_loop_at > '$t' FROM s2s.worker_status()")
	  or die "the worker did not go round its loop";
	return;
}

sub sent { $node->sql("SELECT count(*) FROM s2s.deliveries WHERE endpoint = '$_[0]' AND status = 'sent'") }

# A disabled endpoint: events are enqueued and wait; nothing is sent.
$node->add_endpoint('sw', 'swaarm_postback', $r->url . '/sw', enabled => 'false');
$node->sql("SELECT s2s.track_event('sw', 'u' || i, 'purchase', NULL, NULL) FROM generate_series(1, 3) i");
worker_looked();
is(sent('sw'), '0', 'disabled endpoint: nothing sent');
is(scalar @{ $r->requests(path => '/sw/postback') }, 0, 'disabled endpoint: no request');

# Re-enabling it sends them at once (the endpoints trigger wakes the worker at commit).
$node->sql("UPDATE s2s.endpoints SET enabled = true WHERE name = 'sw'");
$node->poll("SELECT count(*) = 3 FROM s2s.deliveries WHERE endpoint = 'sw' AND status = 'sent'",
	're-enabled endpoint: waiting events sent at once');

# Paused: new events wait, unburned; resume sends them at once.
$node->sql("SELECT s2s.pause('sw', 'maintenance')");
$node->sql("SELECT s2s.track_event('sw', 'p' || i, 'purchase', NULL, NULL) FROM generate_series(1, 2) i");
worker_looked();
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE endpoint = 'sw' AND status = 'pending' AND attempts = 0"),
	'2', 'paused endpoint: events pending, no attempt');
is(scalar @{ $r->requests(path => '/sw/postback') }, 3, 'paused endpoint: no request');
$node->sql("SELECT s2s.resume('sw')");
$node->poll("SELECT count(*) = 5 FROM s2s.deliveries WHERE endpoint = 'sw' AND status = 'sent'",
	'resume: waiting events sent at once');
is($node->sql("SELECT paused_at IS NULL AND pause_reason IS NULL FROM s2s.endpoints WHERE name = 'sw'"),
	't', 'resume: pause cleared');

# A final 400 fails the delivery; s2s.retry sends it again at once, once the receiver
# accepts it; s2s.retry_failed does the same for every failed delivery.
$r->behave(path_prefix => '/sw', status => 400, body => 'no such user');
my $id = $node->sql("SELECT s2s.track_event('sw', 'r1', 'purchase', NULL, NULL)");
$node->poll("SELECT status = 'failed' FROM s2s.deliveries WHERE id = $id", '400: delivery failed');
$r->behave(path_prefix => '/sw', status => 200);
is($node->sql("SELECT s2s.retry($id)"), 't', 'retry re-queues the failed delivery');
$node->poll("SELECT status = 'sent' AND attempts = 2 FROM s2s.deliveries WHERE id = $id",
	'retry: sent at once, on the second attempt');
is($node->sql("SELECT string_agg(attempt || ':' || http_status, ',' ORDER BY attempt) FROM s2s.attempts WHERE delivery_id = $id"),
	'1:400,2:200', 'retry: the audit trail goes on numbering');

$r->behave(path_prefix => '/sw', status => 400);
$node->sql("SELECT s2s.track_event('sw', 'f' || i, 'purchase', NULL, NULL) FROM generate_series(1, 4) i");
$node->poll("SELECT count(*) = 4 FROM s2s.deliveries WHERE endpoint = 'sw' AND user_id LIKE 'f%' AND status = 'failed'",
	'400: four deliveries failed');
$r->behave(path_prefix => '/sw', status => 200);
is($node->sql("SELECT s2s.retry_failed('sw')"), '4', 'retry_failed re-queues four');
$node->poll("SELECT count(*) = 4 FROM s2s.deliveries WHERE endpoint = 'sw' AND user_id LIKE 'f%' AND status = 'sent'",
	'retry_failed: all sent at once');

# s2s.wake: a delivery written straight into the queue (no wake of its own) waits for the
# poll; s2s.wake sends it at once.
worker_looked();
$node->sql("INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, user_id, event_id) VALUES ('sw', 'event', 'direct', 'd1', 'purchase')");
sleep(1.5);
is($node->sql("SELECT status FROM s2s.deliveries WHERE dedupe_key = 'direct'"), 'pending',
	'a delivery inserted without a wake waits for the poll');
$node->sql('SELECT s2s.wake()');
$node->poll("SELECT status = 'sent' FROM s2s.deliveries WHERE dedupe_key = 'direct'",
	's2s.wake: a delivery inserted without a wake is sent once the worker is woken');

# What was sent is what preview showed, with the token in place of the mask.
my ($url, $auth) = split /\|/, $node->sql(
	"SELECT p.url, p.headers[1] FROM s2s.deliveries d, s2s.preview(d.id) p WHERE d.dedupe_key = 'direct'");
my ($req) = grep { S2S::Receiver::query_params($_)->{user_id} eq 'd1' } @{ $r->requests(path => '/sw/postback') };
ok($req, 'the direct delivery reached the receiver');
is($r->url . $req->{path} . '?' . $req->{query}, $url, 'the request URL is the one preview shows');
is($auth, 'Authorization: ********', 'preview masks the token');
is(S2S::Receiver::header($req, 'Authorization'), 'test-s2s-token', 'the token is sent');

$node->stop;
$r->stop;
done_testing();
