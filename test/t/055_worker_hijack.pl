# The worker cannot be hijacked by a database user (issue 10, item 1).
#
# The attacker owns the database the worker drains (not a superuser): it owns schema
# public, and may ALTER DATABASE ... SET search_path. It plants, in public, operators and
# functions that look like the ones the worker's statements use (integer * interval and
# numeric * integer have no exact match in pg_catalog, so a public one with that exact
# signature is preferred; with public before pg_catalog in the database's search_path even
# exact matches lose), each recording who ran it. Then the worker restarts (a fresh
# session, fresh plans), claims, writes back, pauses an endpoint, reconciles and purges:
# none of the planted code may run. 0.3.0 ran it as the bootstrap superuser.
#
# And the worker's statements run as the extension's owner, not as the bootstrap
# superuser: a trigger on s2s.deliveries records current_user; once the owner is no
# longer a superuser, deliveries still flow.
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
my $node = S2S::Node->create('hijack', extension => 0,
	conf => { 's2s_tracking.database' => "'shop'" });

# The cast: a superuser that installs the extension (its owner), and the database owner.
$node->safe_psql('postgres', <<'SQL');
CREATE ROLE ext_owner LOGIN SUPERUSER;
CREATE ROLE shop_owner LOGIN;
CREATE DATABASE shop OWNER shop_owner;
SQL
$node->safe_psql('shop', 'CREATE EXTENSION s2s_tracking', extra_params => [ '-U', 'ext_owner' ]);
is($node->safe_psql('shop', "SELECT extowner::regrole FROM pg_extension WHERE extname = 's2s_tracking'"),
	'ext_owner', 'the extension belongs to ext_owner');

sub shop { return $node->safe_psql('shop', $_[0]); }
sub shop_poll { return ok($node->poll_query_until('shop', $_[0]), $_[1]); }

sub wait_worker
{
	return $node->poll_query_until('shop',
		"SELECT pid IS NOT NULL AND last_loop_at > started_at FROM s2s.worker_status()");
}
ok(wait_worker(), 'the worker drains database shop');

# A new worker session: what ALTER DATABASE ... SET and newly planted objects reach.
sub restart_worker
{
	my $old = shop("SELECT pid FROM s2s.worker_status()");
	shop("SELECT pg_terminate_backend($old)");
	return $node->poll_query_until('shop',
		"SELECT pid IS NOT NULL AND pid <> $old AND last_loop_at > started_at FROM s2s.worker_status()");
}

# N Affilae conversions PREFIX-1 .. PREFIX-N, and a wake-up.
sub enqueue
{
	my ($prefix, $n) = @_;
	shop(<<"SQL");
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, amount, currency, click_ids)
SELECT 'aff', 'conversion', '$prefix-' || i, '$prefix-' || i, 1, 'EUR', '603ed1800000000000000000'
  FROM generate_series(1, $n) i;
SELECT s2s.wake();
SQL
}

my $url = $r->url;
shop(<<"SQL");
INSERT INTO s2s.endpoints (name, kind, url, secret) VALUES
    ('aff', 'affilae', '$url/aff/', '0123456789abcdef01234567-89abcdef0123456789abcdef'),
    ('sw', 'swaarm_postback', '$url/sw', 'tok');
UPDATE s2s.endpoints SET request_timeout = '10 s', retry_window = '1 day';
SQL

# A shop's own trigger on the queue (created by a superuser, as only the owner of the table
# or a holder of TRIGGER on it can): it shows whom the worker's statements run as.
shop(<<'SQL');
CREATE TABLE public.worker_seen (who name, session_who name,
    isolation text DEFAULT current_setting('transaction_isolation'));
GRANT INSERT ON public.worker_seen TO PUBLIC;
CREATE FUNCTION public.note_worker() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO public.worker_seen VALUES (current_user, session_user);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER note_worker AFTER UPDATE ON s2s.deliveries
    FOR EACH ROW EXECUTE FUNCTION public.note_worker();
SQL

# -- the attacker plants look-alikes; each records who ran it, then does the real work
my ($rc, $out, $err) = $node->psql('shop', <<'SQL', extra_params => [ '-U', 'shop_owner' ], on_error_stop => 1);
CREATE TABLE public.pwned (what text, who name, super boolean, backend text);
GRANT INSERT ON public.pwned TO PUBLIC;
CREATE FUNCTION public.pwn(what text) RETURNS void LANGUAGE sql
SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO public.pwned
    SELECT what, current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
           (SELECT backend_type FROM pg_stat_activity WHERE pid = pg_backend_pid())
