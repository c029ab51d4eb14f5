# The second half of test/dump_restore (see run): on a newer server (17, 18: run inside its
# Debian root), the dump that dump.pl made on 15 is restored the way doc/hardening.md says
# (roles first, the same allow_http, pg_restore of this version in one transaction into the
# database the worker drains). Then: the worker resumes and delivers what was waiting (the
# pending deliveries at once, the retrying one when due, the paused endpoint's after
# s2s.resume), nothing already sent is sent again, secrets still read back as ******** and
# still reach the receiver, and the counts per status are what they must be.
#
# Needs S2S_DUMP_DIR (shop.dump and manifest.json from dump.pl) and S2S_RECEIVER_URL.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use S2S::Node;
use S2S::Receiver;

my $dir = $ENV{S2S_DUMP_DIR};
my $rurl = $ENV{S2S_RECEIVER_URL};
BAIL_OUT('S2S_DUMP_DIR and S2S_RECEIVER_URL are not set: run test/dump_restore/run')
  unless $dir && -f "$dir/manifest.json" && $rurl;
my $m = do { local $/; open(my $fh, '<', "$dir/manifest.json") or die $!; decode_json(<$fh>) };
my %KEY = %{ $m->{keys} };
my %row = map { $_->{id} => $_ } @{ $m->{deliveries} };

my $r = S2S::Receiver->attach($rurl);
$r->reset;    # from here on, every request comes from the new server

my $dst = S2S::Node->create('dst', extension => 0);
my $new = $dst->sql('SHOW server_version_num');
cmp_ok(int($new / 10000), '>', int($m->{source_version_num} / 10000),
	"restoring a dump of $m->{source_version_num} ($m->{pg_dump_version}) on a newer server, $new");
my ($restore_version) = `pg_restore --version` =~ /(\d+)\.\d+/;
is($restore_version, int($new / 10000), "pg_restore is this server's ($restore_version)");

$dst->sql($m->{roles_sql});
my ($stdout, $stderr);
my $ok = PostgreSQL::Test::Utils::run_log(
	[ 'pg_restore', '--single-transaction', '--exit-on-error', '-d', $dst->connstr('postgres'), "$dir/shop.dump" ],
	'>' => \$stdout, '2>' => \$stderr);
ok($ok, 'pg_restore --single-transaction without error') or diag($stderr);
$dst->wait_worker;

# The restored queue's recorded home is the old server: the worker takes the database for a
# copy of production and pauses its endpoints (those not paused already) until the move is
# confirmed (doc/hardening.md, "Copies of production").
$dst->poll("SELECT count(*) > 0 AND bool_and(paused_at IS NOT NULL) FROM s2s.endpoints",
	'the restored endpoints are paused until the new home is adopted');
is($r->count, 0, 'nothing sent before');
cmp_ok($dst->sql('SELECT s2s.adopt_home()'), '>', 0, 's2s.adopt_home() confirms the move');

# What does not move: the secrets, the finished deliveries and their attempts.
is($dst->sql("SELECT endpoint || '=' || secret FROM s2s_private.endpoint_secrets ORDER BY endpoint"),
	$m->{secrets}, 'every secret restored');
is($dst->sql("SELECT string_agg(name || '=' || secret, ' ' ORDER BY name) FROM s2s.endpoints"),
	'aff=******** bad=******** held=******** sw=********', 'secrets read back as ******** (superuser)');
my ($out, $err);
$dst->psql('postgres', "SELECT string_agg(name || '=' || secret, ' ' ORDER BY name) FROM s2s.endpoints",
	stdout => \$out, stderr => \$err, extra_params => [ '-U', 'shop_admin' ]);
is($out, 'aff=******** bad=******** held=******** sw=********', 'and as shop_admin');
$dst->psql('postgres', 'SELECT * FROM s2s_private.endpoint_secrets', stderr => \$err,
	extra_params => [ '-U', 'shop_admin' ]);
like($err, qr/permission denied/, 'shop_admin cannot read the secrets');
my @finished = grep { $_->{status} =~ /^(sent|failed|skipped)$/ } @{ $m->{deliveries} };
is($dst->sql('SELECT string_agg(id || \':\' || status || \':\' || attempts, \' \' ORDER BY id) FROM s2s.deliveries WHERE id IN ('
	  . join(',', map { $_->{id} } @finished) . ')'),
	join(' ', map { "$_->{id}:$_->{status}:$_->{attempts}" } @finished),
	'sent, failed and skipped deliveries restored as they were');

