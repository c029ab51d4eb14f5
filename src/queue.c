/*
 * queue.c
 *		The delivery worker's SQL: claim, write-back, reconcile, pause and purge.
 *
 * Speed comes from doing a whole batch per statement with plans prepared once: the claim
 * is a single UPDATE over a per-endpoint LATERAL "FOR UPDATE SKIP LOCKED LIMIT room"
 * (walking only the partial index of waiting rows), the write-back a single UPDATE over
 * unnested arrays whose RETURNING feeds the INSERT of the s2s.attempts rows.
 *
 * And from the layout (00_schema.sql): no index names a column the claim changes, so a
 * claim is a HOT update that writes no index entry. Waiting rows are told from finished
 * ones by finished_at IS NULL (the partial indexes' predicate), never by status: every
 * statement here that looks for waiting rows says "finished_at IS NULL", so that the
 * planner can use deliveries_waiting_idx, and checks status on the row itself.
 *
 * Correctness comes from the claim token: a write-back only touches a row that is still
 * 'sending' under the token it was claimed with, so a worker whose lease expired can
 * never overwrite the result of a newer claim.
 *
 * Safety: these statements run in the worker with search_path pinned to "pg_catalog,
 * pg_temp" (worker.c), and still name every table, function and type with its schema and
 * give every operator operands of its exact pg_catalog signature (arithmetic spelled
 * OPERATOR(pg_catalog.x)), so that no operator or function that a database user creates
 * can ever be chosen instead: the worker's code is exactly what is written here. Keep it
 * so when editing (test/t/055_worker_hijack.pl plants look-alikes).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "delivery_read.h"
#include "queue.h"
#include "settings.h"

/*
 * The claim. $1/$2: endpoints with deliveries in flight and how many; $3: default
 * per-endpoint cap; $4: most rows; $5: claim token; $6: lease in seconds; $7/$8/$9:
 * endpoints and the key (next_attempt_at, id) after which their walk starts (see
 * "Where the claim starts" below).
 * Rows locked by the LATERAL but cut by the outer LIMIT stay untouched (their locks end
 * at commit). The rows are updated through "ctid = ANY (ARRAY(...))": a TID scan goes
 * straight to the versions the LATERAL locked (no other statement can move a row this one
 * holds locked), where looking each up by primary key cost an index descent per row, and
 * joining the CTE made the generic plan hash the table.
 */
static const char *claim_sql =
"WITH busy AS ("
"  SELECT b.name, b.n"
"    FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]),"
"                    pg_catalog.unnest($2::pg_catalog.int4[])) AS b(name, n)"
"), after AS ("
"  SELECT a.name, a.due, a.id"
"    FROM ROWS FROM (pg_catalog.unnest($7::pg_catalog.text[]),"
"                    pg_catalog.unnest($8::pg_catalog.timestamptz[]),"
"                    pg_catalog.unnest($9::pg_catalog.int8[])) AS a(name, due, id)"
"), room AS ("
"  SELECT e.name, greatest(coalesce(e.max_concurrency, $3) - coalesce(b.n, 0), 0) AS room,"
"         coalesce(a.due, '-infinity'::pg_catalog.timestamptz) AS after_due,"
"         coalesce(a.id, 0::pg_catalog.int8) AS after_id"
"    FROM s2s.endpoints e LEFT JOIN busy b ON b.name = e.name"
"    LEFT JOIN after a ON a.name = e.name"
"   WHERE e.enabled AND e.paused_at IS NULL"
"), due AS ("
"  SELECT c.ctid, c.next_attempt_at, c.id"
"    FROM room r CROSS JOIN LATERAL ("
"      SELECT d.ctid, d.next_attempt_at, d.id FROM s2s.deliveries d"
"       WHERE d.endpoint = r.name AND d.finished_at IS NULL"
"         AND (d.next_attempt_at, d.id) > (r.after_due, r.after_id)"
"         AND d.next_attempt_at <= pg_catalog.now()"
"         AND d.status IN ('pending', 'retrying')"
"       ORDER BY d.next_attempt_at, d.id LIMIT least(r.room, $4)"
"       FOR UPDATE OF d SKIP LOCKED) c"
"   ORDER BY c.next_attempt_at, c.id LIMIT $4"
") "
"UPDATE s2s.deliveries d"
"   SET status = 'sending', claim_token = $5,"
"       lease_until = pg_catalog.now() OPERATOR(pg_catalog.+)"
"                     ($6::pg_catalog.float8 OPERATOR(pg_catalog.*) '1 second'::pg_catalog.interval),"
"       attempts = d.attempts + 1,"
"       first_attempt_at = coalesce(d.first_attempt_at, pg_catalog.now())"
"  FROM s2s.endpoints e"
"  LEFT JOIN s2s_private.endpoint_secrets s ON s.endpoint = e.name"
" WHERE d.ctid = ANY (ARRAY(SELECT ctid FROM due)) AND e.name = d.endpoint "
"RETURNING " S2S_DELIVERY_SELECT_LIST ", d.next_attempt_at AS claimed_due";

