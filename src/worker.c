/*
 * worker.c
 *		The delivery background worker: registration and main loop.
 *
 * Shape of worker_spi: register in _PG_init, unblock signals, connect, then a loop of
 * wait / ResetLatch / CHECK_FOR_INTERRUPTS, reloading the configuration on SIGHUP, one
 * transaction per unit of work with pgstat_report_activity saying what it does.
 *
 * One pass of the loop: collect the HTTP transfers that completed, then in one transaction
 * write their results back and claim as many due deliveries as there is room for (global
 * and per-endpoint caps), commit, and only then hand the claimed requests to the libcurl
 * multi client. A pass with nothing to write back claims in a transaction whose commit
 * does not wait for the disk, so a wake-up turns into requests without an fsync in
 * between. The wait is on the latch (set by a committing enqueue, s2s.wake, a signal)
 * and the client's epoll descriptor together, so a completed transfer is written back and
 * its room refilled at once: the pipeline never waits for the slowest request of a batch.
 *
 * Crash safety comes from the queue (queue.c): claims carry a token and a lease, and on
 * start every 'sending' row (claimed by a dead worker) is given back, its attempt not
 * counted. On SIGTERM the worker stops claiming, gives the transfers in flight a moment to
 * finish, and gives back the rest.
 *
 * Safety: nothing a database user creates runs in the worker. Its search_path is pinned
 * before any statement, its SQL names everything with its schema (queue.c), and every
 * unit of work runs as the extension's owner rather than as the bootstrap superuser the
 * worker connects as (run_unit_as_owner). Where it may connect is the HTTP client's
 * business (http.c, netcheck.c: s2s_tracking.allowed_networks).
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "home.h"
#include "http.h"
#include "queue.h"
#include "redact.h"
#include "refused.h"
#include "render.h"
#include "retry.h"
#include "settings.h"
#include "shared.h"
#include "worker.h"

#define USER_AGENT "s2s_tracking/" S2S_VERSION

/* Upper bound of s2s_tracking.max_concurrency: the in-flight slots are allocated once. */
#define MAX_SLOTS 1000

/* Finished deliveries are purged this often, in batches of PURGE_BATCH. */
#define PURGE_INTERVAL_MS 60000
#define PURGE_BATCH 1000
#define PURGE_BATCHES_PER_ROUND 10

/* While the extension is missing, how often to look for it. */
#define EXTENSION_CHECK_MS 1000

/*
 * While it is there, how often to make sure it still is, so that a worker leaves (or
 * says it waits) within seconds of DROP EXTENSION however long its poll_interval.
 */
#define EXTENSION_RECHECK_MS 2000

/* After an error in a unit of work, pause this long before the next one. */
#define ERROR_PAUSE_MS 1000

/* On SIGTERM, how long transfers in flight may still complete before being given back. */
#define SHUTDOWN_GRACE_MS 1000

/* While prepared transactions that enqueued are pending, how often to look for their end. */
#define PREPARED_POLL_MS 100

/* One transfer in flight. */
typedef struct Slot
{
	bool		used;
	int64		id;
	int64		token;
	int32		attempt;
	int			endpoint;		/* index in endpoints[] */
	TimestampTz first_attempt_at;
	int64		retry_window_s;
	char	   *secret;			/* the endpoint's secret as sent (worker_cxt), to mask it
								 * in what is stored; NULL when none */
	char	   *refused_pattern;	/* the endpoint's refused_pattern (worker_cxt); NULL:
									 * none */
	TimestampTz lease_until;	/* the row's lease_until, as committed */
	struct Slot *next_free;
} Slot;

/* Endpoints seen so far and how many transfers each has in flight. */
typedef struct EndpointLoad
{
	char	   *name;
	int			in_flight;
} EndpointLoad;

static MemoryContext worker_cxt;	/* lives as long as the worker */
static MemoryContext batch_cxt;		/* reset after every pass */
static HttpClient *http;
static WaitEventSet *wait_set;
static Slot *slots;
static Slot *free_slots;
static int	in_flight;
static EndpointLoad *endpoints;
static int	n_endpoints;
static int	max_endpoints;
static int64 token_base;
static int64 token_seq;
static Oid	extension_owner;	/* looked up at the start of every unit */
static S2SDbSlot *my_slot;		/* this database's slot in shared memory */
static S2SWorkerArgs args;		/* from the launcher */

/*
 * A result whose write-back failed on its own (an error in its transaction, e.g. a lock
 * timeout, or a trigger that refuses it), held until it can be written back: its row stays
 * 'sending' under our claim with its lease renewed, as for a request in flight, so an
 * error never turns a sent delivery into a resent one. Held results take room from
 * max_concurrency, so there are never more than MAX_SLOTS. Strings in worker_cxt.
 */
typedef struct Held
{
	QueueResult r;
	TimestampTz lease_until;	/* the row's lease_until, as committed */
} Held;

static Held *held;
static int	n_held;
static TimestampTz next_held_retry;

/* When the next lease renewal is due: the earliest in-flight lease's half-life; 0: none. */
static TimestampTz next_renewal;

/* Prepared transactions that enqueued (or may have): a claim follows the end of each. */
static TransactionId *watched;
static int	n_watched;
static int	max_watched;

/* Work handed from one phase of a pass to the next (in batch_cxt). */
typedef struct Pass
{
	QueueResult *results;
	int			n_results;
	QueueCounts counts;			/* what the write-back changed */
	int		   *pause;			/* endpoint indexes to pause */
	const char **pause_reason;
	int			n_pause;
	bool		reconcile_expired;
	TimestampTz *leases;		/* lease_until of each result's row */
	bool		renew;			/* renew the leases of requests in flight */
	TimestampTz **renewed;		/* the leases the unit renewed (of slots, held results) */
	int			n_renewed;
	TimestampTz renewed_until;
	int			claim_limit;
	int64		claim_token;
	TimestampTz claim_lease_until;	/* lease_until of the rows the claim took */
	QueueClaim *claims;
	int			n_claims;
	TimestampTz next_due;		/* from the claim: earliest waiting delivery */
	TimestampTz retry_due;		/* earliest retry among this pass's results */
} Pass;

static void
fill_options(HttpClientOptions *o)
{
	NetPolicy	policy;

	o->max_connections = s2s_max_concurrency;
	o->max_host_connections = s2s_endpoint_concurrency;
	o->connect_timeout_ms = s2s_connect_timeout_ms;
	o->total_timeout_ms = s2s_request_timeout_ms;
	o->max_response_bytes = (size_t) s2s_response_limit;
	o->allow_http = s2s_allow_http;
	o->user_agent = USER_AGENT;
	policy = s2s_network_policy();
	o->allowed_networks = policy.allowed;
	o->n_allowed_networks = policy.n_allowed;
	o->allow_link_local = policy.allow_link_local;
}