$$;
CREATE FUNCTION public.mul_int_interval(integer, interval) RETURNS interval LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM public.pwn('integer * interval'); RETURN $2 * $1::float8; END $$;
CREATE OPERATOR public.* (LEFTARG = integer, RIGHTARG = interval, FUNCTION = public.mul_int_interval);
CREATE FUNCTION public.mul_numeric_int(numeric, integer) RETURNS numeric LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM public.pwn('numeric * integer'); RETURN $1 * $2::numeric; END $$;
CREATE OPERATOR public.* (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.mul_numeric_int);
CREATE FUNCTION public.mul_float_interval(float8, interval) RETURNS interval LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM public.pwn('float8 * interval'); RETURN $2 * $1; END $$;
CREATE OPERATOR public.* (LEFTARG = float8, RIGHTARG = interval, FUNCTION = public.mul_float_interval);
CREATE FUNCTION public.add_ts_interval(timestamptz, interval) RETURNS timestamptz LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM public.pwn('timestamptz + interval'); RETURN $1 + $2; END $$;
CREATE OPERATOR public.+ (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = public.add_ts_interval);
CREATE FUNCTION public.sub_ts_interval(timestamptz, interval) RETURNS timestamptz LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM public.pwn('timestamptz - interval'); RETURN $1 - $2; END $$;
CREATE OPERATOR public.- (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = public.sub_ts_interval);
CREATE FUNCTION public.le_ts(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM public.pwn('timestamptz <= timestamptz'); RETURN $1 <= $2; END $$;
CREATE OPERATOR public.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = public.le_ts);
CREATE FUNCTION public.eq_text(text, text) RETURNS boolean LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM public.pwn('text = text'); RETURN $1 = $2; END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.eq_text);
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM public.pwn('now()'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION public.host(inet) RETURNS text LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM public.pwn('host(inet)'); RETURN pg_catalog.host($1); END $$;
SQL
ok($rc == 0, 'the database owner (no superuser) planted operators and functions in public')
  or diag($err);

# The planted code works (so it would run if chosen): the owner's own session uses it.
($rc, $out, $err) = $node->psql('shop', "SELECT 2 * interval '1 s'; SELECT count(*) FROM public.pwned",
	extra_params => [ '-U', 'shop_owner' ]);
like($out, qr/\n1$/, 'a plain integer * interval in the owner\'s session runs the planted operator')
  or diag("$out $err");
shop('TRUNCATE public.pwned');

# What the planted code recorded when the worker ran it (the test's own sessions run it too
# once public comes first: they are not the point).
sub pwned_in_worker
{
	return shop(<<'SQL');
SELECT coalesce(string_agg(DISTINCT what || ' as ' || who || CASE WHEN super THEN ' (superuser)' ELSE '' END, '; '), '')
  FROM public.pwned WHERE backend = 's2s_tracking worker'
SQL
}

# Every worker statement: claim (with the delivery's columns), write-back, pause (a 404),
# next-due, reconcile of a dead worker's claims, purge of old finished deliveries.
sub exercise
{
	my ($phase, $from) = @_;
	$r->reset;
	$r->behave(status => 404, times => 1, path_prefix => '/sw');
	shop(<<"SQL");
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, amount, currency,
                            click_ids, client_ip, user_agent, cv)
SELECT 'aff', 'conversion', 'o-' || i, 'o-' || i, 10.5, 'EUR', '603ed1800000000000000000',
       '192.0.2.1', 'ua', 'p$from'
  FROM generate_series($from + 1, $from + 20) i;
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, user_id, event_id, client_ip, user_agent)
VALUES ('sw', 'event', 'e-$from', 'u', 'e', '192.0.2.1', 'ua');
SELECT s2s.wake();
SQL
	shop_poll("SELECT count(*) = 20 FROM s2s.deliveries WHERE cv = 'p$from' AND status = 'sent'",
		"$phase: conversions sent");
	shop_poll("SELECT paused_at IS NOT NULL FROM s2s.endpoints WHERE name = 'sw'",
		"$phase: a 404 paused an endpoint");
	shop("SELECT s2s.resume('sw')");
	shop_poll("SELECT status = 'sent' FROM s2s.deliveries WHERE dedupe_key = 'e-$from'",
		"$phase: the event is sent once resumed");

	# deliveries of a "dead worker" and deliveries old enough to be purged
	shop(<<"SQL");
