# Faults at scale: a large backlog drained while the worker is killed with kill -9 at
# random moments (the postmaster restarts everything each time) and the receiver flaps
# between up, down (connection refused), slow and 503. In the end every delivery is
# sent, the receiver registered every conversion, and the duplicates it saw are no more
# than the deliveries that were in flight at the kills. The figures are printed (diag).
#
#   S2S_FAULTS_N=100000  deliveries      S2S_FAULTS_KILLS=10   kills
#   S2S_FAULTS_SEED=N    random seed (printed, to replay a run's schedule)
#
# In flight at a kill: the rows in status 'sending' are counted, then the worker is killed
# with SIGKILL at once. Only rows claimed and not yet written back can have reached the
# receiver without their result being recorded, so only they can be sent twice; between
# the count and the kill the worker can claim at most one more endpoint's worth
# (s2s_tracking.endpoint_concurrency, one endpoint here), which the bound adds. (The
# worker is not stopped with SIGSTOP for an exact count: stopped while it holds a buffer
# lock, the counting query would wait for it forever.)
#
# The receiver is a small Python server written by this test: it counts, per conversion
# id, the 200 answers it gave (a 503 is not a registration), keeps counting across its
# down phases (it closes its listening socket and drops its connections, and reopens the
# same port), and flaps on its own schedule until told to stop.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use POSIX qw(WNOHANG);
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use S2S::Node;

my $N = $ENV{S2S_FAULTS_N} // 100000;
my $KILLS = $ENV{S2S_FAULTS_KILLS} // 10;
my $seed = $ENV{S2S_FAULTS_SEED} // (time() ^ $$) % 1000000;
my $DRAIN_LIMIT_S = $ENV{S2S_FAULTS_LIMIT} // 600;
srand($seed);

my $RECEIVER = <<'PY';
import json, random, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

port_file, seed = sys.argv[1], int(sys.argv[2])
rnd = random.Random(seed)
lock = threading.Lock()
counts = {}
st = {"ok": 0, "503": 0, "dropped": 0, "phases": {"up": 0, "slow": 0, "503": 0, "down": 0}}
mode = "up"
flapping = threading.Event()
stop = threading.Event()

class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    def handle_error(self, request, client_address):
        pass  # connections reset by a killed worker or by a down phase are expected

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        m = mode
        if m == "down":
            with lock:
                st["dropped"] += 1
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if m == "503":
            with lock:
                st["503"] += 1
            self.answer(503, b"busy")
            return
        if m == "slow":
            time.sleep(0.3)
        cid = parse_qs(urlsplit(self.path).query).get("id", [""])[0]
        with lock:
            counts[cid] = counts.get(cid, 0) + 1
            st["ok"] += 1
        self.answer(200, b"OK")