/*
 * Where the claim starts. Finished rows leave deliveries_waiting_idx only when VACUUM
 * removes their entries, and they are the oldest: a walk from the start of an endpoint's
 * range steps over every row finished since the last VACUUM, on every claim, ever more of
 * them as a backlog drains. So while an endpoint has a backlog (its last claim filled all
 * the room it had), its next walk starts after the last row that claim took. A row can
 * still become due behind that point: a claim given back, a row locked by someone else
 * when the walk passed it (SKIP LOCKED), one enqueued by a transaction that started before
 * the claim and committed after it, a retry made due at once (s2s.retry, a resumed
 * endpoint). So the walk starts from the beginning again as soon as a claim leaves room
 * unused (nothing due is left ahead), after anything given back, after an error, and at
 * least every CLAIM_RESTART_MS: such a row waits that much longer at most, and only
 * behind a backlog, never left behind.
 */
#define CLAIM_RESTART_MS 1000
#define MAX_CLAIM_AFTER 64

typedef struct ClaimAfter
{
	char		name[NAMEDATALEN * 4];
	TimestampTz due;
	int64		id;
} ClaimAfter;

static ClaimAfter claim_after[MAX_CLAIM_AFTER];
static int	n_claim_after;
static TimestampTz claim_restarted_at;
static bool claim_abort_callback;

/* The next claim walks every endpoint's range from its beginning. */
static void
claim_restart(void)
{
	n_claim_after = 0;
	claim_restarted_at = GetCurrentTimestamp();
}

/* A claim rolled back leaves its rows due behind the starting points it set. */
static void
claim_restart_on_abort(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT)
		claim_restart();
}

/* Endpoint's starting point becomes (due, id) when that is further on. */
static void
claim_advance(const char *endpoint, TimestampTz due, int64 id)
{
	int			i;

	for (i = 0; i < n_claim_after; i++)
		if (strcmp(claim_after[i].name, endpoint) == 0)
			break;
	if (i == n_claim_after)
	{
		/* more endpoints than slots, or a name that does not fit: no starting point */
		if (n_claim_after == MAX_CLAIM_AFTER || strlen(endpoint) >= sizeof(claim_after[i].name))
			return;
		strlcpy(claim_after[i].name, endpoint, sizeof(claim_after[i].name));
		claim_after[i].due = due;
		claim_after[i].id = id;
		n_claim_after++;
		return;
	}
	if (due > claim_after[i].due || (due == claim_after[i].due && id > claim_after[i].id))
	{
		claim_after[i].due = due;
		claim_after[i].id = id;
	}
}

/*
 * After a claim of n rows (of at most limit): each endpoint that took all the room it had
 * (its cap less its busy count, or the claim's limit) starts its next walk after the last
 * row it took; the others from the beginning.
 */
static void
claim_keep_backlogs(const QueueClaim *claims, int n, int limit, const QueueBusy *busy,
					const TimestampTz *dues)
{
	n_claim_after = 0;
	for (int i = 0; i < n; i++)
	{
		const char *ep = claims[i].delivery.endpoint;
		int			taken = 0;
		int			room = claims[i].endpoint_cap;
		bool		seen = false;

		for (int j = 0; j < i && !seen; j++)
			seen = (strcmp(claims[j].delivery.endpoint, ep) == 0);
		if (seen)
			continue;
		for (int b = 0; b < busy->n; b++)
			if (strcmp(busy->names[b], ep) == 0)
				room -= busy->counts[b];
		for (int j = i; j < n; j++)
			if (strcmp(claims[j].delivery.endpoint, ep) == 0)
				taken++;
		if (taken < room && n < limit)
			continue;
		for (int j = i; j < n; j++)
			if (strcmp(claims[j].delivery.endpoint, ep) == 0)
				claim_advance(ep, dues[j], claims[j].delivery.id);
	}
}