INSERT INTO s2s.deliveries (endpoint, kind, dedupe_key, conversion_id, amount, currency,
                            click_ids, status, attempts, claim_token, lease_until)
VALUES ('aff', 'conversion', 'dead-$from', 'dead-$from', 1, 'EUR', '603ed1800000000000000000',
        'sending', 1, 42, now() + interval '1 hour');
UPDATE s2s.deliveries SET finished_at = now() - interval '400 days'
 WHERE status = 'sent' AND dedupe_key IN (SELECT 'o-' || g FROM generate_series($from + 1, $from + 5) g);
SQL
	ok(restart_worker(), "$phase: a new worker session");
	shop_poll("SELECT status = 'sent' FROM s2s.deliveries WHERE dedupe_key = 'dead-$from'",
		"$phase: a dead worker's claim was given back and sent");
	shop_poll("SELECT count(*) = 0 FROM s2s.deliveries WHERE finished_at < now() - interval '399 days'",
		"$phase: old finished deliveries were purged");
	is(pwned_in_worker(), '', "$phase: no planted operator or function ran in the worker");
}

ok(restart_worker(), 'the worker restarts after the planting (fresh plans)');
exercise('default search_path', 0);

# Now public first: even operators with an exact pg_catalog match would lose to public's.
($rc, $out, $err) = $node->psql('shop', 'ALTER DATABASE shop SET search_path = public, pg_catalog',
	extra_params => [ '-U', 'shop_owner' ]);
ok($rc == 0, 'the database owner puts public before pg_catalog for every session') or diag($err);
ok(restart_worker(), 'the worker restarts with the database\'s settings');
shop('ANALYZE s2s.deliveries');
exercise('search_path = public, pg_catalog', 100);
is($node->safe_psql('shop', "SELECT current_setting('search_path')", extra_params => [ '-U', 'shop_owner' ]),
	'public, pg_catalog', '(the database setting is in force for other sessions)');

# -- whom the worker's statements run as
is(shop("SELECT string_agg(DISTINCT who || '/' || session_who, ',') FROM public.worker_seen"),
	'ext_owner/postgres',
	'the worker\'s statements run as the extension\'s owner (its session is the bootstrap superuser\'s)');

# The owner need not stay a superuser: it owns every table the worker touches.
shop('ALTER ROLE ext_owner NOSUPERUSER');
ok(restart_worker(), 'the worker restarts with an owner that is no longer a superuser');
enqueue('n', 10);
shop_poll("SELECT count(*) = 10 FROM s2s.deliveries WHERE dedupe_key LIKE 'n-%' AND status = 'sent'",
	'deliveries still flow with a non-superuser owner');
is(pwned_in_worker(), '', 'and still nothing planted ran in the worker');

# -- transaction defaults the owner sets for the database stop at the worker's own
# transactions (its statements are written for read committed), all but read only, which
# fences a server (pg_auto_failover) and which the worker obeys.
sub as_owner
{
	my ($rc, $out, $err) = $node->psql('shop', $_[0], extra_params => [ '-U', 'shop_owner' ]);
	return ok($rc == 0, $_[1]) || diag($err);
}
as_owner("ALTER DATABASE shop SET default_transaction_isolation = 'serializable'",
	'the database owner makes serializable the default isolation');
shop('TRUNCATE public.worker_seen');
ok(restart_worker(), 'the worker restarts with that default');
enqueue('iso', 10);
shop_poll("SELECT count(*) = 10 FROM s2s.deliveries WHERE dedupe_key LIKE 'iso-%' AND status = 'sent'",
	'deliveries flow');
is(shop("SELECT string_agg(DISTINCT isolation, ',') FROM public.worker_seen"), 'read committed',
	"the worker's transactions run at read committed all the same");
is($node->safe_psql('shop', "SELECT current_setting('transaction_isolation')",
		extra_params => [ '-U', 'shop_owner' ]),
	'serializable', '(the default is in force for other sessions)');

