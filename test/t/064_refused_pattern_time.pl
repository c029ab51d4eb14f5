# An endpoint's refused_pattern cannot make the worker spin. The engine matches an ERE
# in time proportional to the body times the pattern's states, and 1 KB of bounded
# repetitions has thousands of them: on a random 64 kB body such a match took some 45 s,
# during which the worker judged nothing else and a fast shutdown waited. A match now has
# a time limit: the 2xx is counted as sent, the reason recorded beside it, and the worker
# goes on at once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use S2S::Node;
use S2S::Receiver;

my $r = S2S::Receiver->start;
my $node = S2S::Node->create('refused_time',
	conf => { 's2s_tracking.response_limit' => "'64kB'" });

# 902 bytes: well within the 1 KB a pattern may have, and compiled by the guard at once
my $pattern = 'a' . ('[ab]{255}' x 100) . 'c';
$node->add_endpoint('slow', 'affilae', $r->url . '/slow/', refused_pattern => $pattern);
$node->add_endpoint('other', 'affilae', $r->url . '/other/');
srand(64);
my $body = join('', map { rand() < 0.5 ? 'a' : 'b' } 1 .. 65536);
$r->behave(path_prefix => '/slow/', status => 200, body => $body);

my $started = time;
$node->enqueue_conversions('slow', 1);
$node->poll("SELECT status IN ('sent', 'failed') FROM s2s.deliveries WHERE endpoint = 'slow'",
	'the 2xx is judged');
is($node->sql("SELECT status || ' ' || attempts FROM s2s.deliveries WHERE endpoint = 'slow'"),
	'sent 1', 'a match given up: counted as sent, once');
like($node->sql("SELECT last_error FROM s2s.deliveries WHERE endpoint = 'slow'"),
	qr/^HTTP 200: counted as sent; refused_pattern could not be matched: matching took longer than \d+ ms, the limit$/,
	'the reason says why the pattern was not applied');
note(sprintf('judged after %.1f s', time - $started));

# the worker goes on: another endpoint's conversion is sent, the worker never restarted
my $pid = $node->worker_pid;
$node->enqueue_conversions('other', 1);
$node->poll("SELECT status = 'sent' FROM s2s.deliveries WHERE endpoint = 'other'",
	'the next conversion is sent');
is($node->worker_pid, $pid, 'the same worker');
unlike(slurp_file($node->logfile), qr/canceling statement/, 'no cancel reached the log');

$node->stop;
$r->stop;
done_testing();
