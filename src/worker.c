/*
 * worker.c
 *		The delivery background worker: its start and its main loop, which only calls
 *		named phases (look for the extension, run a pass, purge when due, wait).
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
 * The phases live in files of their own: worker_unit.c (one transaction per unit of
 * work), worker_result.c (judging a completed transfer), worker_write_back.c,
 * worker_claim.c, worker_lease.c (renewing the leases of requests in flight),
 * worker_prepared.c (prepared transactions that enqueued) and worker_shutdown.c; the
 * state they share is in worker_state.h.
 *
 * Crash safety comes from the queue (queue.c): claims carry a token and a lease, and on
 * start every 'sending' row (claimed by a dead worker) is given back, its attempt not
 * counted. On SIGTERM the worker stops claiming, gives the transfers in flight a moment to
 * finish, and gives back the rest.
 *
 * Safety: nothing a database user creates runs in the worker. Its search_path is pinned
 * before any statement, its SQL names everything with its schema (queue.c), and every
 * unit of work runs as the extension's owner rather than as the bootstrap superuser the
 * worker connects as (worker_unit.c). Where it may connect is the HTTP client's
 * business (http.c, netcheck.c: s2s_tracking.allowed_networks).
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "compat.h"
#include "settings.h"
#include "worker.h"
#include "worker_claim.h"
#include "worker_lease.h"
#include "worker_prepared.h"
#include "worker_result.h"
#include "worker_shutdown.h"
#include "worker_state.h"
#include "worker_unit.h"
#include "worker_write_back.h"

#define USER_AGENT "s2s_tracking/" S2S_VERSION

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

/* While prepared transactions that enqueued are pending, how often to look for their end. */
#define PREPARED_POLL_MS 100

S2SWorker	s2s_worker;

static WaitEventSet *wait_set;

/* What the main loop carries from one iteration to the next. */
typedef struct WorkerLoop
{
	bool		ready;			/* the extension is there: deliver */
	bool		said_missing;	/* "waiting: extension ... not installed" was logged */
	bool		reconciled;		/* the rows of a previous worker were given back */
	bool		claim_wanted;	/* something may be due: claim when there is room */
	bool		reconcile_due;	/* give back expired leases in the next write-back */
	bool		scan_prepared;	/* read pg_prepared_xacts (at start, inbox overflow) */
	bool		more_results;	/* this iteration left completed transfers behind */
	bool		http_options_pending;	/* the HTTP thread still has the old settings */
	TimestampTz next_poll;		/* s2s_tracking.poll_interval: claim and reconcile */
	TimestampTz next_purge;
	TimestampTz next_due;		/* earliest known waiting delivery; 0: none known */
	TimestampTz paused_until;	/* after an error, or while the extension is missing */
	TimestampTz next_recheck;	/* make sure the extension is still there */
} WorkerLoop;

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
	s2s_worker_http_stop();
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

	check->present = OidIsValid(s2s_worker.extension_owner);

	/*
	 * Only at the worker's start: then every 'sending' row belongs to a dead worker.
	 * (Later, after an error, some are this worker's own requests in flight.)
	 */
	if (check->present && check->reconcile)
	{
		uint64		n;

		pgstat_report_activity(STATE_RUNNING, "reconciling deliveries of a previous worker");
		n = s2s_queue_reconcile(true);
		if (n > 0)
			ereport(LOG,
					(errmsg("s2s_tracking worker gave back %llu deliveries left in flight by a previous worker",
							(unsigned long long) n)));
	}
}

/* Purges one batch of finished deliveries (arg: uint64, how many). */
static void
unit_purge(void *arg)
{
	uint64	   *n = (uint64 *) arg;

	pgstat_report_activity(STATE_RUNNING, "purging finished deliveries");
	*n = s2s_queue_purge(s2s_retention_s, PURGE_BATCH);
}

static void
unit_purge_first_seen(void *arg)
{
	uint64	   *n = (uint64 *) arg;

	pgstat_report_activity(STATE_RUNNING,
						   "purging the first-seen times of orders never validated");
	*n = s2s_queue_purge_first_seen(s2s_retention_s, PURGE_BATCH);
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
	s2s_worker.db_slot->last_loop_at = now;
	s2s_worker.db_slot->in_flight = s2s_worker.in_flight;
	SpinLockRelease(&s2s_shared->mutex);
}