# Serializable, read only and deferrable: each transaction would wait for a safe snapshot,
# and a serializable read-write transaction left open in the database withholds it. Before,
# the worker waited there, its first transaction never done (and deaf to SIGTERM). Now it
# runs (read only: its writes fail, it sends nothing, it retries).
# (The test's own sessions would wait as well: they connect as a role of their own, whose
# settings in this database come first, and keep clear of the planted operators. The
# worker's session is the bootstrap superuser's.)
shop(q{CREATE ROLE watcher LOGIN SUPERUSER;
ALTER ROLE watcher IN DATABASE shop SET default_transaction_deferrable = off;
ALTER ROLE watcher IN DATABASE shop SET search_path = pg_catalog});
sub watch { return $node->safe_psql('shop', $_[0], extra_params => [ '-U', 'watcher' ]); }
as_owner(q{ALTER DATABASE shop SET default_transaction_read_only = on;
ALTER DATABASE shop SET default_transaction_deferrable = on},
	'the owner adds read only and deferrable to the defaults');
my $holder = $node->background_psql('shop', extra_params => [ '-U', 'shop_owner' ], timeout => 180);
$holder->query_safe('BEGIN ISOLATION LEVEL SERIALIZABLE READ WRITE');
$holder->query_safe('SELECT 1');
my $old = watch('SELECT pid FROM s2s.worker_status()');
my $log_from = -s $node->logfile;
watch("SELECT pg_terminate_backend($old)");
my ($ran, $waited) = (0, 0);
for (my $i = 0; $i < 150 && !$ran; $i++)
{
	$waited ||= watch("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 's2s_tracking worker' "
		  . "AND wait_event = 'SafeSnapshot'");
	$ran = slurp_file($node->logfile, $log_from) =~ /cannot execute [\w ]+ in a read-only transaction/;
	sleep(0.2);
}
ok($ran, 'the new worker runs its transactions (and, read only, fails to write)');
is($waited, 0, 'it never waited for a safe snapshot');
$holder->query_safe('COMMIT');
$holder->quit;
as_owner('BEGIN READ WRITE; ALTER DATABASE shop RESET ALL; COMMIT', 'the owner resets the defaults');
shop('ALTER ROLE watcher IN DATABASE shop RESET ALL');
ok(restart_worker(), 'the worker restarts');

# -- nor do the timeouts the database sets for the shop's sessions reach the worker's. A
# shop's trigger on the queue takes 0.2 s a row (a slow audit); with a statement_timeout
# of 50 ms for the database (and from 17 a transaction_timeout of 100 ms), each claim or
# write-back was cancelled (or the worker's session ended) again and again: nothing sent.
my $v17 = shop('SHOW server_version_num') >= 170000;
shop(<<'SQL');
CREATE FUNCTION public.slow_audit() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        PERFORM pg_sleep(0.2);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER slow_audit AFTER UPDATE ON s2s.deliveries
    FOR EACH ROW EXECUTE FUNCTION public.slow_audit();
SQL
as_owner("ALTER DATABASE shop SET statement_timeout = '50ms'"
	  . ($v17 ? "; ALTER DATABASE shop SET transaction_timeout = '100ms'" : ''),
	'the owner sets a statement_timeout of 50 ms' . ($v17 ? ' and a transaction_timeout of 100 ms' : '')
	  . ' for the database');
# The test's own sessions keep clear of those timeouts (their connection's options come before
# the database's settings): on a busy machine, its own enqueue or poll took more than 50 ms and
# was cancelled, which ended the test. The worker takes nothing from PGOPTIONS.
my $no_timeouts = '-c statement_timeout=0' . ($v17 ? ' -c transaction_timeout=0' : '');
{
	local $ENV{PGOPTIONS} = $no_timeouts;
	ok(restart_worker(), 'the worker restarts with those settings');
	enqueue('slow', 5);
	my $sent = 0;
	for (my $i = 0; $i < 120 && $sent < 5; $i++)
	{
		$sent = shop("SELECT count(*) FROM s2s.deliveries WHERE dedupe_key LIKE 'slow-%' AND status = 'sent'");
		sleep(0.5);
	}
	is($sent, 5, 'the worker sends and records them all the same (its statements take 1 s and more)');
	is(shop('SHOW statement_timeout'), '0', "(the test's own sessions run without the timeout)");
}
is($node->safe_psql('shop', 'SHOW statement_timeout', extra_params => [ '-U', 'shop_owner' ]),
	'50ms', '(the timeout is in force for other sessions)');
{
	local $ENV{PGOPTIONS} = $no_timeouts;
	as_owner('ALTER DATABASE shop RESET ALL', 'the owner resets the database\'s settings');
}
shop('DROP TRIGGER slow_audit ON s2s.deliveries');

