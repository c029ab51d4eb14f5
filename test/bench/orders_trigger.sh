#!/usr/bin/env bash
# Benchmark of the orders trigger (s2s.enqueue_conversion): pgbench inserting validated
# orders into a realistic orders table, without and with the trigger, in the same run and on
# the same throwaway cluster. Prints both throughputs and their ratio (target: >= 0.85).
#
#   PG_CONFIG=/path/to/pg_config test/bench/orders_trigger.sh
#
# Settings (environment): DURATION (seconds per measurement, default 5), ROUNDS (default 8:
# plain and tracked alternate, so that a noisy neighbour hurts both alike), CLIENTS
# (default 4), JOBS (default 2), SYNC_COMMIT (default on: durable commits, as a shop runs;
# "off" shows the CPU cost alone), PROFILE=1 (perf-record the tracked inserts instead of
# measuring; the profile goes to PROFILE_OUT, default /tmp/orders_trigger.perf), EXTRA_SQL
# (run after the setup, to measure a variant), WORKER (default on: the delivery worker, woken
# by every commit that enqueues, serves the benchmark database as deployed; "off" points it
# at database postgres, where it finds no queue: the trigger's cost alone), WORKLOAD
# (default insert: one INSERT per transaction; checkout: order + 3 lines + 3 stock updates;
# lifecycle: an order inserted new, then updated four times: paid, its user agent, cancelled,
# paid again — the UPDATE paths, where an already enqueued order is looked up).
# The extension must be installed for PG_CONFIG (as root,
# this script builds and installs it first). The cluster lives in a temporary directory,
# listens on a Unix socket only, and is stopped and removed at the end.
#
#   PG_MAJOR=17 test/bench/orders_trigger.sh     the same, as root, in the PostgreSQL 17 (or
#                                                18) Debian root of tools/pg-root.sh
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
source "$top/tools/common.sh"
if [ -n "${PG_MAJOR:-}" ]; then
	source "$top/tools/pg-root.sh"
	if pg_root_suite "$PG_MAJOR" >/dev/null; then
		echo "PostgreSQL $PG_MAJOR, in the $(pg_root_suite "$PG_MAJOR") root $(pg_root_dir "$PG_MAJOR")"
		S2S_ROOT_PASS='DURATION|ROUNDS|CLIENTS|JOBS|SYNC_COMMIT|WORKER|WORKLOAD|EXTRA_SQL' \
			pg_root_run "$PG_MAJOR" test/bench/orders_trigger.sh
		exit
	fi
	PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
fi
find_pg_config

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-8}
CLIENTS=${CLIENTS:-4}
JOBS=${JOBS:-2}
SYNC_COMMIT=${SYNC_COMMIT:-on}
WORKER=${WORKER:-on}
WORKLOAD=${WORKLOAD:-insert}

# PostgreSQL refuses to run as root: build and install, then run the rest as postgres.
if [ "$(id -u)" = 0 ] && [ -z "${S2S_BENCH_CHILD:-}" ]; then
	build_and_install >/dev/null
	work=$(mktemp -d /tmp/s2s_bench.XXXXXX)
	chown postgres: "$work"
	exec runuser -u postgres -- env S2S_BENCH_CHILD=1 S2S_BENCH_DIR="$work" PG_CONFIG="$PG_CONFIG" \
		DURATION="$DURATION" ROUNDS="$ROUNDS" CLIENTS="$CLIENTS" JOBS="$JOBS" \
		SYNC_COMMIT="$SYNC_COMMIT" WORKER="$WORKER" WORKLOAD="$WORKLOAD" PROFILE="${PROFILE:-}" PROFILE_OUT="${PROFILE_OUT:-}" \
		EXTRA_SQL="${EXTRA_SQL:-}" bash "$0"
fi

bin=$("$PG_CONFIG" --bindir)
work=${S2S_BENCH_DIR:-$(mktemp -d /tmp/s2s_bench.XXXXXX)}
data="$work/data"
port=$((50000 + RANDOM % 10000))
export PGHOST="$work" PGPORT="$port" PGDATABASE=bench