static void
build_wait_set(void)
{
	if (wait_set != NULL)
		FreeWaitEventSet(wait_set);
	wait_set = s2s_create_wait_event_set(s2s_worker.cxt, 3);
	AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(wait_set, WL_SOCKET_READABLE, s2s_http_driver_wait_fd(s2s_worker.http), NULL,
					  NULL);
}

/*
 * Hands the settings to the HTTP client. With a thread, the copy it needs may fail (out
 * of memory): then the old options stay, and this is tried again at every turn of the
 * loop until it succeeds, since they may narrow where requests may go.
 */
static void
apply_http_options(WorkerLoop *loop)
{
	HttpClientOptions options;

	fill_options(&options);
	if (s2s_http_driver_set_options(s2s_worker.http, &options))
	{
		if (loop->http_options_pending)
			ereport(LOG,
					(errmsg("s2s_tracking worker passed the new settings to its HTTP thread")));
		loop->http_options_pending = false;
	}
	else if (!loop->http_options_pending)
	{
		loop->http_options_pending = true;
		ereport(WARNING,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("s2s_tracking worker could not pass the new settings to its HTTP thread: out of memory"),
				 errdetail("It will try again; until then, requests start with the settings of before the reload.")));
	}
}

/* On SIGHUP: the settings, the HTTP client's options, and the leases' renewal times. */
static void
reload_configuration(WorkerLoop *loop)
{
	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);
	apply_http_options(loop);
	loop->claim_wanted = true;
	/* the lease may have changed: look again at the leases in flight */
	s2s_plan_renewal();
}

/*
 * Makes sure, every few seconds, that the extension is still there, and while it is not,
 * looks for it (reconciling the first time it is found). Returns false when the worker
 * should leave: serving every database that has the extension ("*"), one without it (or
 * that just dropped it) is not ours; the launcher looks again later.
 */
static bool
look_for_extension(WorkerLoop *loop, TimestampTz now)
{
	ExtensionCheck check;
	bool		checked;

	if (loop->ready && now >= loop->next_recheck)
	{
		check.present = false;
		check.reconcile = false;
		if (s2s_run_unit_as_owner(unit_check_extension, &check, false) && !check.present)
			loop->ready = false;
		loop->next_recheck = TimestampTzPlusMilliseconds(now, EXTENSION_RECHECK_MS);
	}
	if (loop->ready || now < loop->paused_until)
		return true;

	pgstat_report_activity(STATE_RUNNING, "looking for extension s2s_tracking");
	check.present = false;
	check.reconcile = !loop->reconciled;
	checked = s2s_run_unit_as_owner(unit_check_extension, &check, false);
	loop->ready = checked && check.present;
	if (loop->ready)
		loop->reconciled = true;
	if (checked)
		s2s_slot_set_delivering(s2s_worker.db_slot, loop->ready);
	if (checked && !loop->ready && s2s_worker.args.probe)
		return false;
	/* (a worker asked to stop while it waited for a DROP did not look: say nothing) */
	if (checked && !loop->ready && !loop->said_missing && !ShutdownRequestPending)
	{
		ereport(LOG,
				(errmsg("s2s_tracking worker waiting: extension s2s_tracking is not installed in database \"%s\"",
						s2s_worker.args.database),
				 errhint("Run CREATE EXTENSION s2s_tracking in that database, or set s2s_tracking.database.")));
		loop->said_missing = true;
	}
	if (!loop->ready)
		loop->paused_until = TimestampTzPlusMilliseconds(now, EXTENSION_CHECK_MS);
	else
	{
		if (loop->said_missing)
			ereport(LOG, (errmsg("s2s_tracking worker found the extension; delivering")));
		loop->said_missing = false;
		loop->claim_wanted = true;
		loop->next_poll = TimestampTzPlusMilliseconds(now, s2s_poll_interval_ms);
	}
	return true;
}

/* A unit failed: maybe the extension went away; look again after a pause. */
static void
pause_after_error(WorkerLoop *loop, TimestampTz now)
{
	loop->ready = false;
	loop->paused_until = TimestampTzPlusMilliseconds(now, ERROR_PAUSE_MS);
}