static void
s2s_worker_detach(int code, Datum arg)
{
	/*
	 * Aborts whatever is still in flight: those rows stay 'sending' until reconciled.
	 * (The slot is given up later, once the transaction is aborted: shared.c.)
	 */
	if (http != NULL)
	{
		http_client_destroy(http);
		http = NULL;
	}
}

static int
endpoint_index(const char *name)
{
	for (int i = 0; i < n_endpoints; i++)
		if (strcmp(endpoints[i].name, name) == 0)
			return i;
	if (n_endpoints == max_endpoints)
	{
		max_endpoints *= 2;
		endpoints = repalloc(endpoints, sizeof(EndpointLoad) * max_endpoints);
	}
	endpoints[n_endpoints].name = MemoryContextStrdup(worker_cxt, name);
	endpoints[n_endpoints].in_flight = 0;
	return n_endpoints++;
}

static TimestampTz
unix_to_timestamptz(double unix_s)
{
	return (TimestampTz) ((unix_s - ((double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) *
									 SECS_PER_DAY)) * USECS_PER_SEC);
}

/*
 * A response body as text the database accepts, the request's secret masked: a receiver
 * may echo the request (an error page quoting the request line shows the Affilae key or
 * the Swaarm token). "cut": the client kept only the start of the body, which may end in
 * the middle of the secret. Masking works on the bytes received; then NUL bytes and byte
 * sequences invalid in the database encoding become '?'.
 */
static char *
response_text(const char *body, size_t len, const char *secret, bool cut)
{
	int			encoding = GetDatabaseEncoding();
	char	   *out;
	size_t		i = 0;

	if (body == NULL || len == 0)
		return NULL;
	out = palloc(len + 1);
	(void) s2s_redact(body, len, out, &secret, 1, cut);
	while (i < len)
	{
		int			ok = pg_encoding_verifymbstr(encoding, out + i, (int) (len - i));

		i += ok;
		if (i < len)
			out[i++] = '?';
	}
	out[len] = '\0';
	return out;
}

/* A copy of text with the secret masked (errors: libcurl's words, our reasons). */
static char *
redacted(const char *text, const char *secret)
{
	size_t		len = strlen(text);
	char	   *out = palloc(len + 1);

	(void) s2s_redact(text, len, out, &secret, 1, false);
	out[len] = '\0';
	return out;
}

/*
 * What went wrong with an attempt, in words: the HTTP status or the transport error, then
 * the classification's reason. Neither should contain a URL; the secret is masked anyway,
 * since libcurl's words are not ours to promise. libcurl's text may quote what the server
 * sent (a certificate's subject name) and is cut at 256 bytes: it is made valid in the
 * database encoding like a response body.
 */
static char *
attempt_error(const HttpResult *res, const char *reason, const char *secret)
{
	if (res->http_status > 0)
		return psprintf("HTTP %ld: %s", res->http_status, reason);
	if (res->error[0] != '\0')
		return psprintf("%s (%s)", reason,
						response_text(res->error, strlen(res->error), secret, true));
	return pstrdup(reason);
}

/*
 * A 2xx whose body matches the endpoint's refused_pattern is the network saying no
 * (Affilae may answer 200 with an error text for an unknown click ID): the delivery fails,
 * for good, with the body (as stored: the secret masked, valid text) as the reason. Final,
 * not retried: the network has read the conversion and answered; sending it again would
 * get the same answer, or count it twice if it was in fact recorded. A pattern that
 * cannot be run leaves the 2xx sent, the reason recorded beside it.
 */
static void
judge_refusal(QueueResult *r, const Slot *slot)
{
	const char *body = r->response ? r->response : "";
	char	   *message = NULL;

	if (slot->refused_pattern == NULL)
		return;
	switch (s2s_refused_match(endpoints[slot->endpoint].name, slot->refused_pattern,
							  body, strlen(body), &message))
	{
		case S2S_REFUSAL_NONE:
			break;
		case S2S_REFUSAL_MATCH:
			{
				int			keep = pg_mbcliplen(body, strlen(body), S2S_REFUSED_REASON_MAX);

				r->outcome = QUEUE_FAILED;
				r->error = psprintf("HTTP %d: refused: the answer matches the endpoint's refused_pattern: %.*s",
									r->http_status, keep, body);
				break;
			}
		case S2S_REFUSAL_UNKNOWN:
			r->error = psprintf("HTTP %d: counted as sent; refused_pattern could not be matched: %s",
								r->http_status, message);
			break;
	}
}

/* Judges one completed transfer and turns it into a write-back row (in batch_cxt). */
static void
judge_result(Pass *pass, HttpResult *res, TimestampTz now)
{
	Slot	   *slot = (Slot *) res->tag;
	QueueResult *r = &pass->results[pass->n_results++];
	const char *reason;
	S2SOutcome	outcome;

	outcome = s2s_classify_attempt(res->http_status, res->error_kind, &reason);

	pass->leases[pass->n_results - 1] = slot->lease_until;
	r->id = slot->id;
	r->token = slot->token;
	r->attempt = slot->attempt;
	r->http_status = (int) res->http_status;
	r->started_at = unix_to_timestamptz(res->started_at);
	r->duration_ms = res->duration_ms;
	r->response = response_text(res->body, res->body_len, slot->secret,
								res->body_truncated);
	r->error = NULL;
	r->next_attempt_at = 0;

	switch (outcome)
	{
		case S2S_OUTCOME_SENT:
			r->outcome = QUEUE_SENT;
			judge_refusal(r, slot);
			break;
		case S2S_OUTCOME_RETRY:
			{
				int64		retry_after_ms = -1;
				int64		delay_ms;
				int64		next_us;

				if (res->retry_after != NULL &&
					!s2s_parse_retry_after(res->retry_after, (int64) time(NULL),
										   &retry_after_ms))
					retry_after_ms = -1;
				delay_ms = s2s_retry_delay_ms(slot->attempt, s2s_retry_base_ms,
											  s2s_retry_max_ms, pg_prng_double(&pg_global_prng_state),
											  retry_after_ms);
				r->error = attempt_error(res, reason, slot->secret);
				if (s2s_retry_schedule(slot->first_attempt_at, now, delay_ms,
									   (int64) slot->retry_window_s * 1000, &next_us))
				{
					r->outcome = QUEUE_RETRY;
					r->next_attempt_at = (TimestampTz) next_us;
					if (pass->retry_due == 0 || r->next_attempt_at < pass->retry_due)
						pass->retry_due = r->next_attempt_at;
				}
				else
				{
					r->outcome = QUEUE_FAILED;
					r->error = psprintf("retry window over: %s", r->error);
				}
				break;
			}
		case S2S_OUTCOME_FAILED:
			r->outcome = QUEUE_FAILED;
			r->error = attempt_error(res, reason, slot->secret);
			break;
		case S2S_OUTCOME_PAUSE:
			{
				bool		seen = false;

				/* a request refused before sending says why (e.g. a link-local address) */
				if (res->error_kind == HTTP_ERROR_REFUSED && res->error[0] != '\0')
					reason = attempt_error(res, reason, slot->secret);
				r->outcome = QUEUE_GIVE_BACK;
				r->error = psprintf("endpoint paused: %s", reason);
				for (int i = 0; i < pass->n_pause; i++)
					seen |= (pass->pause[i] == slot->endpoint);
				if (!seen)
				{
					pass->pause[pass->n_pause] = slot->endpoint;
					pass->pause_reason[pass->n_pause] = pstrdup(reason);
					pass->n_pause++;
				}
				break;
			}
	}

	/* The slot is free again; no copy of the secret outlives the request. */
	if (slot->secret != NULL)
	{
		explicit_bzero(slot->secret, strlen(slot->secret));
		pfree(slot->secret);
		slot->secret = NULL;
	}
	if (slot->refused_pattern != NULL)
	{
		pfree(slot->refused_pattern);
		slot->refused_pattern = NULL;
	}
	endpoints[slot->endpoint].in_flight--;
	in_flight--;
	slot->used = false;
	slot->next_free = free_slots;
	free_slots = slot;
}