/* The earliest due time still waiting on an enabled, unpaused endpoint. */
static const char *next_due_sql =
"SELECT pg_catalog.min(c.next_attempt_at)"
"  FROM s2s.endpoints e CROSS JOIN LATERAL ("
"    SELECT d.next_attempt_at FROM s2s.deliveries d"
"     WHERE d.endpoint = e.name AND d.finished_at IS NULL"
"       AND d.status IN ('pending', 'retrying')"
"     ORDER BY d.next_attempt_at, d.id LIMIT 1) c"
" WHERE e.enabled AND e.paused_at IS NULL";

/*
 * The write-back. 'give_back' returns a delivery to the queue without counting the
 * attempt (the endpoint was paused, or the worker is leaving): no s2s.attempts row, since
 * its number is reused, and no retry window started by it.
 * "status::text" on purpose: should an index ever have "status = 'sending'" as its
 * predicate again, the planner would walk it for every result instead of looking each
 * result up by primary key.
 */
static const char *write_back_sql =
"WITH r AS ("
"  SELECT * FROM ROWS FROM ("
"      pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.int8[]),"
"      pg_catalog.unnest($3::pg_catalog.int4[]), pg_catalog.unnest($4::pg_catalog.text[]),"
"      pg_catalog.unnest($5::pg_catalog.int4[]), pg_catalog.unnest($6::pg_catalog.text[]),"
"      pg_catalog.unnest($7::pg_catalog.text[]),"
"      pg_catalog.unnest($8::pg_catalog.timestamptz[]),"
"      pg_catalog.unnest($9::pg_catalog.timestamptz[]),"
"      pg_catalog.unnest($10::pg_catalog.float8[]))"
"    AS r(id, token, attempt, outcome, http_status, error, response, next_at,"
"         started_at, duration_ms)"
"), u AS ("
"  UPDATE s2s.deliveries d"
"     SET status = CASE WHEN r.outcome <> 'give_back' THEN r.outcome"
"                       WHEN d.attempts > 1 THEN 'retrying' ELSE 'pending'"
"                  END::s2s.delivery_status,"
"         attempts = d.attempts - (r.outcome = 'give_back')::pg_catalog.int4,"
"         first_attempt_at = CASE WHEN r.outcome = 'give_back' AND d.attempts <= 1"
"                            THEN NULL ELSE d.first_attempt_at END,"
"         next_attempt_at = coalesce(r.next_at, d.next_attempt_at),"
"         last_http_status = r.http_status, last_error = r.error,"
"         last_response = r.response,"
"         sent_at = CASE WHEN r.outcome = 'sent'"
"                   THEN r.started_at OPERATOR(pg_catalog.+)"
"                        (r.duration_ms OPERATOR(pg_catalog.*) '1 ms'::pg_catalog.interval)"
"                   ELSE d.sent_at END,"
"         finished_at = CASE WHEN r.outcome IN ('sent', 'failed')"
"                       THEN r.started_at OPERATOR(pg_catalog.+)"
"                            (r.duration_ms OPERATOR(pg_catalog.*) '1 ms'::pg_catalog.interval)"
"                       END,"
"         claim_token = NULL, lease_until = NULL"
"    FROM r"
"   WHERE d.id = r.id AND d.claim_token = r.token AND d.status::pg_catalog.text = 'sending'"
"  RETURNING d.id, r.outcome"
"), i AS ("
"  INSERT INTO s2s.attempts (delivery_id, attempt, started_at, duration_ms, http_status,"
"                            error, response)"
"  SELECT r.id, r.attempt, r.started_at, r.duration_ms, r.http_status, r.error, r.response"
"    FROM r JOIN u ON u.id = r.id"
"   WHERE r.outcome <> 'give_back'"
"  ON CONFLICT DO NOTHING"
") "
"SELECT pg_catalog.count(*) FILTER (WHERE outcome = 'sent'),"
"       pg_catalog.count(*) FILTER (WHERE outcome = 'retrying'),"
"       pg_catalog.count(*) FILTER (WHERE outcome = 'failed')"
"  FROM u";

/*
 * Give back claims of a dead worker, attempts not counted (and a delivery that had no
 * other attempt has not started its retry window either).
 */
#define RECONCILE_SET \
"   SET status = CASE WHEN d.attempts > 1 THEN 'retrying'"	\
"                     ELSE 'pending' END::s2s.delivery_status,"	\
"       attempts = greatest(d.attempts - 1, 0), claim_token = NULL, lease_until = NULL,"	\
"       first_attempt_at = CASE WHEN d.attempts <= 1 THEN NULL ELSE d.first_attempt_at END"
static const char *reconcile_all_sql =
"UPDATE s2s.deliveries d" RECONCILE_SET
" WHERE d.finished_at IS NULL AND d.status = 'sending'";