/*
 * What makes a claim worth trying: a prepared transaction that enqueued has ended, the
 * poll interval is over (then expired leases are reconciled too), a known delivery is
 * due.
 */
static void
note_what_is_due(WorkerLoop *loop, TimestampTz now)
{
	if (loop->scan_prepared && s2s_run_unit(s2s_unit_scan_prepared, NULL))
		loop->scan_prepared = false;
	if (s2s_prepared_ended(&loop->scan_prepared))
		loop->claim_wanted = true;

	if (now >= loop->next_poll)
	{
		loop->claim_wanted = true;
		loop->next_poll = TimestampTzPlusMilliseconds(now, s2s_poll_interval_ms);
		loop->reconcile_due = true;
	}
	if (loop->next_due != 0 && now >= loop->next_due)
	{
		loop->claim_wanted = true;
		loop->next_due = 0;
	}
}

/*
 * The pass's transaction: writes back what completed (renewing leases, reconciling) and
 * claims, or only claims. Returns whether it committed a claim.
 */
static bool
commit_pass(WorkerLoop *loop, WorkerPass *pass, bool do_claim, TimestampTz now)
{
	bool		ok;

	if (pass->n_results > 0 || pass->reconcile_expired || pass->renew)
	{
		ok = s2s_run_unit(do_claim ? s2s_unit_write_back_and_claim : s2s_unit_write_back,
						  pass);
		if (ok)
		{
			s2s_after_write_back(pass);
			loop->reconcile_due = false;
			if (pass->retry_due != 0 &&
				(loop->next_due == 0 || pass->retry_due < loop->next_due))
				loop->next_due = pass->retry_due;
		}
		else
			s2s_write_back_after_failure(pass, do_claim);
	}
	else if (do_claim)
		ok = s2s_run_unit(s2s_unit_claim, pass);
	else
		return false;

	if (!ok)
	{
		pass->n_claims = 0;
		pause_after_error(loop, now);
		return false;
	}
	return do_claim;
}

/*
 * Sends what the pass claimed, and writes back at once the claims that could not be
 * sent.
 */
static void
send_claims(WorkerLoop *loop, WorkerPass *pass, TimestampTz now)
{
	int			written = pass->n_results;

	/* More may be due when the claim got all it asked for. */
	loop->claim_wanted = (pass->n_claims == pass->claim_limit);
	if (pass->next_due > now && (loop->next_due == 0 || pass->next_due < loop->next_due))
		loop->next_due = pass->next_due;
	/* (one due now but capped: completions claim it) */

	/*
	 * Leaving: the claim is not sent. Its commit may not have reached a synchronous
	 * standby (a SIGTERM cancels that wait), and a standby promoted without it would send
	 * the same deliveries again; they stay 'sending' until the next worker gives them
	 * back at its start.
	 */
	if (ShutdownRequestPending)
		pass->n_claims = 0;
	s2s_submit_claims(pass, now);

	if (pass->n_results > written)
	{
		WorkerPass	late;

		memset(&late, 0, sizeof(late));
		late.results = pass->results + written;
		late.leases = pass->leases + written;
		late.n_results = pass->n_results - written;
		s2s_write_back_results(&late);
	}
}

/*
 * One pass: collect the transfers that completed, then in one transaction write their
 * results back and claim as many due deliveries as there is room for, and only then
 * send what was claimed.
 */
static void
run_pass(WorkerLoop *loop, TimestampTz now)
{
	WorkerPass	pass;
	int			room = Min(s2s_max_concurrency, s2s_batch_size);
	bool		do_claim;

	s2s_http_driver_process(s2s_worker.http);
	if (s2s_worker.n_held > 0 && now >= s2s_worker.next_held_retry)
		s2s_retry_held();
	note_what_is_due(loop, now);

	memset(&pass, 0, sizeof(pass));
	s2s_collect_results(&pass, s2s_batch_size, room, now);
	loop->more_results = (pass.n_results == s2s_batch_size);
	if (pass.n_results > 0)
		loop->claim_wanted = true;	/* room was freed */

	/* held results keep their room: in flight and held stay within the cap */
	pass.claim_limit = Min(s2s_max_concurrency - s2s_worker.in_flight - s2s_worker.n_held,
						   room);
	/* settings that may narrow where requests go, not yet with the thread: no claim */
	do_claim = loop->claim_wanted && pass.claim_limit > 0 && !loop->http_options_pending;
	if (do_claim)
		pass.claim_token = s2s_next_claim_token();
	pass.reconcile_expired = loop->reconcile_due;
	pass.renew = (s2s_worker.in_flight + s2s_worker.n_held > 0 &&
				  s2s_worker.next_renewal != 0 && now >= s2s_worker.next_renewal);

	if (commit_pass(loop, &pass, do_claim, now))
		send_claims(loop, &pass, now);
}