/*
 * Collects up to "max" completed transfers into pass->results, which has room for "extra"
 * more (the claims of this pass that cannot be sent).
 */
static void
collect_results(Pass *pass, int max, int extra, TimestampTz now)
{
	HttpResult	res;

	pass->results = palloc(sizeof(QueueResult) * Max(max + extra, 1));
	pass->leases = palloc(sizeof(TimestampTz) * Max(max + extra, 1));
	pass->pause = palloc(sizeof(int) * Max(max, 1));
	pass->pause_reason = palloc(sizeof(char *) * Max(max, 1));
	while (pass->n_results < max && http_next_result(http, &res))
	{
		judge_result(pass, &res, now);
		http_result_release(&res);
	}
}

/*
 * Renews, in the current transaction, the lease of every request in flight (and of every
 * held result) whose lease ends within half a lease (s2s_tracking.lease as it is now) of
 * the transaction's start, now() to SQL. So when the reconcile that follows in the same
 * transaction gives back leases ending before now(), none of them is one of ours: those
 * renewed end a whole lease after now(), the others at least half a lease after.
 * Whatever the lease, its reloads or the time a request takes, a request in flight is
 * never given back, so never sent twice, and its result is written back. Applied to the
 * slots only once the transaction commits (after_write_back).
 */
static void
renew_leases(Pass *pass)
{
	TimestampTz xact_start = GetCurrentTransactionStartTimestamp();
	int64		lease_us = (int64) s2s_lease_s * USECS_PER_SEC;
	int			max = in_flight + n_held;
	int64	   *ids = MemoryContextAlloc(batch_cxt, sizeof(int64) * Max(max, 1));
	int64	   *tokens = MemoryContextAlloc(batch_cxt, sizeof(int64) * Max(max, 1));
	int			n = 0;

	pass->renewed = MemoryContextAlloc(batch_cxt, sizeof(TimestampTz *) * Max(max, 1));
	pass->renewed_until = xact_start + lease_us;
	for (int i = 0; i < MAX_SLOTS && n < in_flight; i++)
	{
		if (!slots[i].used || slots[i].lease_until >= xact_start + lease_us / 2)
			continue;
		ids[n] = slots[i].id;
		tokens[n] = slots[i].token;
		pass->renewed[n++] = &slots[i].lease_until;
	}
	for (int i = 0; i < n_held; i++)
	{
		if (held[i].lease_until >= xact_start + lease_us / 2)
			continue;
		ids[n] = held[i].r.id;
		tokens[n] = held[i].r.token;
		pass->renewed[n++] = &held[i].lease_until;
	}
	if (n > 0)
	{
		pgstat_report_activity(STATE_RUNNING, "renewing leases of requests in flight");
		queue_renew_leases(ids, tokens, n, pass->renewed_until);
	}
	pass->n_renewed = n;
}

/*
 * Writes back a pass's results, pausing endpoints, renewing the leases of the requests in
 * flight and giving back expired leases (of rows this worker no longer tracks).
 */