/*
 * Expired leases, looked for in a chunk of at most $4 waiting rows after the key ($1, $2,
 * $3) in deliveries_waiting_idx's order: no index names lease_until or status (a claim
 * would not be HOT), so a whole backlog is never read at once. Returns how many were
 * given back, how many rows the chunk read, and the key of its last row.
 * The chunk tells the expired rows itself, and the give-back looks them up by an array of
 * ids: joined to the chunk by id, the planner, which sees no 'sending' row in the table's
 * statistics and a chunk of thousands, scanned the whole table (the finished rows kept
 * for the retention period too) at every look, every poll_interval, as soon as there was
 * a backlog (TAP 015). Nothing else in the give-back may name an indexed column, or the
 * planner may walk that index instead (finished_at IS NULL, deliveries_waiting_idx's
 * predicate, follows from status = 'sending': deliveries_waiting_unfinished). A row
 * updated meanwhile by someone else is judged again as it is now (its id stays).
 */
static const char *reconcile_expired_sql =
"WITH w AS ("
"  SELECT d.endpoint, d.next_attempt_at, d.id,"
"         d.status = 'sending' AND d.lease_until < pg_catalog.now() AS expired"
"    FROM s2s.deliveries d"
"   WHERE d.finished_at IS NULL"
"     AND (d.endpoint, d.next_attempt_at, d.id)"
"         > ($1::pg_catalog.text, $2::pg_catalog.timestamptz, $3::pg_catalog.int8)"
"   ORDER BY d.endpoint, d.next_attempt_at, d.id LIMIT $4"
"), g AS ("
"  UPDATE s2s.deliveries d" RECONCILE_SET
"   WHERE d.id = ANY (ARRAY(SELECT w.id FROM w WHERE w.expired))"
"     AND d.status = 'sending' AND d.lease_until < pg_catalog.now()"
"  RETURNING d.id"
"), l AS ("
"  SELECT w.endpoint, w.next_attempt_at, w.id FROM w"
"   ORDER BY w.endpoint DESC, w.next_attempt_at DESC, w.id DESC LIMIT 1"
") "
"SELECT (SELECT pg_catalog.count(*) FROM g), (SELECT pg_catalog.count(*) FROM w),"
"       l.endpoint, l.next_attempt_at, l.id"
"  FROM (VALUES (1)) AS one(x) LEFT JOIN l ON true";

/* Rows read per look for expired leases, and where the next look starts. */
#define RECONCILE_CHUNK 10000
static char reconcile_after_endpoint[NAMEDATALEN * 4];
static TimestampTz reconcile_after_due = DT_NOBEGIN;
static int64 reconcile_after_id = 0;

/*
 * Lease renewal of the deliveries whose requests are still in flight: $1/$2 their ids and
 * claim tokens, $3 the new end of the lease. Only a row still claimed under that token.
 */
static const char *renew_sql =
"UPDATE s2s.deliveries d SET lease_until = $3"
"  FROM unnest($1::int8[], $2::int8[]) AS r(id, token)"
" WHERE d.id OPERATOR(pg_catalog.=) r.id AND d.claim_token OPERATOR(pg_catalog.=) r.token"
"   AND d.status::text OPERATOR(pg_catalog.=) 'sending'";

static const char *pause_sql =
"UPDATE s2s.endpoints SET paused_at = pg_catalog.now(), pause_reason = $2"
" WHERE name = $1 AND paused_at IS NULL";

/*
 * A batch of at most $2 finished deliveries older than the retention ($1 seconds), and
 * their attempts; returns how many deliveries were deleted. The batch is locked as it is
 * read, skipping rows someone else holds: the purge never waits (an administrator's open
 * or prepared transaction that re-queues a delivery, s2s.retry_failed, holds its rows for
 * as long as it lasts, and while the purge waited nothing was claimed or written back);
 * a skipped row is purged in a later round. A row updated since the statement's snapshot
 * (s2s.retry committed meanwhile) is judged again as it is now by the lock, so a
 * re-queued delivery is never in the batch. Both deletes take an array of ids: joined to
 * the batch by id, which the planner guesses at a tenth of the rows it comes from, each
 * batch read the whole of s2s.attempts and the whole primary key of s2s.deliveries (0.9 s
 * at 1,000,000 rows), every minute once the history kept passed the retention period
 * (TAP 015). Attempts go only with the deliveries deleted.
 */