/*
 * Purges finished deliveries, and the first-seen times of orders never validated, when
 * due, a few batches at a time.
 */
static void
purge_when_due(WorkerLoop *loop, TimestampTz now)
{
	uint64		purged = 0;
	int			rounds = 0;

	if (now < loop->next_purge)
		return;
	do
	{
		uint64		first_seen = 0;

		if (!s2s_run_unit(unit_purge, &purged))
			break;
		/* a unit of its own: its failure never holds the deliveries' back */
		if (s2s_run_unit(unit_purge_first_seen, &first_seen))
			purged = Max(purged, first_seen);
	} while (purged == PURGE_BATCH && ++rounds < PURGE_BATCHES_PER_ROUND);
	loop->next_purge = TimestampTzPlusMilliseconds(now, purged == PURGE_BATCH ?
												   1000 : PURGE_INTERVAL_MS);
}

/* Milliseconds until a deadline (rounded up: never wake just before it); 0 when past. */
static long
ms_until(TimestampTz now, TimestampTz until)
{
	return until > now ? TimestampDifferenceMilliseconds(now, until) + 1 : 0;
}

/*
 * How long to sleep: until the latch, a transfer, the HTTP timer, a due time, the purge,
 * the poll, a lease to renew or held results to retry (after an error pause); not at all
 * when there is more to do now.
 */
static long
next_wait(WorkerLoop *loop, TimestampTz now)
{
	TimestampTz until = loop->ready ? loop->next_poll : loop->paused_until;
	bool		paused = now < loop->paused_until;
	long		timeout;
	long		t;

	if (loop->more_results ||
		(loop->ready && loop->claim_wanted && s2s_worker.in_flight < s2s_max_concurrency &&
		 !paused))
		return 0;

	if (paused)
		until = loop->paused_until;
	else
	{
		if (loop->next_due != 0 && loop->next_due < until)
			until = loop->next_due;
		if (loop->next_purge < until)
			until = loop->next_purge;
		if (loop->ready && loop->next_recheck < until)
			until = loop->next_recheck;
	}
	timeout = ms_until(now, until);
	/* (paused, results wait for the pass after the pause: see s2s_worker_main) */
	t = s2s_http_driver_timeout_ms(s2s_worker.http);
	if (s2s_worker.in_flight > 0 && t >= 0 && t < timeout && !paused)
		timeout = t;
	if (loop->ready && s2s_worker.n_held > 0 && s2s_worker.next_held_retry != 0 && !paused)
		timeout = Min(timeout, ms_until(now, s2s_worker.next_held_retry));
	if (loop->ready && s2s_worker.in_flight + s2s_worker.n_held > 0 &&
		s2s_worker.next_renewal != 0 && !paused)
		timeout = Min(timeout, ms_until(now, s2s_worker.next_renewal));
	if (loop->ready && s2s_prepared_watching() && timeout > PREPARED_POLL_MS)
		timeout = PREPARED_POLL_MS;
	return timeout;
}

/*
 * The worker's start: signals, the connection, a pinned search_path, memory, the
 * in-flight slots and the HTTP client. Leaves when another worker serves the database.
 */