static void
write_back(Pass *pass)
{
	/*
	 * A result written back must survive a crash, else its delivery is sent again: this
	 * commit waits for the disk even where the cluster sets synchronous_commit = off.
	 * (It also flushes the claims committed before without waiting.)
	 */
	if (synchronous_commit < SYNCHRONOUS_COMMIT_LOCAL_FLUSH)
		(void) set_config_option("synchronous_commit", "on", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	pass->n_renewed = 0;
	if (pass->n_results > 0)
	{
		pgstat_report_activity(STATE_RUNNING, "writing back delivery results");
		for (int i = 0; i < pass->n_pause; i++)
			queue_pause_endpoint(endpoints[pass->pause[i]].name, pass->pause_reason[i]);
		queue_write_back(pass->results, pass->n_results, &pass->counts);
	}
	if ((pass->renew || pass->reconcile_expired) && in_flight + n_held > 0)
		renew_leases(pass);
	if (pass->reconcile_expired)
		queue_reconcile(false);
}

/* Claims as many due deliveries as the pass has room for; endpoints being paused get none. */
static void
claim(Pass *pass)
{
	QueueBusy	busy;
	MemoryContext old;

	busy.names = palloc(sizeof(char *) * Max(n_endpoints, 1));
	busy.counts = palloc(sizeof(int) * Max(n_endpoints, 1));
	busy.n = 0;
	for (int i = 0; i < n_endpoints; i++)
	{
		int			n = endpoints[i].in_flight;

		for (int p = 0; p < pass->n_pause; p++)
			if (pass->pause[p] == i)
				n = 1000000;
		if (n == 0)
			continue;
		busy.names[busy.n] = endpoints[i].name;
		busy.counts[busy.n] = n;
		busy.n++;
	}
	/* A copy of production pauses its endpoints here, before anything is claimed. */
	(void) s2s_home_confirm(args.database);
	pgstat_report_activity(STATE_RUNNING, "claiming due deliveries");
	/* now() + lease, as the claim writes it into lease_until */
	pass->claim_lease_until = GetCurrentTransactionStartTimestamp() +
		(int64) s2s_lease_s * USECS_PER_SEC;
	old = MemoryContextSwitchTo(batch_cxt);
	pass->n_claims = queue_claim(pass->claim_token, pass->claim_limit, s2s_lease_s,
								 &busy, &pass->claims, &pass->next_due);
	MemoryContextSwitchTo(old);
}

/* A transaction that only writes back. */
static void
unit_write_back(void *arg)
{
	write_back((Pass *) arg);
}

/*
 * A transaction that writes back, then claims the room the results freed. Committed
 * synchronously (the write-back must be durable); the new claims are only sent after it,
 * so a crash can make duplicates only of what was in flight (at most max_concurrency).
 */
static void
unit_write_back_and_claim(void *arg)
{
	Pass	   *pass = (Pass *) arg;

	write_back(pass);
	claim(pass);
}

/*
 * A transaction that only claims (nothing to write back), committed without waiting for
 * its WAL to reach disk (synchronous_commit off for this transaction only), so that no
 * fsync stands between a wake-up and the requests. A crash can lose such a claim only
 * while its requests are in flight (the next write-back's synchronous commit flushes it),
 * and those would be sent again anyway: the at-least-once bound does not change.
 */
static void
unit_claim(void *arg)
{
	(void) set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	claim((Pass *) arg);
}

/*
 * Runs fn in its own transaction, as the extension's owner; an error is logged and the
 * transaction rolled back, so that one failing unit never kills the loop. Returns whether
 * it committed. Without the extension, fn runs only when it does not need it (the check
 * for the extension), and then as the worker's own user, reading the catalog only.
 *
 * Why as the owner: the worker connects as the bootstrap superuser, but its statements
 * (and any trigger they fire) need no more than what the extension's owner has, since
 * that role owns every table they touch. The owner is looked up in every unit, so an
 * ownership change (REASSIGN OWNED) applies at once. SECURITY_RESTRICTED_OPERATION, as
 * for maintenance commands run as a table's owner, keeps code fired by the worker's
 * statements from changing the session under it (SET ROLE, temporary objects, ...).
 * The user is switched back after the commit, so that deferred triggers fired by the
 * commit run as the owner too; on error, the abort restores it.
 */
/*
 * Whether the worker is committing a unit. A commit may wait for a synchronous standby,
 * and PostgreSQL ends that wait only for a backend being terminated (die()), a query
 * cancel or the postmaster's death: a SIGTERM that only asked the loop to stop would leave
 * a fast shutdown waiting for a standby that may be gone for good. So a SIGTERM during a
 * commit also cancels that wait: the commit stays, durable locally, as for any backend.
 */
static volatile sig_atomic_t committing = false;

static void
worker_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	ShutdownRequestPending = true;
	if (committing)
	{
		QueryCancelPending = true;
		InterruptPending = true;
	}
	SetLatch(MyLatch);
	errno = save_errno;
}

/* Commits the unit's transaction; see "committing". */
static void
commit_unit(void)
{
	committing = true;
	/* a SIGTERM that came before: no wait for a standby either */
	if (ShutdownRequestPending)
		(void) set_config_option("synchronous_commit", "local", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	CommitTransactionCommand();
	committing = false;
	/* the cancel was for the wait only (the worker has no query to cancel) */
	if (ShutdownRequestPending)
		QueryCancelPending = false;
}

static bool
run_unit_as_owner(void (*fn) (void *), void *arg, bool needs_extension)
{
	MemoryContext old = CurrentMemoryContext;
	bool		ok = true;
	Oid			save_user;
	int			save_sec;

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		extension_owner = queue_extension_owner();
		if (OidIsValid(extension_owner))
			SetUserIdAndSecContext(extension_owner,
								   save_sec | SECURITY_LOCAL_USERID_CHANGE |
								   SECURITY_RESTRICTED_OPERATION);
		else if (needs_extension)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("extension \"s2s_tracking\" is not installed in database \"%s\"",
							args.database)));
		fn(arg);
		SPI_finish();
		PopActiveSnapshot();
		commit_unit();
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_CATCH();
	{
		committing = false;
		MemoryContextSwitchTo(old);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		/* (the abort restored the user already; this only makes it plain) */
		SetUserIdAndSecContext(save_user, save_sec);
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);

	/* So that autovacuum sees the worker's writes. */
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return ok;
}

static bool
run_unit(void (*fn) (void *), void *arg)
{
	return run_unit_as_owner(fn, arg, true);
}

/* Looking for the extension; the first time it is there, reconciling. */
typedef struct ExtensionCheck
{
	bool		present;		/* out */
	bool		reconcile;		/* in: give back every 'sending' row */
} ExtensionCheck;

static void
unit_check_extension(void *arg)
{
	ExtensionCheck *check = (ExtensionCheck *) arg;

	check->present = OidIsValid(extension_owner);

	/*
	 * Only at the worker's start: then every 'sending' row belongs to a dead worker.
	 * (Later, after an error, some are this worker's own requests in flight.)
	 */
	if (check->present && check->reconcile)
	{
		uint64		n;

		pgstat_report_activity(STATE_RUNNING, "reconciling deliveries of a previous worker");
		n = queue_reconcile(true);
		if (n > 0)
			ereport(LOG,
					(errmsg("s2s_tracking worker gave back %llu deliveries left in flight by a previous worker",
							(unsigned long long) n)));
	}
}

static void
unit_purge(void *arg)
{
	uint64	   *n = (uint64 *) arg;

	pgstat_report_activity(STATE_RUNNING, "purging finished deliveries");
	*n = queue_purge(s2s_retention_s, PURGE_BATCH);
}

static void
unit_purge_first_seen(void *arg)
{
	uint64	   *n = (uint64 *) arg;

	pgstat_report_activity(STATE_RUNNING,
						   "purging the first-seen times of orders never validated");
	*n = queue_purge_first_seen(s2s_retention_s, PURGE_BATCH);
}

/* The earliest time a lease of a request in flight or a held result needs renewing. */
static void
plan_renewal(void)
{
	int64		half = (int64) s2s_lease_s * USECS_PER_SEC / 2;

	next_renewal = 0;
	for (int i = 0, seen = 0; i < MAX_SLOTS && seen < in_flight; i++)
	{
		if (!slots[i].used)
			continue;
		seen++;
		if (next_renewal == 0 || slots[i].lease_until - half < next_renewal)
			next_renewal = slots[i].lease_until - half;
	}
	for (int i = 0; i < n_held; i++)
		if (next_renewal == 0 || held[i].lease_until - half < next_renewal)
			next_renewal = held[i].lease_until - half;
}