static const char *purge_sql =
"WITH p AS ("
"  SELECT id FROM s2s.deliveries"
"   WHERE finished_at < pg_catalog.now() OPERATOR(pg_catalog.-)"
"                       ($1::pg_catalog.float8 OPERATOR(pg_catalog.*) '1 second'::pg_catalog.interval)"
"     AND status IN ('sent', 'failed', 'skipped')"
"   ORDER BY finished_at LIMIT $2"
"   FOR UPDATE SKIP LOCKED"
"), d AS ("
"  DELETE FROM s2s.deliveries d WHERE d.id = ANY (ARRAY(SELECT id FROM p))"
"  RETURNING d.id"
"), a AS ("
"  DELETE FROM s2s.attempts t WHERE t.delivery_id = ANY (ARRAY(SELECT id FROM d))"
") "
"SELECT pg_catalog.count(*) FROM d";

/*
 * The first-seen times (first_seen.c) of orders never validated, as old as the finished
 * deliveries the purge removes: $1 the retention in seconds, $2 the batch size. The table
 * is small (orders waiting for their validation), scanned without an index of its own.
 * As in purge_sql, the batch is locked as it is read, skipping rows someone holds: a
 * shop's transaction that validates an old order takes its row (the orders trigger
 * deletes it) and holds it until it ends, and while the purge waited for it nothing was
 * claimed or written back. A row the lock finds updated since (recorded again, newer) is
 * judged again and left.
 */
static const char *purge_first_seen_sql =
"DELETE FROM s2s_private.order_first_seen f USING ("
"  SELECT endpoint, order_id FROM s2s_private.order_first_seen"
"   WHERE first_seen_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-)"
"         ($1::pg_catalog.float8 OPERATOR(pg_catalog.*) '1 second'::pg_catalog.interval))"
"   LIMIT $2"
"   FOR UPDATE SKIP LOCKED"
") p WHERE f.endpoint OPERATOR(pg_catalog.=) p.endpoint"
"      AND f.order_id OPERATOR(pg_catalog.=) p.order_id";

typedef enum
{
	PLAN_CLAIM,
	PLAN_NEXT_DUE,
	PLAN_WRITE_BACK,
	PLAN_RECONCILE_ALL,
	PLAN_RECONCILE_EXPIRED,
	PLAN_RENEW,
	PLAN_PAUSE,
	PLAN_PURGE,
	PLAN_PURGE_FIRST_SEEN,
	NUM_PLANS
} PlanId;

static SPIPlanPtr plans[NUM_PLANS];

static SPIPlanPtr
get_plan(PlanId id)
{
	static const Oid claim_types[] = {TEXTARRAYOID, INT4ARRAYOID, INT4OID, INT4OID,
	INT8OID, INT4OID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID};
	static const Oid write_back_types[] = {INT8ARRAYOID, INT8ARRAYOID, INT4ARRAYOID,
		TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
	TIMESTAMPTZARRAYOID, FLOAT8ARRAYOID};
	static const Oid renew_types[] = {INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZOID};
	static const Oid pause_types[] = {TEXTOID, TEXTOID};
	static const Oid purge_types[] = {INT4OID, INT4OID};
	static const Oid reconcile_types[] = {TEXTOID, TIMESTAMPTZOID, INT8OID, INT4OID};
	const char *sql;
	int			nargs = 0;
	const Oid  *types = NULL;
	SPIPlanPtr	plan;

	if (plans[id] != NULL)
		return plans[id];

	switch (id)
	{
		case PLAN_CLAIM:
			sql = claim_sql;
			nargs = lengthof(claim_types);
			types = claim_types;
			break;
		case PLAN_NEXT_DUE:
			sql = next_due_sql;
			break;
		case PLAN_WRITE_BACK:
			sql = write_back_sql;
			nargs = lengthof(write_back_types);
			types = write_back_types;
			break;
		case PLAN_RECONCILE_ALL:
			sql = reconcile_all_sql;
			break;
		case PLAN_RECONCILE_EXPIRED:
			sql = reconcile_expired_sql;
			nargs = lengthof(reconcile_types);
			types = reconcile_types;
			break;
		case PLAN_RENEW:
			sql = renew_sql;
			nargs = lengthof(renew_types);
			types = renew_types;
			break;
		case PLAN_PAUSE:
			sql = pause_sql;
			nargs = lengthof(pause_types);
			types = pause_types;
			break;
		case PLAN_PURGE:
			sql = purge_sql;
			nargs = lengthof(purge_types);
			types = purge_types;
			break;
		case PLAN_PURGE_FIRST_SEEN:
			sql = purge_first_seen_sql;
			nargs = lengthof(purge_types);
			types = purge_types;
			break;
		default:
			elog(ERROR, "unknown s2s_tracking plan %d", (int) id);
	}

	plan = SPI_prepare(sql, nargs, (Oid *) types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for s2s_tracking plan %d: %s", (int) id,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed for s2s_tracking plan %d", (int) id);
	plans[id] = plan;
	return plan;
}