# -- nor does exit_on_error (any user may set it): it makes every error FATAL. A shop's
# trigger refuses the write-backs of three deliveries for a while. The worker catches
# that error, holds the results and retries; with the setting in force it left instead,
# its results lost, and the next worker sent the deliveries again.
shop(<<'SQL');
CREATE TABLE public.audit_gate (refuse boolean);
INSERT INTO public.audit_gate VALUES (true);
GRANT SELECT ON public.audit_gate TO PUBLIC;
CREATE FUNCTION public.audit_refuses() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.status = 'sent' AND NEW.dedupe_key LIKE 'exit-%'
       AND (SELECT refuse FROM public.audit_gate) THEN
        RAISE EXCEPTION 'the audit refuses %', NEW.dedupe_key;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_refuses AFTER UPDATE ON s2s.deliveries
    FOR EACH ROW EXECUTE FUNCTION public.audit_refuses();
SQL
as_owner('ALTER DATABASE shop SET exit_on_error = on', 'the owner sets exit_on_error for the database');
ok(restart_worker(), 'the worker restarts with it');
my $pid_before = shop('SELECT pid FROM s2s.worker_status()');
$log_from = -s $node->logfile;
enqueue('exit', 3);
my $refusals = 0;
for (my $i = 0; $i < 150 && $refusals < 3; $i++)
{
	$refusals = () = slurp_file($node->logfile, $log_from) =~ /the audit refuses exit-/g;
	sleep(0.2);
}
cmp_ok($refusals, '>=', 3, "the shop's trigger refused the write-backs again and again ($refusals)");
is(shop('SELECT pid FROM s2s.worker_status()'), $pid_before, 'the worker stayed (the errors were not FATAL)');
shop('UPDATE public.audit_gate SET refuse = false');
shop_poll("SELECT count(*) = 3 FROM s2s.deliveries WHERE dedupe_key LIKE 'exit-%' AND status = 'sent'",
	'once the trigger lets them through, all three are recorded as sent');
my $ids = $r->received_ids;
is(join(',', map { $ids->{"exit-$_"} // 0 } 1 .. 3), '1,1,1', 'each was sent once');
as_owner('ALTER DATABASE shop RESET ALL', 'the owner resets exit_on_error');
shop('DROP TRIGGER audit_refuses ON s2s.deliveries');

# -- nor does jit_above_cost: with it at 0 for the database, every worker statement was
# JIT-compiled at every execution (its plans are kept, and the choice to compile goes with
# the plan), which costs more than the statement. Now the JIT provider is never loaded in
# the worker's process. (A backlog of 10,000,000 to 20,000,000 makes the claim's generic
# plan pass the default jit_above_cost of 100,000 by itself.)
SKIP:
{
	skip 'this build of PostgreSQL has no JIT (pg_jit_available() is false)', 5
	  unless shop('SELECT pg_jit_available()') eq 't';
	as_owner('ALTER DATABASE shop SET jit_above_cost = 0', 'the owner sets jit_above_cost = 0 for the database');
	like($node->safe_psql('shop', 'EXPLAIN ANALYZE SELECT count(*) FROM pg_class WHERE relpages > 0', extra_params => [ '-U', 'shop_owner' ]),
		qr/^JIT:/m, '(the owner\'s own statements are JIT-compiled)');
	ok(restart_worker(), 'the worker restarts with it');
	enqueue('jit', 3);
	shop_poll("SELECT count(*) = 3 FROM s2s.deliveries WHERE dedupe_key LIKE 'jit-%' AND status = 'sent'",
		'the worker claims, sends and writes back three deliveries');
	my $wpid = shop('SELECT pid FROM s2s.worker_status()');
	unlike(slurp_file("/proc/$wpid/maps"), qr/llvmjit/, 'the worker never loaded the JIT provider');
}
as_owner('ALTER DATABASE shop RESET ALL', 'the owner resets jit_above_cost');

$node->stop;
like(slurp_file($node->logfile), qr/s2s_tracking/, '(the log was written)');
unlike(slurp_file($node->logfile), qr/permission denied/, 'the worker met no permission error');

done_testing();