/* Holds result i of a pass whose write-back failed on its own. */
static void
hold_result(const Pass *pass, int i)
{
	Held	   *h;

	/* cannot happen (held results take room from the claims); its lease will expire */
	if (n_held == MAX_SLOTS)
		return;
	h = &held[n_held++];
	h->r = pass->results[i];
	h->r.error = h->r.error ? MemoryContextStrdup(worker_cxt, h->r.error) : NULL;
	h->r.response = h->r.response ? MemoryContextStrdup(worker_cxt, h->r.response) : NULL;
	h->lease_until = pass->leases[i];
	if (next_held_retry == 0)
		next_held_retry = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													  s2s_poll_interval_ms);
	if (next_renewal == 0 || h->lease_until - (int64) s2s_lease_s * USECS_PER_SEC / 2 < next_renewal)
		next_renewal = h->lease_until - (int64) s2s_lease_s * USECS_PER_SEC / 2;
}

/* Counts the results of a committed write-back in shared memory. */
static void
count_results(const Pass *pass)
{
	const QueueCounts *c = &pass->counts;

	if (c->sent + c->retried + c->failed == 0)
		return;
	pg_atomic_fetch_add_u64(&my_slot->attempts, c->sent + c->retried + c->failed);
	if (c->sent)
		pg_atomic_fetch_add_u64(&my_slot->sent, c->sent);
	if (c->retried)
		pg_atomic_fetch_add_u64(&my_slot->retried, c->retried);
	if (c->failed)
		pg_atomic_fetch_add_u64(&my_slot->failed, c->failed);
}

/*
 * After a write-back unit committed: count its results, apply the lease renewals it
 * made.
 */
static void
after_write_back(Pass *pass)
{
	count_results(pass);
	for (int i = 0; i < pass->n_renewed; i++)
		*pass->renewed[i] = pass->renewed_until;
	if (pass->n_renewed > 0 || pass->renew || pass->reconcile_expired)
		plan_renewal();
}

static void unit_write_back(void *arg);

/*
 * The write-back of results[from..to) failed as a whole: writes each back in its own
 * transaction, so that one result that cannot be written (a trigger refusing it) does not
 * hold back the others; each that still fails is held and tried again later.
 */
static void
write_back_each(Pass *pass, int from, int to)
{
	for (int i = from; i < to; i++)
	{
		Pass		one;

		memset(&one, 0, sizeof(one));
		one.results = &pass->results[i];
		one.n_results = 1;
		if (run_unit(unit_write_back, &one))
			count_results(&one);
		else
			hold_result(pass, i);
	}
}

/* Tries again to write back the held results, each in its own transaction. */
static void
retry_held(void)
{
	int			kept = 0;

	for (int i = 0; i < n_held; i++)
	{
		Pass		one;

		memset(&one, 0, sizeof(one));
		one.results = &held[i].r;
		one.n_results = 1;
		if (run_unit(unit_write_back, &one))
		{
			count_results(&one);
			if (held[i].r.error)
				pfree((char *) held[i].r.error);
			if (held[i].r.response)
				pfree((char *) held[i].r.response);
		}
		else
			held[kept++] = held[i];
	}
	n_held = kept;
	next_held_retry = n_held > 0 ?
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), s2s_poll_interval_ms) : 0;
	plan_renewal();
}

/*
 * Hands the claimed deliveries to the HTTP client (after the claim committed). A delivery
 * that cannot be rendered fails at once; one the client cannot take now is retried later.
 * Those are added to the pass's results (collect_results left room for them).
 */
static void
submit_claims(Pass *pass, TimestampTz now)
{
	HttpHeader	headers[S2S_MAX_HEADERS];
	Pass	   *late = pass;

	for (int i = 0; i < pass->n_claims; i++)
	{
		QueueClaim *c = &pass->claims[i];
		S2SRequest	rq;
		HttpRequest hr;
		const char *problem;
		char		errbuf[256];
		Slot	   *slot;
		int			ep = endpoint_index(c->delivery.endpoint);

		memset(&rq, 0, sizeof(rq));
		problem = s2s_render_request(&c->delivery.endpoint_conf, &c->delivery.data, false, &rq);
		if (problem == NULL)
		{
			memset(&hr, 0, sizeof(hr));
			for (int h = 0; h < rq.nheaders; h++)
			{
				headers[h].name = rq.header_names[h];
				headers[h].value = rq.header_values[h];
			}
			slot = free_slots;
			Assert(slot != NULL);
			hr.method = rq.method;
			hr.url = rq.url;
			hr.headers = headers;
			hr.nheaders = rq.nheaders;
			hr.body = rq.body;
			hr.body_len = rq.body ? (size_t) rq.body_len : 0;
			hr.total_timeout_ms = c->delivery.request_timeout_ms;
			hr.host_cap = c->endpoint_cap;
			hr.group = c->delivery.endpoint;
			hr.tag = slot;
			if (http_submit(http, &hr, errbuf, sizeof(errbuf)))
			{
				free_slots = slot->next_free;
				slot->used = true;
				slot->id = c->delivery.id;
				slot->token = pass->claim_token;
				slot->attempt = c->attempt;
				slot->endpoint = ep;
				slot->first_attempt_at = c->delivery.first_attempt_at;
				slot->retry_window_s = c->retry_window_s;
				slot->lease_until = pass->claim_lease_until;
				if (next_renewal == 0 ||
					slot->lease_until - (int64) s2s_lease_s * USECS_PER_SEC / 2 < next_renewal)
					next_renewal = slot->lease_until - (int64) s2s_lease_s * USECS_PER_SEC / 2;
				slot->secret = c->delivery.endpoint_conf.secret != NULL ?
					MemoryContextStrdup(worker_cxt, c->delivery.endpoint_conf.secret) : NULL;
				slot->refused_pattern = c->delivery.refused_pattern != NULL ?
					MemoryContextStrdup(worker_cxt, c->delivery.refused_pattern) : NULL;
				endpoints[ep].in_flight++;
				in_flight++;
				continue;
			}
			/*
			 * Refused by the client before anything was sent (out of memory: the
			 * renderer's requests are otherwise always acceptable). Try again later.
			 */
			{
				QueueResult *r = &late->results[late->n_results++];

				memset(r, 0, sizeof(*r));
				r->id = c->delivery.id;
				r->token = pass->claim_token;
				r->attempt = c->attempt;
				late->leases[late->n_results - 1] = pass->claim_lease_until;
				r->outcome = QUEUE_RETRY;
				r->error = redacted(psprintf("request not sent: %s", errbuf),
									c->delivery.endpoint_conf.secret);
				r->started_at = now;
				r->next_attempt_at = TimestampTzPlusMilliseconds(now, s2s_retry_base_ms);
			}
		}
		else
		{
			/* The delivery's data cannot make a request: final. */
			QueueResult *r = &late->results[late->n_results++];

			memset(r, 0, sizeof(*r));
			late->leases[late->n_results - 1] = pass->claim_lease_until;
			r->id = c->delivery.id;
			r->token = pass->claim_token;
			r->attempt = c->attempt;
			r->outcome = QUEUE_FAILED;
			r->error = psprintf("cannot render the request: %s", problem);
			r->started_at = now;
		}
	}
	if (pass->n_claims > 0)
		http_process(http);
}