void
s2s_queue_forget_plans(void)
{
	claim_restart();
	for (int i = 0; i < NUM_PLANS; i++)
	{
		if (plans[i] != NULL)
			SPI_freeplan(plans[i]);
		plans[i] = NULL;
	}
}

uint64
s2s_queue_reconcile(bool all_sending)
{
	Datum		values[4];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	uint64		given_back;
	int64		read;
	int			rc;

	if (all_sending)
	{
		rc = SPI_execute_plan(get_plan(PLAN_RECONCILE_ALL), NULL, NULL, false, 0);
		if (rc != SPI_OK_UPDATE)
			elog(ERROR, "s2s_tracking reconcile failed: %s", SPI_result_code_string(rc));
		if (SPI_processed > 0)
			claim_restart();
		return SPI_processed;
	}

	values[0] = CStringGetTextDatum(reconcile_after_endpoint);
	values[1] = TimestampTzGetDatum(reconcile_after_due);
	values[2] = Int64GetDatum(reconcile_after_id);
	values[3] = Int32GetDatum(RECONCILE_CHUNK);
	rc = SPI_execute_plan(get_plan(PLAN_RECONCILE_EXPIRED), values, NULL, false, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "s2s_tracking reconcile failed: %s", SPI_result_code_string(rc));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	given_back = (uint64) DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	read = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
	if (given_back > 0)
		claim_restart();

	/*
	 * A whole chunk: the next look goes on after its last row. Else the walk reached the
	 * end and the next one starts again from the beginning. (Kept even if the transaction
	 * then aborts: the rows of this chunk are looked at again in the next round.)
	 */
	if (read == RECONCILE_CHUNK)
	{
		char	   *name = TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull));

		strlcpy(reconcile_after_endpoint, name, sizeof(reconcile_after_endpoint));
		reconcile_after_due = DatumGetTimestampTz(SPI_getbinval(tup, desc, 4, &isnull));
		reconcile_after_id = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
	}
	else
	{
		reconcile_after_endpoint[0] = '\0';
		reconcile_after_due = DT_NOBEGIN;
		reconcile_after_id = 0;
	}
	return given_back;
}

