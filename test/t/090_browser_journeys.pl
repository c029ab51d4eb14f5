# User journeys in a real browser: headless Chromium (Debian's) walks the demo shop
# (test/shop) on localhost, and the postbacks the worker sends reach the test receiver.
#
# Starts a cluster that preloads the library with s2s_tracking.allow_http on, the receiver
# (test/receiver/receiver.py) standing in for Affilae and Swaarm, and the shop; installs
# playwright-core with `npm ci` from test/browser/package-lock.json and runs
# test/browser/journeys.mjs, whose "ok"/"not ok" lines become this test's assertions
# (cookie flags, navigation, exact click IDs in each postback); then checks the database
# side: one conversion per validated order, nothing for a cancelled or unattributed one.
# Skips only when chromium or node/npm are not installed at all, or in a root of
# ./run-tests --pg N (S2S_NO_BROWSER).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(sleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S2S::Receiver;

my $top = File::Spec->rel2abs(File::Spec->catdir(dirname(__FILE__), '..', '..'));
my $chromium = $ENV{CHROMIUM} // '/usr/bin/chromium';

sub have { my $cmd = shift; system("command -v $cmd >/dev/null 2>&1") == 0 }
# The Debian roots of other PostgreSQL versions (./run-tests --pg N) have no browser: the
# journeys run on the host. skip_all: prove counts the file as skipped, none of it as passed.
plan skip_all => 'no browser in the root (the browser journeys run on the host)'
	if $ENV{S2S_NO_BROWSER};
plan skip_all => "no Chromium at $chromium (Debian package chromium; ./run-tests installs it as root)"
	unless -x $chromium;
plan skip_all => 'no node/npm (Debian packages nodejs and npm; ./run-tests installs them as root)'
	unless have('node') && have('npm');

my $tmp = tempdir('s2s_browser_XXXXXX', TMPDIR => 1, CLEANUP => 1);

# The shop, built here with warnings as errors, and playwright-core from the committed lock
# (npm ci: exact versions, no browser download).
my ($out, $err) = ('', '');
ok(IPC::Run::run(['make', '-C', "$top/test/shop", '-s'], '>', \$out, '2>', \$err),
	'the demo shop builds with -Wall -Werror')
	or diag("$out$err");
local $ENV{PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD} = 1;
($out, $err) = ('', '');
ok( IPC::Run::run(
		[ 'npm', 'ci', '--no-audit', '--no-fund', '--prefer-offline' ],
		'>', \$out, '2>', \$err, init => sub { chdir "$top/test/browser" or die $! },
		IPC::Run::timeout(300)),
	'npm ci installs playwright-core from the lock')
	or diag("$out$err");

my $node = PostgreSQL::Test::Cluster->new('shop');
$node->init;
$node->append_conf('postgresql.conf', <<'EOF');
shared_preload_libraries = 's2s_tracking'
s2s_tracking.allow_http = on
s2s_tracking.retry_base = '300ms'
s2s_tracking.retry_max = '2s'
s2s_tracking.poll_interval = '500ms'
EOF
$node->start;

my $receiver = S2S::Receiver->start();
my $schema = do { local (@ARGV, $/) = "$top/test/shop/schema.sql"; <> };
$node->safe_psql('postgres', $schema,
	extra_params => [ '-v', 'receiver=' . $receiver->url, '-v', 'ON_ERROR_STOP=1' ]);
is($node->safe_psql('postgres', "SELECT string_agg(name || ':' || secret, ',' ORDER BY name) FROM s2s.endpoints"),
	'affilae:********,swaarm:********', 'the shop schema creates both endpoints, secrets masked');

# The shop listens on 127.0.0.1; the browser is sent to "localhost", a secure context in
# which Chromium keeps Secure cookies over plain http.
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $shop_url = "http://localhost:$port";
my $conninfo = sprintf('host=%s port=%d dbname=postgres user=shop_app application_name=demo-shop',
	$node->host, $node->port);
my $shop_log = "$tmp/shop.log";
my $shop = IPC::Run::start([ "$top/test/shop/shop", '--port', $port, '--conninfo', $conninfo ],
	'>', "$tmp/shop.out", '2>', $shop_log);
my $http = HTTP::Tiny->new(timeout => 5);
my $up = 0;
for (1 .. 100)
{
	my $r = $http->get("http://127.0.0.1:$port/healthz");
	if ($r->{success}) { $up = 1; last; }
	sleep 0.2;
}
ok($up, 'the shop answers on its port') or BAIL_OUT('the demo shop did not start: ' . slurp_file($shop_log));