# The pending deliveries of enabled endpoints leave at once.
my @pending = grep { $_->{status} eq 'pending' && $_->{endpoint} ne 'held' } @{ $m->{deliveries} };
$dst->poll('SELECT count(*) = ' . scalar(@pending) . " FROM s2s.deliveries WHERE status = 'sent' AND id IN ("
	  . join(',', map { $_->{id} } @pending) . ')', 'the pending deliveries are sent after the restore');

# The retrying one: its backoff was restored, but adopting the new home resumed its
# endpoint (paused as a copy), and a resumed endpoint's waiting deliveries are due at once
# (doc/outbox.md, "Pausing"); it is sent, its attempts numbered on from the old server's.
my $rid = $m->{retrying_id};
$dst->poll("SELECT status = 'sent' AND attempts = 2 FROM s2s.deliveries WHERE id = $rid",
	'the retrying delivery, due once its endpoint is resumed, is sent as attempt 2');
is($dst->sql("SELECT string_agg(attempt || ':' || coalesce(http_status, 0), ' ' ORDER BY attempt) FROM s2s.attempts WHERE delivery_id = $rid"),
	'1:503 2:200', 'its audit trail: the old server\'s 503, then the new one\'s 200');

# The paused endpoint got nothing so far; resumed, its two deliveries leave.
my $held = join(',', @{ $m->{held_ids} });
is($dst->sql("SELECT string_agg(status::text, ' ') || ' ' || (SELECT paused_at IS NOT NULL FROM s2s.endpoints WHERE name = 'held') FROM s2s.deliveries WHERE id IN ($held)"),
	'pending pending true', 'the paused endpoint\'s deliveries still wait');
is(scalar(grep { $_->{path} =~ m{^/held} } @{ $r->requests }), 0, 'and nothing went to it');
$dst->sql("SELECT s2s.resume('held')");
$dst->poll("SELECT count(*) = 2 FROM s2s.deliveries WHERE id IN ($held) AND status = 'sent'",
	'resumed, the paused endpoint\'s deliveries are sent');

# An order after the restore: a fresh id, sent with the restored key.
my $max = $dst->sql('SELECT max(id) FROM s2s.deliveries');
$dst->sql("INSERT INTO public.orders VALUES ('o6', 60, '$m->{click}')");
$dst->poll("SELECT status = 'sent' AND id > $max FROM s2s.deliveries WHERE conversion_id = 'o6'",
	'a new order gets a fresh id and is sent');

# Everything the receiver got from the new server: each waiting delivery exactly once, with
# its endpoint's secret; nothing that had been sent, failed or skipped before.
my @reqs = @{ $r->requests };
my %got;
for my $q (@reqs)
{
	my $p = S2S::Receiver::query_params($q);
	my ($ep) = $q->{path} =~ m{^/(\w+)};
	my $secret = $ep eq 'aff' ? $p->{key} : S2S::Receiver::header($q, 'Authorization');
	push @{ $got{ $ep . ' ' . ($p->{id} // $p->{user_id} // '?') } }, $secret;
}
my %want;
for my $d (grep { $_->{status} =~ /^(pending|retrying)$/ } @{ $m->{deliveries} })
{
	$want{ $d->{endpoint} . ' ' . ($d->{conversion_id} // $d->{user_id}) } = [ $KEY{ $d->{endpoint} } ];
}
$want{'aff o6'} = [ $KEY{aff} ];
is_deeply(\%got, \%want, 'the receiver got each waiting delivery and the new order once, each with its endpoint\'s secret')
  or diag(explain(\%got));
my %was_sent = map { $_ => 1 } @{ $m->{sent_at_source} };
is_deeply([ grep { /^aff (\S+)/ && $was_sent{$1} } sort keys %got ], [], 'no delivery sent by the old server is sent again');
cmp_ok(scalar(@{ $m->{sent_at_source} }), '==', 2, 'the old server had sent two (o1, o2)');

my $final = $dst->sql("SELECT string_agg(status || '=' || n, ' ' ORDER BY status) FROM (SELECT status::text, count(*) AS n FROM s2s.deliveries GROUP BY 1) s");
my %c = %{ $m->{counts} };
my %expect = (sent => $c{sent} + $c{pending} + $c{retrying} + 1, failed => $c{failed}, skipped => $c{skipped});
is($final, join(' ', map { "$_=$expect{$_}" } sort keys %expect),
	'counts per status: everything waiting was sent, failed and skipped stay');
$dst->stop;
done_testing();