static void
watch_xid(TransactionId xid)
{
	for (int i = 0; i < n_watched; i++)
		if (TransactionIdEquals(watched[i], xid))
			return;
	if (n_watched == max_watched)
	{
		max_watched *= 2;
		watched = repalloc(watched, sizeof(TransactionId) * max_watched);
	}
	watched[n_watched++] = xid;
}

/*
 * Every prepared transaction of the database, watched: at the worker's start (prepared
 * transactions outlive a restart, the inbox in shared memory does not) and when the
 * inbox overflowed. Those that enqueued nothing only cost a useless claim when they end.
 */
static void
unit_scan_prepared(void *arg)
{
	int			rc;

	pgstat_report_activity(STATE_RUNNING, "looking for prepared transactions");
	rc = SPI_execute("SELECT transaction FROM pg_catalog.pg_prepared_xacts"
					 " WHERE database OPERATOR(pg_catalog.=) pg_catalog.current_database()",
					 true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "s2s_tracking could not read pg_prepared_xacts: %s",
			 SPI_result_code_string(rc));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			watch_xid(DatumGetTransactionId(d));
	}
}

/*
 * Takes the prepared transactions handed over by backends, and says whether one of those
 * watched has ended (COMMIT or ROLLBACK PREPARED): then its deliveries may be due. A
 * prepared transaction stays "in progress" (its dummy PGPROC in the proc array) until it
 * is finished, and its commit is in the clog before it leaves the proc array, so a claim
 * made after this says false sees what it enqueued.
 */
static bool
prepared_ended(bool *scan)
{
	TransactionId in[S2S_PREPARED_INBOX];
	bool		overflow;
	int			n = s2s_take_prepared(my_slot, in, &overflow);
	bool		ended = false;
	int			kept = 0;

	for (int i = 0; i < n; i++)
		watch_xid(in[i]);
	if (overflow)
		*scan = true;
	for (int i = 0; i < n_watched; i++)
	{
		if (TransactionIdIsInProgress(watched[i]))
			watched[kept++] = watched[i];
		else
			ended = true;
	}
	n_watched = kept;
	return ended;
}

/* What pg_stat_activity shows while the worker waits. */
static void
report_waiting(bool ready, int n)
{
	char		activity[64];

	if (!ready)
		snprintf(activity, sizeof(activity), "waiting for extension s2s_tracking");
	else if (n > 0)
		snprintf(activity, sizeof(activity), "waiting for %d request%s in flight",
				 n, n == 1 ? "" : "s");
	else
		snprintf(activity, sizeof(activity), "waiting for deliveries");
	pgstat_report_activity(STATE_IDLE, activity);
}

static void
publish_state(TimestampTz now)
{
	SpinLockAcquire(&s2s_shared->mutex);
	my_slot->last_loop_at = now;
	my_slot->in_flight = in_flight;
	SpinLockRelease(&s2s_shared->mutex);
}

static void
build_wait_set(void)
{
	if (wait_set != NULL)
		FreeWaitEventSet(wait_set);
	wait_set = s2s_create_wait_event_set(worker_cxt, 3);
	AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(wait_set, WL_SOCKET_READABLE, http_wait_fd(http), NULL, NULL);
}

/*
 * Leaving on SIGTERM: no more claims; transfers in flight get a short grace to complete
 * and be written back; the rest are given back (not counted) so that the next worker
 * sends them at once instead of after their lease.
 */
static void
shut_down(void)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   SHUTDOWN_GRACE_MS);

	pgstat_report_activity(STATE_RUNNING, "shutting down");
	while (in_flight > 0)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		timeout;
		WaitEvent	ev;
		Pass		pass;

		MemoryContextSwitchTo(batch_cxt);
		http_process(http);
		memset(&pass, 0, sizeof(pass));
		collect_results(&pass, MAX_SLOTS, 0, now);
		if (pass.n_results > 0)
		{
			if (run_unit(unit_write_back, &pass))
				after_write_back(&pass);
			else
				write_back_each(&pass, 0, pass.n_results);
		}
		MemoryContextReset(batch_cxt);
		if (in_flight == 0 || now >= deadline)
			break;
		timeout = Min(TimestampDifferenceMilliseconds(now, deadline), 100);
		if (http_timeout_ms(http) >= 0)
			timeout = Min(timeout, http_timeout_ms(http));
		(void) WaitEventSetWait(wait_set, timeout, &ev, 1, PG_WAIT_EXTENSION);
	}

	/* held results get a last chance; what still fails is given back with the rest */
	if (n_held > 0)
		retry_held();
	if (in_flight > 0 || n_held > 0)
	{
		Pass		pass;
		int			n = 0;

		MemoryContextSwitchTo(batch_cxt);
		memset(&pass, 0, sizeof(pass));
		pass.results = palloc(sizeof(QueueResult) * (in_flight + n_held));
		for (int i = 0; i < n_held; i++)
		{
			pass.results[n] = held[i].r;
			pass.results[n].outcome = QUEUE_GIVE_BACK;
			n++;
		}
		for (int i = 0; i < MAX_SLOTS; i++)
		{
			QueueResult *r;

			if (!slots[i].used)
				continue;
			r = &pass.results[n++];
			memset(r, 0, sizeof(*r));
			r->id = slots[i].id;
			r->token = slots[i].token;
			r->attempt = slots[i].attempt;
			r->outcome = QUEUE_GIVE_BACK;
			r->started_at = GetCurrentTimestamp();
		}
		pass.n_results = n;
		http_client_destroy(http);
		http = NULL;
		if (run_unit(unit_write_back, &pass))
			ereport(LOG,
					(errmsg("s2s_tracking worker gave back %d deliveries in flight at shutdown", n)));
	}
}