# The journeys. Chromium's profile goes to a fresh directory under $tmp.
my ($jout, $jerr) = ('', '');
my $journeys = IPC::Run::start(
	[ 'node', "$top/test/browser/journeys.mjs" ],
	'>', \$jout, '2>', \$jerr,
	init => sub {
		chdir "$top/test/browser" or die $!;
		$ENV{SHOP_URL} = $shop_url;
		$ENV{RECEIVER_URL} = $receiver->url;
		$ENV{CHROMIUM} = $chromium;
		$ENV{TMPDIR} = $tmp;
		$ENV{HOME} = $tmp;
	},
	IPC::Run::timeout(240));
my $finished = eval { $journeys->finish; 1 };
$finished or do { diag("journeys: $@"); $journeys->kill_kill; };

my $result;
my $checks = 0;
for my $line (split /\n/, $jout)
{
	if ($line =~ /^(not )?ok - (.*?)(?: # (.*))?$/)
	{
		$checks++;
		ok(!defined $1, "browser: $2") or diag($3 // '');
	}
	elsif ($line =~ /^# (.*)/) { note($1); }
	elsif ($line =~ /^RESULT (.*)/) { $result = decode_json($1); }
}
ok($checks >= 30, "the browser journeys ran their checks ($checks)")
	or diag("stdout:\n$jout\nstderr:\n$jerr");
ok($finished && $journeys->full_result(0) == 0, 'journeys.mjs finished and reported no failure')
	or diag("journeys stderr:\n$jerr");
BAIL_OUT('the browser journeys gave no result') unless $result;

# The database side of the same journeys.
my %o = %{ $result->{orders} };
sub q1 { $node->safe_psql('postgres', shift) }
sub quote_sql { my $s = shift; $s =~ s/'/''/g; return "'$s'"; }

is(q1("SELECT string_agg(status || ' ' || click_ids, ',') FROM s2s.deliveries
	WHERE endpoint = 'affilae' AND conversion_id = '$o{two_clicks}'"),
	'sent ' . join('-', @{ $result->{clicks}{two} }),
	'two clicks then a sale: one Affilae conversion with both click IDs, sent');
is(q1("SELECT count(*) FROM s2s.deliveries WHERE endpoint = 'swaarm' AND conversion_id = '$o{two_clicks}'"),
	'0', 'no Swaarm postback for a visitor who never came from Swaarm');
is(q1("SELECT string_agg(status || ' ' || click_ids, ',') FROM s2s.deliveries
	WHERE endpoint = 'affilae' AND conversion_id = '$o{one_click}'"),
	'sent ' . $result->{clicks}{one}[0], 'the other shopper: one conversion with her click only');
is(q1("SELECT count(*) FROM s2s.deliveries WHERE conversion_id = '$o{invalid}' AND status <> 'skipped'"),
	'0', 'an invalid click ID: the validated order sends nothing');
is(q1("SELECT count(*) FROM s2s.deliveries WHERE conversion_id = '$o{cancelled}'"),
	'0', 'a cancelled order enqueues nothing');
is(q1("SELECT count(*) FROM shop.orders WHERE id = $o{cancelled} AND status = 'cancelled'"),
	'1', 'the cancelled order is kept as cancelled');
is(q1("SELECT string_agg(event_id || ' ' || status, ',' ORDER BY event_id) FROM s2s.deliveries
	WHERE endpoint = 'swaarm' AND conversion_id IS NULL AND user_id = " . quote_sql($result->{swaarm_user})),
	'purchase sent,register sent', 'the Swaarm user: register and purchase app events sent');
is(q1("SELECT string_agg(event_id || ' ' || status || ' ' || amount, ',') FROM s2s.deliveries
	WHERE endpoint = 'swaarm' AND conversion_id = '$o{swaarm}'"),
	'order sent 25.00', 'the Swaarm user\'s web order: one "order" event from the orders trigger');
is(q1("SELECT count(*) FROM s2s.deliveries WHERE endpoint = 'affilae' AND conversion_id = '$o{swaarm}'"),
	'0', 'and no Affilae conversion: that visitor never clicked an Affilae link');
is(q1("SELECT count(*) FROM s2s.clicks WHERE network = 'affilae' AND click_id IN ("
		. join(',', map { "'$_'" } @{ $result->{clicks}{two} }) . ") AND user_agent = "
		. quote_sql($result->{user_agent})
		. " AND landing_url LIKE '$shop_url/?aecid=%'"),
	'2', 'both clicks recorded with the browser user agent and the landing URL');
is(q1("SELECT count(*) FROM s2s.deliveries WHERE status NOT IN ('sent', 'skipped')"),
	'0', 'nothing is left waiting or failed');

$shop->signal('TERM');
eval { $shop->finish; 1 } or $shop->kill_kill;
$receiver->stop;
$node->stop;
done_testing();
