/*
 * worker_write_back.c
 *		Writing the delivery worker's results back: in one transaction per pass, durable
 *		before anything else is claimed; when that fails, one result at a time, and a
 *		result that still fails is held back (its row kept under our claim, its lease
 *		renewed) and tried again later, so that an error never turns a sent delivery into
 *		a resent one.
 */
#include "postgres.h"

#include "access/xact.h"
#include "pgstat.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "settings.h"
#include "worker_lease.h"
#include "worker_state.h"
#include "worker_unit.h"
#include "worker_write_back.h"

/*
 * Writes back a pass's results, pausing endpoints, renewing the leases of the requests in
 * flight and giving back expired leases (of rows this worker no longer tracks).
 */
void
s2s_write_back(WorkerPass *pass)
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
			s2s_queue_pause_endpoint(s2s_worker.endpoints[pass->pause[i]].name,
								 pass->pause_reason[i]);
		s2s_queue_write_back(pass->results, pass->n_results, &pass->counts);
	}
	if ((pass->renew || pass->reconcile_expired) &&
		s2s_worker.in_flight + s2s_worker.n_held > 0)
		s2s_renew_leases(pass);
	if (pass->reconcile_expired)
		s2s_queue_reconcile(false);
}

/* A transaction that only writes back. */
void
s2s_unit_write_back(void *arg)
{
	s2s_write_back((WorkerPass *) arg);
}

/* Holds result i of a pass whose write-back failed on its own. */
static void
hold_result(const WorkerPass *pass, int i)
{
	HeldResult *h;

	/* cannot happen (held results take room from the claims); its lease will expire */
	if (s2s_worker.n_held == MAX_SLOTS)
		return;
	h = &s2s_worker.held[s2s_worker.n_held++];
	h->r = pass->results[i];
	h->r.error = h->r.error ? MemoryContextStrdup(s2s_worker.cxt, h->r.error) : NULL;
	h->r.response = h->r.response ? MemoryContextStrdup(s2s_worker.cxt, h->r.response) : NULL;
	h->lease_until = pass->leases[i];
	if (s2s_worker.next_held_retry == 0)
		s2s_worker.next_held_retry = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
																 s2s_poll_interval_ms);
	s2s_lease_note(h->lease_until);
}

/* Counts the results of a committed write-back in shared memory. */
static void
count_results(const WorkerPass *pass)
{
	const QueueCounts *c = &pass->counts;
	S2SDbSlot  *db_slot = s2s_worker.db_slot;

	if (c->sent + c->retried + c->failed == 0)
		return;
	pg_atomic_fetch_add_u64(&db_slot->attempts, c->sent + c->retried + c->failed);
	if (c->sent)
		pg_atomic_fetch_add_u64(&db_slot->sent, c->sent);
	if (c->retried)
		pg_atomic_fetch_add_u64(&db_slot->retried, c->retried);
	if (c->failed)
		pg_atomic_fetch_add_u64(&db_slot->failed, c->failed);
}

/*
 * After a write-back unit committed: count its results, apply the lease renewals it
 * made.
 */
void
s2s_after_write_back(WorkerPass *pass)
{
	count_results(pass);
	for (int i = 0; i < pass->n_renewed; i++)
		*pass->renewed[i] = pass->renewed_until;
	if (pass->n_renewed > 0 || pass->renew || pass->reconcile_expired)
		s2s_plan_renewal();
}

/*
 * The write-back of a pass's results failed as a whole: writes each back in its own
 * transaction, so that one result that cannot be written (a trigger refusing it) does not
 * hold back the others; each that still fails is held and tried again later. When the
 * worker is leaving and what failed was a wait (a SIGTERM cancelled it, or it gave up on
 * a lock), the rest are held without a try: each could wait for that lock again, with no
 * SIGTERM left to end the wait; the shutdown gives them back together.
 */
static void
write_back_each(WorkerPass *pass)
{
	for (int i = 0; i < pass->n_results; i++)
	{
		WorkerPass	one;

		if (s2s_leaving_after_wait())
		{
			hold_result(pass, i);
			continue;
		}
		memset(&one, 0, sizeof(one));
		one.results = &pass->results[i];
		one.n_results = 1;
		if (s2s_run_unit(s2s_unit_write_back, &one))
			count_results(&one);
		else
			hold_result(pass, i);
	}
}

void
s2s_write_back_results(WorkerPass *pass)
{
	if (s2s_run_unit(s2s_unit_write_back, pass))
		s2s_after_write_back(pass);
	else
		write_back_each(pass);
}

/*
 * Keep the results even if the claim was what failed: write them back alone, else one by
 * one, holding any that still fails (a result dropped here would make its delivery be
 * sent again). Without a claim, the unit that failed was that write-back already.
 */
void
s2s_write_back_after_failure(WorkerPass *pass, bool claimed)
{
	if (pass->n_results == 0)
		return;
	if (claimed && !s2s_leaving_after_wait())
	{
		memset(&pass->counts, 0, sizeof(pass->counts));
		pass->n_claims = 0;
		s2s_write_back_results(pass);
	}
	else
		write_back_each(pass);
}

/*
 * Tries again to write back the held results, each in its own transaction. Leaving, once
 * one failed waiting (cancelled, or a lock it gave up on) the rest are not tried: each
 * could wait for the same lock (worker_unit.c); they are given back together.
 */
void
s2s_retry_held(void)
{
	HeldResult *held = s2s_worker.held;
	int			kept = 0;
	bool		failed = false;

	for (int i = 0; i < s2s_worker.n_held; i++)
	{
		WorkerPass	one;

		memset(&one, 0, sizeof(one));
		one.results = &held[i].r;
		one.n_results = 1;
		if (failed && s2s_leaving_after_wait())
			held[kept++] = held[i];
		else if (s2s_run_unit(s2s_unit_write_back, &one))
		{
			count_results(&one);
			if (held[i].r.error)
				pfree((char *) held[i].r.error);
			if (held[i].r.response)
				pfree((char *) held[i].r.response);
		}
		else
		{
			held[kept++] = held[i];
			failed = true;
		}
	}
	s2s_worker.n_held = kept;
	s2s_worker.next_held_retry = kept > 0 ?
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), s2s_poll_interval_ms) : 0;
	s2s_plan_renewal();
}