class Control(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        global mode
        path = urlsplit(self.path).path
        if path == "/flap/on":
            flapping.set()
        elif path == "/flap/off":
            flapping.clear()
            set_mode("up")
        with lock:
            dups = sum(c - 1 for c in counts.values() if c > 1)
            out = dict(st, mode=mode, distinct=len(counts), duplicates=dups,
                       dup_ids=sum(1 for c in counts.values() if c > 1))
        body = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

port = 0
server = None

def serve():
    global server, port
    s = Server(("127.0.0.1", port), H)
    port = s.server_address[1]
    server = s
    threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

def set_mode(m):
    global mode, server
    if m == mode:
        return
    if mode == "down":
        serve()
    mode = m
    if m == "down":
        s, server = server, None
        s.shutdown()
        s.server_close()

def flapper():
    while not stop.is_set():
        if not flapping.wait(0.1):
            continue
        m = rnd.choices(["up", "slow", "503", "down"], [4, 2, 2, 2])[0]
        with lock:
            st["phases"][m] += 1
        set_mode(m)
        stop.wait(rnd.uniform(0.3, 2.5))

serve()
control = Server(("127.0.0.1", 0), Control)
threading.Thread(target=flapper, daemon=True).start()
with open(port_file + ".tmp", "w") as f:
    f.write("%d %d\n" % (port, control.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
deadline = time.time() + 3600
control.timeout = 0.5
while time.time() < deadline:
    control.handle_request()
PY

# -- the receiver
my $dir = tempdir('s2s_faults_XXXXXX', TMPDIR => 1, CLEANUP => 1);
open(my $fh, '>', "$dir/receiver.py") or die;
print $fh $RECEIVER;
close $fh;
my $rpid = fork();
die "fork: $!" unless defined $rpid;
if ($rpid == 0)
{
	exec('python3', "$dir/receiver.py", "$dir/port", $seed) or POSIX::_exit(127);
}
END { local $?; if ($rpid) { kill 'KILL', $rpid; waitpid($rpid, 0); } }
my ($port, $cport);
for (1 .. 300)
{
	if (-s "$dir/port" && open(my $p, '<', "$dir/port"))
	{
		(($port, $cport) = split ' ', scalar <$p>);
		last if $cport;
	}
	sleep(0.1);
}
BAIL_OUT('the receiver did not start') unless $cport;
# (generous: the receiver shares two CPUs with the server draining 100,000 deliveries, and
# in CI with the suites of two other PostgreSQL versions)
my $http = HTTP::Tiny->new(timeout => 60);
sub control
{
	my $res = $http->get("http://127.0.0.1:$cport/$_[0]");
	die "receiver control: $res->{status}" unless $res->{success};
	return decode_json($res->{content});
}

# -- the server: short retries, a lease longer than any request
my $node = S2S::Node->create('faults',
	conf => {
		'restart_after_crash' => 'on',
		's2s_tracking.request_timeout' => "'2s'",
		's2s_tracking.connect_timeout' => "'1s'",
		's2s_tracking.retry_base' => "'50ms'",
		's2s_tracking.retry_max' => "'500ms'",
		's2s_tracking.batch_size' => 500,
		'log_min_messages' => 'warning',
	});
$node->add_endpoint('aff', 'affilae', "http://127.0.0.1:$port/");

my $t0 = time();
for (my $from = 0; $from < $N; $from += 20000)
{
	my $n = $N - $from < 20000 ? $N - $from : 20000;
	$node->enqueue_conversions('aff', $n, $from);
}
my $t_enq = time() - $t0;
control('flap/on');

# -- kills at random moments while draining
my @in_flight;
my $t_drain = time();
for my $k (1 .. $KILLS)
{
	sleep(1 + rand(5));
	my $pid = $node->worker_pid;
	my $sending = $node->sql("SELECT count(*) FROM s2s.deliveries WHERE status = 'sending'");
	my $sent = $node->sql("SELECT count(*) FROM s2s.deliveries WHERE status = 'sent'");
	kill 'KILL', $pid;
	push @in_flight, $sending;
	diag(sprintf("kill %d at %.1f s: worker %d, %d in flight, %d sent so far",
			$k, time() - $t_drain, $pid, $sending, $sent));
	# a new worker, not the killed one seen before the postmaster noticed the crash
	$node->wait_for("SELECT pid IS NOT NULL AND pid <> $pid AND last_loop_at > started_at FROM s2s.worker_status()")
	  or BAIL_OUT("no new worker after kill $k");
}
my $t_kills = time() - $t_drain;

# -- stop flapping, then let the drain finish (bounded)
my $flap = control('flap/off');
my $done = 0;
my $deadline = time() + $DRAIN_LIMIT_S;
while (time() < $deadline)
{
	my $left = $node->safe_psql('postgres',
		"SELECT count(*) FROM s2s.deliveries WHERE status <> 'sent'");
	if ($left eq '0') { $done = 1; last; }
	sleep(0.5);
}
my $t_total = time() - $t_drain;
my $stats = control('stats');
my $claim_room = $node->sql('SHOW s2s_tracking.endpoint_concurrency');
my $bound = 0;
$bound += $_ + $claim_room for @in_flight;

ok($done, "every delivery sent within ${DRAIN_LIMIT_S} s")
  or diag("left: ",
	$node->sql("SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) AS n FROM s2s.deliveries GROUP BY 1) s"),
	"; endpoint paused: ",
	$node->sql("SELECT coalesce(paused_at::text || ' (' || coalesce(pause_reason, '') || ')', 'no') FROM s2s.endpoints"));
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE status = 'sent'"), $N,
	"$N deliveries sent");
is($stats->{distinct}, $N, 'the receiver registered every conversion: none lost');
cmp_ok($stats->{duplicates}, '<=', $bound,
	"duplicates ($stats->{duplicates}) no more than could be in flight at the kills ($bound)");
is($node->sql("SELECT count(*) FROM s2s.deliveries WHERE claim_token IS NOT NULL"), '0',
	'no row left claimed');
is(scalar(@in_flight), $KILLS, "$KILLS kills");
my $attempts = $node->sql("SELECT count(*) FROM s2s.attempts");
my $retried = $node->sql("SELECT count(*) FROM s2s.deliveries WHERE attempts > 1");

diag(sprintf("seed %d; %d deliveries enqueued in %.1f s; %d kills in %.1f s; drained in %.1f s (%.0f/s)",
		$seed, $N, $t_enq, $KILLS, $t_kills, $t_total, $N / $t_total));
diag("in flight at each kill: @in_flight (total $bound)");
diag(sprintf("receiver: %d answered 200, %d distinct, %d duplicates (%d ids), %d answered 503, %d dropped while down; phases up %d, slow %d, 503 %d, down %d",
		$stats->{ok}, $stats->{distinct}, $stats->{duplicates}, $stats->{dup_ids},
		$stats->{503}, $stats->{dropped}, @{ $stats->{phases} }{qw(up slow 503 down)}));
diag("attempts recorded: $attempts; deliveries tried more than once: $retried");

$node->stop;
done_testing();