int
s2s_queue_claim(int64 token, int limit, int lease_s, const QueueBusy *busy,
			QueueClaim **claims, TimestampTz *next_due)
{
	MemoryContext cxt = CurrentMemoryContext;
	Datum		values[9];
	Datum	   *names;
	Datum	   *counts;
	Datum	   *after_names;
	Datum	   *after_dues;
	Datum	   *after_ids;
	TimestampTz *dues;
	int			rc;
	int			n;
	QueueClaim *out;

	*claims = NULL;
	*next_due = 0;

	names = palloc(sizeof(Datum) * Max(busy->n, 1));
	counts = palloc(sizeof(Datum) * Max(busy->n, 1));
	for (int i = 0; i < busy->n; i++)
	{
		names[i] = CStringGetTextDatum(busy->names[i]);
		counts[i] = Int32GetDatum(busy->counts[i]);
	}
	values[0] = PointerGetDatum(construct_array(names, busy->n, TEXTOID, -1, false,
												TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(counts, busy->n, INT4OID, 4, true,
												TYPALIGN_INT));
	values[2] = Int32GetDatum(s2s_endpoint_concurrency);
	values[3] = Int32GetDatum(limit);
	values[4] = Int64GetDatum(token);
	values[5] = Int32GetDatum(lease_s);

	if (!claim_abort_callback)
	{
		RegisterXactCallback(claim_restart_on_abort, NULL);
		claim_abort_callback = true;
	}
	if (claim_restarted_at == 0 ||
		TimestampDifferenceExceeds(claim_restarted_at, GetCurrentTimestamp(), CLAIM_RESTART_MS))
		claim_restart();
	after_names = palloc(sizeof(Datum) * Max(n_claim_after, 1));
	after_dues = palloc(sizeof(Datum) * Max(n_claim_after, 1));
	after_ids = palloc(sizeof(Datum) * Max(n_claim_after, 1));
	for (int i = 0; i < n_claim_after; i++)
	{
		after_names[i] = CStringGetTextDatum(claim_after[i].name);
		after_dues[i] = TimestampTzGetDatum(claim_after[i].due);
		after_ids[i] = Int64GetDatum(claim_after[i].id);
	}
	values[6] = PointerGetDatum(construct_array(after_names, n_claim_after, TEXTOID, -1,
												false, TYPALIGN_INT));
	values[7] = PointerGetDatum(construct_array(after_dues, n_claim_after, TIMESTAMPTZOID, 8,
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[8] = PointerGetDatum(construct_array(after_ids, n_claim_after, INT8OID, 8,
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));

	rc = SPI_execute_plan(get_plan(PLAN_CLAIM), values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "s2s_tracking claim failed: %s", SPI_result_code_string(rc));

	n = (int) SPI_processed;
	out = MemoryContextAllocZero(cxt, sizeof(QueueClaim) * Max(n, 1));
	dues = palloc(sizeof(TimestampTz) * Max(n, 1));
	if (n > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		S2SReadColumns cols;
		int			due_col = SPI_fnumber(SPI_tuptable->tupdesc, "claimed_due");

		s2s_read_columns_init(&cols, SPI_tuptable->tupdesc);
		for (int i = 0; i < n; i++)
		{
			QueueClaim *c = &out[i];
			S2SReadDelivery *d = &c->delivery;
			bool		isnull;
			Datum		due;

			s2s_read_delivery_from_tuple(&cols, SPI_tuptable->tupdesc, SPI_tuptable->vals[i], d);
			due = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, due_col, &isnull);
			dues[i] = DatumGetTimestampTz(due);
			/* RETURNING shows the row after the claim: attempts counts this one. */
			c->attempt = d->attempts;
			c->endpoint_cap = d->max_concurrency > 0 ? d->max_concurrency :
				s2s_endpoint_concurrency;
			c->retry_window_s = d->retry_window_s >= 0 ? d->retry_window_s :
				s2s_retry_window_s;
		}
		MemoryContextSwitchTo(old);
	}
	*claims = out;

	claim_keep_backlogs(out, n, limit, busy, dues);

	/*
	 * Nothing due (or every endpoint at its cap): find when the next one is, for the
	 * worker's wait. (Not after a partial claim: under load that would be one more
	 * statement per pass, and the worker knows the retry times it writes itself.)
	 */
	if (n == 0)
	{
		rc = SPI_execute_plan(get_plan(PLAN_NEXT_DUE), NULL, NULL, true, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "s2s_tracking next-due query failed: %s", SPI_result_code_string(rc));
		if (SPI_processed == 1)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
										  &isnull);

			if (!isnull)
				*next_due = DatumGetTimestampTz(d);
		}
	}
	return n;
}