void
s2s_worker_main(Datum main_arg)
{
	HttpClientOptions options;
	char		errbuf[256];
	bool		ready = false;
	bool		said_missing = false;
	bool		claim_wanted = true;
	bool		reconcile_due = false;
	bool		reconciled = false;
	bool		scan_prepared = true;
	TimestampTz next_poll = 0;
	TimestampTz next_purge = 0;
	TimestampTz next_due = 0;
	TimestampTz paused_until = 0;
	TimestampTz next_recheck = 0;

	/*
	 * SIGTERM asks for a clean exit (rather than die()) so that the transfers in flight can
	 * be written back or given back before leaving.
	 */
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, worker_sigterm);
	BackgroundWorkerUnblockSignals();

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	args.database[NAMEDATALEN - 1] = '\0';
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(main_arg), InvalidOid, 0);

	/*
	 * One worker per database, ever: "at start, every 'sending' row belongs to a dead
	 * worker" (the reconcile below) holds only so. Another one serves this database
	 * (a launcher restarted while its workers ran): leave quietly.
	 */
	my_slot = s2s_attach_slot();
	if (my_slot == NULL)
	{
		ereport(DEBUG1,
				(errmsg("s2s_tracking worker for database \"%s\" leaves: another worker serves it, or no slot is free",
						args.database)));
		proc_exit(0);
	}

	/*
	 * Before any statement: a search_path nothing in the database can change (ALTER
	 * DATABASE/ROLE ... SET apply at a lower priority than an override). Every name in
	 * the worker's SQL is schema-qualified as well (queue.c), and pg_catalog alone is
	 * searched for its operators, so that no function or operator that a database user
	 * creates (the database owner owns schema public) is ever run by the worker.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * The worker's statements run thousands of times a second with the same shape: plan
	 * them once (a custom plan per execution costs more than the claim itself).
	 */
	SetConfigOption("plan_cache_mode", "force_generic_plan", PGC_USERSET, PGC_S_OVERRIDE);

	worker_cxt = AllocSetContextCreate(TopMemoryContext, "s2s_tracking worker",
									   ALLOCSET_DEFAULT_SIZES);
	batch_cxt = AllocSetContextCreate(worker_cxt, "s2s_tracking batch",
									  ALLOCSET_DEFAULT_SIZES);

	slots = MemoryContextAllocZero(worker_cxt, sizeof(Slot) * MAX_SLOTS);
	for (int i = MAX_SLOTS - 1; i >= 0; i--)
	{
		slots[i].next_free = free_slots;
		free_slots = &slots[i];
	}
	max_endpoints = 8;
	endpoints = MemoryContextAlloc(worker_cxt, sizeof(EndpointLoad) * max_endpoints);
	held = MemoryContextAlloc(worker_cxt, sizeof(Held) * MAX_SLOTS);
	max_watched = S2S_PREPARED_INBOX;
	watched = MemoryContextAlloc(worker_cxt, sizeof(TransactionId) * max_watched);

	/* Claim tokens: random per worker, then a sequence, so that no two claims share one. */
	if (!pg_strong_random(&token_base, sizeof(token_base)))
		token_base = ((int64) MyProcPid << 32) ^ GetCurrentTimestamp();
	token_base &= ~(int64) 0xFFFFFF;	/* the low bits count claims */
	if (token_base < 0)
		token_base = -token_base;

	fill_options(&options);
	http = http_client_create(&options, errbuf, sizeof(errbuf));
	if (http == NULL)
		ereport(ERROR,
				(errmsg("s2s_tracking worker cannot start its HTTP client: %s", errbuf)));

	before_shmem_exit(s2s_worker_detach, (Datum) 0);

	build_wait_set();

	for (;;)
	{
		TimestampTz now;
		long		timeout;
		WaitEvent	events[3];
		int			nevents;
		Pass		pass;
		bool		more_results = false;

		MemoryContextSwitchTo(batch_cxt);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			fill_options(&options);
			http_client_set_options(http, &options);
			claim_wanted = true;
			/* the lease may have changed: look again at the leases in flight */
			plan_renewal();
		}
		if (ShutdownRequestPending)
			break;

		now = GetCurrentTimestamp();
		publish_state(now);

		if (ready && now >= next_recheck)
		{
			ExtensionCheck check;

			check.present = false;
			check.reconcile = false;
			if (run_unit_as_owner(unit_check_extension, &check, false) && !check.present)
				ready = false;
			next_recheck = TimestampTzPlusMilliseconds(now, EXTENSION_RECHECK_MS);
		}

		if (!ready && now >= paused_until)
		{
			ExtensionCheck check;
			bool		checked;

			pgstat_report_activity(STATE_RUNNING, "looking for extension s2s_tracking");
			check.present = false;
			check.reconcile = !reconciled;
			checked = run_unit_as_owner(unit_check_extension, &check, false);
			ready = checked && check.present;
			if (ready)
				reconciled = true;
			if (checked)
				s2s_slot_set_delivering(my_slot, ready);
			/*
			 * Serving every database that has the extension ("*"): one without it (or
			 * that just dropped it) is not ours; the launcher looks again later.
			 */
			if (checked && !ready && args.probe)
				break;
			if (checked && !ready && !said_missing)
			{
				ereport(LOG,
						(errmsg("s2s_tracking worker waiting: extension s2s_tracking is not installed in database \"%s\"",
								args.database),
						 errhint("Run CREATE EXTENSION s2s_tracking in that database, or set s2s_tracking.database.")));
				said_missing = true;
			}
			if (!ready)
				paused_until = TimestampTzPlusMilliseconds(now, EXTENSION_CHECK_MS);
			else
			{
				if (said_missing)
					ereport(LOG, (errmsg("s2s_tracking worker found the extension; delivering")));
				said_missing = false;
				claim_wanted = true;
				next_poll = TimestampTzPlusMilliseconds(now, s2s_poll_interval_ms);
			}
		}

		if (ready && now >= paused_until)
		{
			int			room;
			bool		do_claim;

			http_process(http);

			if (n_held > 0 && now >= next_held_retry)
				retry_held();

			if (scan_prepared && run_unit(unit_scan_prepared, NULL))
				scan_prepared = false;
			if (prepared_ended(&scan_prepared))
				claim_wanted = true;

			if (now >= next_poll)
			{
				claim_wanted = true;
				next_poll = TimestampTzPlusMilliseconds(now, s2s_poll_interval_ms);
				reconcile_due = true;
			}
			if (next_due != 0 && now >= next_due)
			{
				claim_wanted = true;
				next_due = 0;
			}

			memset(&pass, 0, sizeof(pass));
			room = Min(s2s_max_concurrency, s2s_batch_size);
			collect_results(&pass, s2s_batch_size, room, now);
			more_results = (pass.n_results == s2s_batch_size);
			if (pass.n_results > 0)
				claim_wanted = true;	/* room was freed */

			/* held results keep their room: in flight and held stay within the cap */
			pass.claim_limit = Min(s2s_max_concurrency - in_flight - n_held, room);
			do_claim = claim_wanted && pass.claim_limit > 0;
			if (do_claim)
				pass.claim_token = token_base + (++token_seq);
			pass.reconcile_expired = reconcile_due;
			pass.renew = (in_flight + n_held > 0 && next_renewal != 0 && now >= next_renewal);

			if (pass.n_results > 0 || pass.reconcile_expired || pass.renew)
			{
				if (run_unit(do_claim ? unit_write_back_and_claim : unit_write_back, &pass))
				{
					after_write_back(&pass);
					reconcile_due = false;
					if (pass.retry_due != 0 && (next_due == 0 || pass.retry_due < next_due))
						next_due = pass.retry_due;
				}
				else
				{
					/*
					 * Keep the results even if the claim was what failed: write them
					 * back alone, else one by one, holding any that still fails (a
					 * result dropped here would make its delivery be sent again).
					 */
					if (do_claim && pass.n_results > 0)
					{
						memset(&pass.counts, 0, sizeof(pass.counts));
						pass.n_claims = 0;
						if (run_unit(unit_write_back, &pass))
							after_write_back(&pass);
						else
							write_back_each(&pass, 0, pass.n_results);
					}
					else if (pass.n_results > 0)
						write_back_each(&pass, 0, pass.n_results);
					pass.n_claims = 0;
					do_claim = false;
					/* Maybe the extension went away; look again after a pause. */
					ready = false;
					paused_until = TimestampTzPlusMilliseconds(now, ERROR_PAUSE_MS);
				}
			}
			else if (do_claim && !run_unit(unit_claim, &pass))
			{
				pass.n_claims = 0;
				do_claim = false;
				ready = false;
				paused_until = TimestampTzPlusMilliseconds(now, ERROR_PAUSE_MS);
			}

			if (do_claim)
			{
				int			written = pass.n_results;

				/* More may be due when the claim got all it asked for. */
				claim_wanted = (pass.n_claims == pass.claim_limit);
				if (pass.next_due > now && (next_due == 0 || pass.next_due < next_due))
					next_due = pass.next_due;
				/* (one due now but capped: completions claim it) */

				/*
				 * Leaving: the claim is not sent. Its commit may not have reached a
				 * synchronous standby (a SIGTERM cancels that wait), and a standby
				 * promoted without it would send the same deliveries again; they stay
				 * 'sending' until the next worker gives them back at its start.
				 */
				if (ShutdownRequestPending)
					pass.n_claims = 0;
				submit_claims(&pass, now);

				/* Claims that could not be sent: write them back now. */
				if (pass.n_results > written)
				{
					Pass		late;

					memset(&late, 0, sizeof(late));
					late.results = pass.results + written;
					late.leases = pass.leases + written;
					late.n_results = pass.n_results - written;
					if (run_unit(unit_write_back, &late))
						after_write_back(&late);
					else
						write_back_each(&late, 0, late.n_results);
				}
			}

			if (now >= next_purge)
			{
				uint64		purged = 0;
				int			rounds = 0;

				do
				{
					uint64		first_seen = 0;

					if (!run_unit(unit_purge, &purged))
						break;
					/* a unit of its own: its failure never holds the deliveries' back */
					if (run_unit(unit_purge_first_seen, &first_seen))
						purged = Max(purged, first_seen);
				} while (purged == PURGE_BATCH && ++rounds < PURGE_BATCHES_PER_ROUND);
				next_purge = TimestampTzPlusMilliseconds(now, purged == PURGE_BATCH ?
														 1000 : PURGE_INTERVAL_MS);
			}
		}
		MemoryContextReset(batch_cxt);

		/*
		 * Sleep until the latch, a transfer, the HTTP timer, a due time, the purge or
		 * the poll.
		 */
		now = GetCurrentTimestamp();
		if (more_results || (ready && claim_wanted && in_flight < s2s_max_concurrency &&
							 now >= paused_until))
			timeout = 0;
		else
		{
			TimestampTz until = ready ? next_poll : paused_until;
			long		t;

			if (now < paused_until)
				until = paused_until;
			else
			{
				if (next_due != 0 && next_due < until)
					until = next_due;
				if (next_purge < until)
					until = next_purge;
				if (ready && next_recheck < until)
					until = next_recheck;
			}
			timeout = until > now ? TimestampDifferenceMilliseconds(now, until) : 0;
			/* TimestampDifferenceMilliseconds rounds down: do not wake just before. */
			if (until > now)
				timeout++;
			t = http_timeout_ms(http);
			if (in_flight > 0 && t >= 0 && t < timeout)
				timeout = t;
			/* a lease to renew, held results to retry (after an error pause) */
			if (ready && n_held > 0 && next_held_retry != 0 && now >= paused_until)
			{
				t = next_held_retry > now ? TimestampDifferenceMilliseconds(now, next_held_retry) + 1 : 0;
				if (t < timeout)
					timeout = t;
			}
			if (ready && in_flight + n_held > 0 && next_renewal != 0 && now >= paused_until)
			{
				t = next_renewal > now ? TimestampDifferenceMilliseconds(now, next_renewal) + 1 : 0;
				if (t < timeout)
					timeout = t;
			}
			if (ready && n_watched > 0 && timeout > PREPARED_POLL_MS)
				timeout = PREPARED_POLL_MS;
		}

		publish_state(now);
		if (timeout > 0)
			report_waiting(ready, in_flight);
		nevents = WaitEventSetWait(wait_set, timeout, events, lengthof(events),
								   PG_WAIT_EXTENSION);
		for (int i = 0; i < nevents; i++)
		{
			if (events[i].events & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				claim_wanted = true;
			}
		}
	}

	shut_down();

	/*
	 * Exit code 1, as die() would (the launcher starts a new worker unless the server
	 * stops); 0 when the extension is not (or no longer) in a database that only "*"
	 * named: nothing to report.
	 */
	proc_exit(ShutdownRequestPending || !args.probe ? 1 : 0);
}