cleanup() {
	"$bin/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

"$bin/initdb" -D "$data" -A trust -U "$(id -un)" >/dev/null
cat >>"$data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$work'
port = $port
shared_preload_libraries = 's2s_tracking'
s2s_tracking.database = '$([ "$WORKER" = on ] && echo bench || echo postgres)'
shared_buffers = 256MB
max_wal_size = 4GB
synchronous_commit = $SYNC_COMMIT
EOF
"$bin/pg_ctl" -D "$data" -l "$work/server.log" -w start >/dev/null
"$bin/createdb" bench

# Two identical orders tables; only orders_tracked has the trigger. The endpoint is
# disabled: the worker never sends, so the figures are the trigger's cost alone.
"$bin/psql" -q -v ON_ERROR_STOP=1 <<'EOF'
CREATE EXTENSION s2s_tracking;
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled, currency)
     VALUES ('bench_affilae', 'affilae', 'https://lb.affilae.com/',
             '0123456789abcdef01234567-0123456789abcdef01234567', false, 'EUR');
CREATE SEQUENCE order_number_seq;
CREATE TABLE orders_plain (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number      text NOT NULL DEFAULT 'ORD-' || nextval('order_number_seq') UNIQUE,
    customer_id bigint NOT NULL,
    amount      numeric(12,2) NOT NULL,
    currency    text NOT NULL DEFAULT 'EUR',
    status      text NOT NULL,
    click_ids   text,
    ip          inet,
    user_agent  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON orders_plain (customer_id);
CREATE INDEX ON orders_plain (created_at);
CREATE TABLE orders_tracked (LIKE orders_plain INCLUDING ALL);
-- for WORKLOAD=checkout: the order's lines and the stock they take
CREATE TABLE products (id int PRIMARY KEY, price numeric(12,2) NOT NULL, stock int NOT NULL);
INSERT INTO products SELECT i, (random() * 100)::numeric(12,2), 1000000000 FROM generate_series(1, 10000) i;
CREATE TABLE order_lines_plain (order_id bigint NOT NULL, line int NOT NULL,
                                product_id int NOT NULL, quantity int NOT NULL,
                                price numeric(12,2) NOT NULL, PRIMARY KEY (order_id, line));
CREATE TABLE order_lines_tracked (LIKE order_lines_plain INCLUDING ALL);
SELECT s2s.track_orders('orders_tracked', 'bench_affilae', order_id => 'number',
                        amount => 'amount', currency => 'currency', click_ids => 'click_ids',
                        customer => 'customer_id', client_ip => 'ip', user_agent => 'user_agent',
                        status => 'status', validated_statuses => ARRAY['paid', 'shipped']) AS trigger_name \gset
EOF

# EXTRA_SQL: run after the setup, to measure a variant (e.g. of the s2s.deliveries schema).
[ -n "${EXTRA_SQL:-}" ] && "$bin/psql" -q -v ON_ERROR_STOP=1 -c "$EXTRA_SQL"

# WORKLOAD=insert (default): one validated order per transaction, the trigger's worst case.
# WORKLOAD=checkout: a checkout transaction: the order, three order lines, three stock
# updates. Orders carry one or two click IDs from the last 20 days.
for t in plain tracked; do
	{
		cat <<EOF
\set customer random(1, 100000)
\set cents random(100, 99999)
\set age1 random(60, 1728000)
\set age2 random(60, 1728000)
\set two random(0, 1)
\set r random(1, 1000000000)
\set p1 random(1, 10000)
\set p2 random(1, 10000)
\set p3 random(1, 10000)
EOF
		[ "$WORKLOAD" = checkout ] || [ "$WORKLOAD" = lifecycle ] && echo "BEGIN;"
		cat <<EOF
INSERT INTO orders_$t (customer_id, amount, status, click_ids, ip, user_agent)
VALUES (:customer::bigint, :cents::bigint::numeric / 100, '$([ "$WORKLOAD" = lifecycle ] && echo new || echo paid)',
        lpad(to_hex(extract(epoch FROM now())::bigint - :age1::bigint), 8, '0') || lpad(to_hex(:r::bigint), 16, '0')
        || CASE WHEN :two::int = 1 THEN '-' || lpad(to_hex(extract(epoch FROM now())::bigint - :age2::bigint), 8, '0')
                                       || lpad(to_hex(:r::bigint + 1), 16, '0') ELSE '' END,
        ('198.51.100.' || (:customer::int % 250))::inet,
        'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36')
RETURNING id AS order_id \gset
EOF
		if [ "$WORKLOAD" = checkout ]; then
			for l in 1 2 3; do
				echo "INSERT INTO order_lines_$t SELECT :order_id, $l, id, 1, price FROM products WHERE id = :p$l;"
				echo "UPDATE products SET stock = stock - 1 WHERE id = :p$l;"
			done
			echo "COMMIT;"
		fi
		if [ "$WORKLOAD" = lifecycle ]; then
			echo "UPDATE orders_$t SET status = 'paid' WHERE id = :order_id;"
			echo "UPDATE orders_$t SET user_agent = user_agent || ' ' WHERE id = :order_id;"
			echo "UPDATE orders_$t SET status = 'cancelled' WHERE id = :order_id;"
			echo "UPDATE orders_$t SET status = 'paid' WHERE id = :order_id;"
			echo "COMMIT;"
		fi
	} >"$work/insert_$t.sql"
done

run() {	# run TABLE -> prints "transactions tps"
	"$bin/psql" -q -c "CHECKPOINT" >/dev/null
	"$bin/pgbench" -n -M prepared -c "$CLIENTS" -j "$JOBS" -T "$DURATION" -f "$work/insert_$1.sql" 2>&1 |
		awk '/number of transactions actually processed/ {split($0, a, ": "); split(a[2], b, "/"); n = b[1]}
		     /^tps = / {print n, $3}'
}

# PROFILE=1: profile the tracked inserts with perf (this cluster's processes only) instead.
if [ -n "${PROFILE:-}" ]; then
	"$bin/pgbench" -n -M prepared -c "$CLIENTS" -j "$JOBS" -T "$DURATION" -f "$work/insert_tracked.sql" &
	sleep 2
	pids=$(pgrep -d, -P "$(head -n 1 "$data/postmaster.pid")")
	perf record -g -o "${PROFILE_OUT:-/tmp/orders_trigger.perf}" -p "$pids" -- sleep $((DURATION - 4)) 2>&1 | tail -n 1
	wait
	exit 0
fi

echo "orders trigger benchmark: $CLIENTS clients, $ROUNDS x ${DURATION}s per table, synchronous_commit=$SYNC_COMMIT, worker $WORKER, workload $WORKLOAD, $(nproc) CPUs, $("$bin/postgres" --version)"
echo "load: $(uptime)"
# warm-up (also shows any error in the scripts)
"$bin/pgbench" -n -M prepared -c "$CLIENTS" -j "$JOBS" -T 3 -f "$work/insert_plain.sql" >/dev/null
"$bin/pgbench" -n -M prepared -c "$CLIENTS" -j "$JOBS" -T 3 -f "$work/insert_tracked.sql" >/dev/null
plain_sum=0 tracked_sum=0
for round in $(seq 1 "$ROUNDS"); do
	read -r _ p < <(run plain)
	read -r _ t < <(run tracked)
	printf '  round %d: without trigger %9.1f tps   with trigger %9.1f tps   ratio %.3f\n' \
		"$round" "$p" "$t" "$(awk -v a="$t" -v b="$p" 'BEGIN {print a / b}')"
	plain_sum=$(awk -v a="$plain_sum" -v b="$p" 'BEGIN {print a + b}')
	tracked_sum=$(awk -v a="$tracked_sum" -v b="$t" 'BEGIN {print a + b}')
done
plain=$(awk -v a="$plain_sum" -v n="$ROUNDS" 'BEGIN {print a / n}')
tracked=$(awk -v a="$tracked_sum" -v n="$ROUNDS" 'BEGIN {print a / n}')
ratio=$(awk -v a="$tracked" -v b="$plain" 'BEGIN {print a / b}')

# The trigger did its job: one delivery per tracked order.
"$bin/psql" -At -c "SELECT 'tracked orders: ' || (SELECT count(*) FROM orders_tracked)
                    || ', deliveries: ' || count(*) || ' (last id ' || (SELECT last_value FROM s2s.deliveries_id_seq) || ', ' || count(*) FILTER (WHERE status = 'pending')
                    || ' pending, ' || count(*) FILTER (WHERE status = 'skipped') || ' skipped)'
                      FROM s2s.deliveries"
printf 'without trigger: %.1f tps\nwith trigger:    %.1f tps\nratio:           %.3f (target >= 0.85)\n' \
	"$plain" "$tracked" "$ratio"