static void
worker_start(Datum main_arg)
{
	HttpClientOptions options;
	char		errbuf[256];

	/*
	 * SIGTERM asks for a clean exit (rather than die()) so that the transfers in flight can
	 * be written back or given back before leaving.
	 */
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, s2s_worker_sigterm);
	pqsignal(SIGINT, s2s_worker_sigint);
	BackgroundWorkerUnblockSignals();

	memcpy(&s2s_worker.args, MyBgworkerEntry->bgw_extra, sizeof(s2s_worker.args));
	s2s_worker.args.database[NAMEDATALEN - 1] = '\0';
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(main_arg), InvalidOid, 0);

	/*
	 * One worker per database, ever: "at start, every 'sending' row belongs to a dead
	 * worker" (the reconcile at start) holds only so. Another one serves this database
	 * (a launcher restarted while its workers ran): leave quietly.
	 */
	s2s_worker.db_slot = s2s_attach_slot();
	if (s2s_worker.db_slot == NULL)
	{
		ereport(DEBUG1,
				(errmsg("s2s_tracking worker for database \"%s\" leaves: another worker serves it, or no slot is free",
						s2s_worker.args.database)));
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
	 * The worker's statements are written for read committed: a claim skips the rows
	 * others lock, a write-back counts on the latest version of its row. A database's
	 * default isolation (which its owner may set) must not change that: serializable
	 * could fail them, and serializable with read only and deferrable would make every
	 * transaction wait for a safe snapshot, which one serializable transaction left open
	 * in the database withholds for as long as it likes, from a worker deaf to SIGTERM
	 * while it waits. default_transaction_read_only is kept: it is how a server is fenced
	 * (pg_auto_failover promotes with it on until the old primary is known demoted), and
	 * a fenced worker must not write.
	 */
	SetConfigOption("default_transaction_isolation", "read committed", PGC_USERSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_deferrable", "off", PGC_USERSET, PGC_S_OVERRIDE);

	/*
	 * Nor do the timeouts a database sets for the shop's own sessions reach the worker's:
	 * its statements are bounded by its batch, and one cancelled is a claim or a
	 * write-back failed again and again for as long as the timeout is shorter than it (a
	 * shop's trigger on s2s.deliveries runs inside it). transaction_timeout would end the
	 * worker's session instead.
	 */
	SetConfigOption("statement_timeout", "0", PGC_USERSET, PGC_S_OVERRIDE);
	s2s_override_transaction_timeout_off();

	/*
	 * Nor exit_on_error, which any user may set: it makes every error FATAL, and the
	 * worker catches the errors of its units (a write-back a shop's trigger refuses, a
	 * deadlock) to hold the results it has and retry. Leaving instead would lose them,
	 * and the next worker would send those deliveries again.
	 */
	SetConfigOption("exit_on_error", "off", PGC_USERSET, PGC_S_OVERRIDE);

	/*
	 * The worker's statements run thousands of times a second with the same shape: plan
	 * them once (a custom plan per execution costs more than the claim itself).
	 */
	SetConfigOption("plan_cache_mode", "force_generic_plan", PGC_USERSET, PGC_S_OVERRIDE);

	/*
	 * And never JIT-compiled: a generic plan's estimated cost grows with the backlog (its
	 * LIMIT is guessed as a tenth of the waiting rows) while its work stays one batch:
	 * between 10,000,000 and 20,000,000 waiting rows the claim passes the default
	 * jit_above_cost, and each execution is compiled again, 40 ms against its 0.4 ms
	 * (doc/performance.md). A database's jit_above_cost, which its owner may set, would
	 * do that to every statement at once.
	 */
	SetConfigOption("jit", "off", PGC_USERSET, PGC_S_OVERRIDE);

	s2s_worker.cxt = AllocSetContextCreate(TopMemoryContext, "s2s_tracking worker",
										   ALLOCSET_DEFAULT_SIZES);
	s2s_worker.batch_cxt = AllocSetContextCreate(s2s_worker.cxt, "s2s_tracking batch",
												 ALLOCSET_DEFAULT_SIZES);

	s2s_worker.slots = MemoryContextAllocZero(s2s_worker.cxt, sizeof(WorkerSlot) * MAX_SLOTS);
	for (int i = MAX_SLOTS - 1; i >= 0; i--)
	{
		s2s_worker.slots[i].next_free = s2s_worker.free_slots;
		s2s_worker.free_slots = &s2s_worker.slots[i];
	}
	s2s_worker.max_endpoints = 8;
	s2s_worker.endpoints = MemoryContextAlloc(s2s_worker.cxt,
											  sizeof(EndpointLoad) * s2s_worker.max_endpoints);
	s2s_worker.held = MemoryContextAlloc(s2s_worker.cxt, sizeof(HeldResult) * MAX_SLOTS);
	s2s_prepared_init();
	s2s_claim_tokens_init();

	/*
	 * A probe (s2s_tracking.database = '*') of a database without the extension leaves
	 * before it starts an HTTP client it would not use: the launcher probes every such
	 * database every few seconds, and each start costs a client, its descriptors and,
	 * with s2s_tracking.http_thread, a thread (and a WARNING wherever threads cannot be
	 * created). The loop looks again, reconciling, once the client is there.
	 */
	if (s2s_worker.args.probe)
	{
		ExtensionCheck check = {.present = false,.reconcile = false};

		if (s2s_run_unit_as_owner(unit_check_extension, &check, false) && !check.present)
		{
			/* (a SIGTERM while it waited for a DROP: absent says nothing then) */
			if (ShutdownRequestPending)
				proc_exit(0);
			ereport(DEBUG1,
					(errmsg("s2s_tracking worker for database \"%s\" leaves: extension s2s_tracking is not installed there",
							s2s_worker.args.database)));
			proc_exit(0);		/* (the slot, attached as not delivering, is given up) */
		}
	}

	fill_options(&options);
	s2s_worker.http = s2s_http_driver_start(&options, s2s_http_thread, errbuf, sizeof(errbuf));
	if (s2s_worker.http == NULL && s2s_http_thread)
	{
		/* a process limit, say: deliver anyway, the way that needs no thread */
		ereport(WARNING,
				(errmsg("s2s_tracking worker cannot run its HTTP client on a thread of its own: %s",
						errbuf),
				 errdetail("The worker drives its HTTP client itself instead, as with s2s_tracking.http_thread off.")));
		s2s_worker.http = s2s_http_driver_start(&options, false, errbuf, sizeof(errbuf));
	}
	if (s2s_worker.http == NULL)
		ereport(ERROR,
				(errmsg("s2s_tracking worker cannot start its HTTP client: %s", errbuf)));

	before_shmem_exit(s2s_worker_detach, (Datum) 0);
	if (s2s_http_driver_threaded(s2s_worker.http))
		ereport(LOG,
				(errmsg("s2s_tracking worker runs its HTTP client on a thread of its own")));

	build_wait_set();
}

void
s2s_worker_main(Datum main_arg)
{
	WorkerLoop	loop = {.claim_wanted = true, .scan_prepared = true};

	worker_start(main_arg);

	for (;;)
	{
		TimestampTz now;
		long		timeout;
		WaitEvent	events[3];
		int			nevents;

		MemoryContextSwitchTo(s2s_worker.batch_cxt);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
			reload_configuration(&loop);
		else if (loop.http_options_pending)
			apply_http_options(&loop);
		if (ShutdownRequestPending)
			break;

		now = GetCurrentTimestamp();
		publish_state(now);
		if (!look_for_extension(&loop, now))
			break;
		loop.more_results = false;
		if (loop.ready && now >= loop.paused_until)
		{
			run_pass(&loop, now);
			purge_when_due(&loop, now);
		}
		else if (s2s_worker.in_flight > 0)
		{
			/*
			 * Paused: transfers go on, their results wait for the next pass. Without this
			 * the client's descriptor would stay readable and the wait below return at
			 * once, again and again, until the pause ends.
			 */
			s2s_http_driver_process(s2s_worker.http);
		}
		MemoryContextReset(s2s_worker.batch_cxt);

		now = GetCurrentTimestamp();
		timeout = next_wait(&loop, now);
		publish_state(now);
		if (timeout > 0)
			report_waiting(loop.ready, s2s_worker.in_flight);
		nevents = WaitEventSetWait(wait_set, timeout, events, lengthof(events),
								   PG_WAIT_EXTENSION);
		for (int i = 0; i < nevents; i++)
		{
			if (events[i].events & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				loop.claim_wanted = true;
			}
		}
	}

	s2s_worker_shut_down(wait_set);

	/*
	 * Exit code 1, as die() would (the launcher starts a new worker unless the server
	 * stops); 0 when the extension is not (or no longer) in a database that only "*"
	 * named: nothing to report.
	 */
	proc_exit(ShutdownRequestPending || !s2s_worker.args.probe ? 1 : 0);
}
