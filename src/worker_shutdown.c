/*
 * worker_shutdown.c
 *		The delivery worker leaving on SIGTERM: what is in flight is written back or given
 *		back, so that the next worker sends it at once rather than after its lease.
 */
#include "postgres.h"

#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "compat.h"
#include "worker_result.h"
#include "worker_shutdown.h"
#include "worker_state.h"
#include "worker_unit.h"
#include "worker_write_back.h"

/* On SIGTERM, how long transfers in flight may still complete before being given back. */
#define SHUTDOWN_GRACE_MS 1000

/*
 * Stops the HTTP client, and its thread (joined) if it has one; on every way out of the
 * worker (this file's shutdown, and the exit callback for the others: an error, the
 * postmaster's death). The line logged with a thread shows that the join returned.
 */
void
s2s_worker_http_stop(void)
{
	bool		threaded;

	if (s2s_worker.http == NULL)
		return;
	threaded = s2s_http_driver_threaded(s2s_worker.http);
	s2s_http_driver_stop(s2s_worker.http);
	s2s_worker.http = NULL;
	if (threaded)
		ereport(LOG, (errmsg("s2s_tracking worker stopped its HTTP thread")));
}

/* Collects what completed and writes it back. */
static void
write_back_completed(TimestampTz now)
{
	WorkerPass	pass;

	MemoryContextSwitchTo(s2s_worker.batch_cxt);
	memset(&pass, 0, sizeof(pass));
	s2s_collect_results(&pass, MAX_SLOTS, 0, now);
	if (pass.n_results > 0)
		s2s_write_back_results(&pass);
	MemoryContextReset(s2s_worker.batch_cxt);
}

/*
 * Leaving on SIGTERM: no more claims; transfers in flight get a short grace to complete
 * and be written back; the rest are given back (not counted) so that the next worker
 * sends them at once instead of after their lease.
 */
void
s2s_worker_shut_down(WaitEventSet *wait_set)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   SHUTDOWN_GRACE_MS);

	/*
	 * Each transaction from here on waits for a lock a second at most (worker_unit.c):
	 * results it could not write back stay 'sending', and the next worker gives them back
	 * at its start.
	 */
	pgstat_report_activity(STATE_RUNNING, "shutting down");
	while (s2s_worker.in_flight > 0)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		timeout;
		WaitEvent	ev;

		s2s_http_driver_process(s2s_worker.http);
		write_back_completed(now);
		if (s2s_worker.in_flight == 0 || now >= deadline)
			break;
		timeout = Min(TimestampDifferenceMilliseconds(now, deadline), 100);
		if (s2s_http_driver_timeout_ms(s2s_worker.http) >= 0)
			timeout = Min(timeout, s2s_http_driver_timeout_ms(s2s_worker.http));
		(void) WaitEventSetWait(wait_set, timeout, &ev, 1, PG_WAIT_EXTENSION);
	}

	/*
	 * Nothing more may be sent from here on: a transfer that completed after its row was
	 * chosen to be given back would be sent twice. (Only a thread makes progress on its
	 * own; what it finished before it stopped is written back.)
	 */
	if (s2s_worker.in_flight > 0 && s2s_http_driver_threaded(s2s_worker.http))
	{
		s2s_http_driver_quiesce(s2s_worker.http);
		write_back_completed(GetCurrentTimestamp());
	}

	/* held results get a last chance; what still fails is given back with the rest */
	if (s2s_worker.n_held > 0)
		s2s_retry_held();
	if (s2s_worker.in_flight > 0 || s2s_worker.n_held > 0)
	{
		WorkerPass	pass;
		int			n = 0;

		MemoryContextSwitchTo(s2s_worker.batch_cxt);
		memset(&pass, 0, sizeof(pass));
		pass.results = palloc(sizeof(QueueResult) *
							  (s2s_worker.in_flight + s2s_worker.n_held));
		for (int i = 0; i < s2s_worker.n_held; i++)
		{
			pass.results[n] = s2s_worker.held[i].r;
			pass.results[n].outcome = QUEUE_GIVE_BACK;
			n++;
		}
		for (int i = 0; i < MAX_SLOTS; i++)
		{
			QueueResult *r;

			if (!s2s_worker.slots[i].used)
				continue;
			r = &pass.results[n++];
			memset(r, 0, sizeof(*r));
			r->id = s2s_worker.slots[i].id;
			r->token = s2s_worker.slots[i].token;
			r->attempt = s2s_worker.slots[i].attempt;
			r->outcome = QUEUE_GIVE_BACK;
			r->started_at = GetCurrentTimestamp();
		}
		pass.n_results = n;
		s2s_worker_http_stop();
		if (s2s_run_unit(s2s_unit_write_back, &pass))
			ereport(LOG,
					(errmsg("s2s_tracking worker gave back %d deliveries in flight at shutdown", n)));
	}
}