void
s2s_queue_write_back(const QueueResult *results, int n, QueueCounts *counts)
{
	Datum		values[10];
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *tokens = palloc(sizeof(Datum) * n);
	Datum	   *attempts = palloc(sizeof(Datum) * n);
	Datum	   *outcomes = palloc(sizeof(Datum) * n);
	Datum	   *statuses = palloc(sizeof(Datum) * n);
	bool	   *status_nulls = palloc(sizeof(bool) * n);
	Datum	   *errors = palloc(sizeof(Datum) * n);
	bool	   *error_nulls = palloc(sizeof(bool) * n);
	Datum	   *responses = palloc(sizeof(Datum) * n);
	bool	   *response_nulls = palloc(sizeof(bool) * n);
	Datum	   *next_at = palloc(sizeof(Datum) * n);
	bool	   *next_nulls = palloc(sizeof(bool) * n);
	Datum	   *started = palloc(sizeof(Datum) * n);
	Datum	   *durations = palloc(sizeof(Datum) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			rc;
	static const char *const outcome_name[] = {
		[QUEUE_SENT] = "sent",
		[QUEUE_RETRY] = "retrying",
		[QUEUE_FAILED] = "failed",
		[QUEUE_GIVE_BACK] = "give_back"
	};

	for (int i = 0; i < n; i++)
	{
		const QueueResult *r = &results[i];

		/* due again, behind the claim's starting point */
		if (r->outcome == QUEUE_GIVE_BACK)
			claim_restart();
		ids[i] = Int64GetDatum(r->id);
		tokens[i] = Int64GetDatum(r->token);
		attempts[i] = Int32GetDatum(r->attempt);
		outcomes[i] = CStringGetTextDatum(outcome_name[r->outcome]);
		statuses[i] = Int32GetDatum(r->http_status);
		status_nulls[i] = (r->http_status == 0);
		errors[i] = r->error ? CStringGetTextDatum(r->error) : (Datum) 0;
		error_nulls[i] = (r->error == NULL);
		responses[i] = r->response ? CStringGetTextDatum(r->response) : (Datum) 0;
		response_nulls[i] = (r->response == NULL);
		next_at[i] = TimestampTzGetDatum(r->next_attempt_at);
		next_nulls[i] = (r->outcome != QUEUE_RETRY);
		started[i] = TimestampTzGetDatum(r->started_at);
		durations[i] = Float8GetDatum(r->duration_ms);
	}

	values[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL,
												TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(tokens, n, INT8OID, 8, FLOAT8PASSBYVAL,
												TYPALIGN_DOUBLE));
	values[2] = PointerGetDatum(construct_array(attempts, n, INT4OID, 4, true,
												TYPALIGN_INT));
	values[3] = PointerGetDatum(construct_array(outcomes, n, TEXTOID, -1, false,
												TYPALIGN_INT));
	values[4] = PointerGetDatum(construct_md_array(statuses, status_nulls, 1, dims, lbs,
												   INT4OID, 4, true, TYPALIGN_INT));
	values[5] = PointerGetDatum(construct_md_array(errors, error_nulls, 1, dims, lbs,
												   TEXTOID, -1, false, TYPALIGN_INT));
	values[6] = PointerGetDatum(construct_md_array(responses, response_nulls, 1, dims, lbs,
												   TEXTOID, -1, false, TYPALIGN_INT));
	values[7] = PointerGetDatum(construct_md_array(next_at, next_nulls, 1, dims, lbs,
												   TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL,
												   TYPALIGN_DOUBLE));
	values[8] = PointerGetDatum(construct_array(started, n, TIMESTAMPTZOID, 8,
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[9] = PointerGetDatum(construct_array(durations, n, FLOAT8OID, 8,
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));

	rc = SPI_execute_plan(get_plan(PLAN_WRITE_BACK), values, NULL, false, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "s2s_tracking write-back failed: %s", SPI_result_code_string(rc));
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		counts->sent += DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		counts->retried += DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		counts->failed += DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	}
}

void
s2s_queue_renew_leases(const int64 *ids, const int64 *tokens, int n, TimestampTz lease_until)
{
	Datum		values[3];
	Datum	   *id_d = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *token_d = palloc(sizeof(Datum) * Max(n, 1));
	int			rc;

	for (int i = 0; i < n; i++)
	{
		id_d[i] = Int64GetDatum(ids[i]);
		token_d[i] = Int64GetDatum(tokens[i]);
	}
	values[0] = PointerGetDatum(construct_array(id_d, n, INT8OID, 8, FLOAT8PASSBYVAL,
												TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(token_d, n, INT8OID, 8, FLOAT8PASSBYVAL,
												TYPALIGN_DOUBLE));
	values[2] = TimestampTzGetDatum(lease_until);
	rc = SPI_execute_plan(get_plan(PLAN_RENEW), values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "s2s_tracking lease renewal failed: %s", SPI_result_code_string(rc));
}

void
s2s_queue_pause_endpoint(const char *endpoint, const char *reason)
{
	Datum		values[2];
	int			rc;

	values[0] = CStringGetTextDatum(endpoint);
	values[1] = CStringGetTextDatum(reason);
	rc = SPI_execute_plan(get_plan(PLAN_PAUSE), values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "s2s_tracking endpoint pause failed: %s", SPI_result_code_string(rc));
}

uint64
s2s_queue_purge(int retention_s, int limit)
{
	Datum		values[2];
	bool		isnull;
	int			rc;

	values[0] = Int32GetDatum(retention_s);
	values[1] = Int32GetDatum(limit);
	rc = SPI_execute_plan(get_plan(PLAN_PURGE), values, NULL, false, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "s2s_tracking purge failed: %s", SPI_result_code_string(rc));
	return (uint64) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 1, &isnull));
}

uint64
s2s_queue_purge_first_seen(int retention_s, int limit)
{
	Datum		values[2];
	Oid			nsp;
	int			rc;

	/* a library newer than the installed SQL objects (before ALTER EXTENSION UPDATE) */
	nsp = get_namespace_oid("s2s_private", true);
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("order_first_seen", nsp)))
		return 0;
	values[0] = Int32GetDatum(retention_s);
	values[1] = Int32GetDatum(limit);
	rc = SPI_execute_plan(get_plan(PLAN_PURGE_FIRST_SEEN), values, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "s2s_tracking purge of first-seen times failed: %s",
			 SPI_result_code_string(rc));
	return SPI_processed;
}
