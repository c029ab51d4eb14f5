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
 * Leaving on SIGTERM: no more claims; transfers in flight get a short grace to complete
 * and be written back; the rest are given back (not counted) so that the next worker
 * sends them at once instead of after their lease.
 */
void
s2s_worker_shut_down(WaitEventSet *wait_set)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   SHUTDOWN_GRACE_MS);

	pgstat_report_activity(STATE_RUNNING, "shutting down");
	while (s2s_worker.in_flight > 0)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		timeout;
		WaitEvent	ev;
		WorkerPass	pass;

		MemoryContextSwitchTo(s2s_worker.batch_cxt);
		http_process(s2s_worker.http);
		memset(&pass, 0, sizeof(pass));
		s2s_collect_results(&pass, MAX_SLOTS, 0, now);
		if (pass.n_results > 0)
			s2s_write_back_results(&pass);
		MemoryContextReset(s2s_worker.batch_cxt);
		if (s2s_worker.in_flight == 0 || now >= deadline)
			break;
		timeout = Min(TimestampDifferenceMilliseconds(now, deadline), 100);
		if (http_timeout_ms(s2s_worker.http) >= 0)
			timeout = Min(timeout, http_timeout_ms(s2s_worker.http));
		(void) WaitEventSetWait(wait_set, timeout, &ev, 1, PG_WAIT_EXTENSION);
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
		http_client_destroy(s2s_worker.http);
		s2s_worker.http = NULL;
		if (s2s_run_unit(s2s_unit_write_back, &pass))
			ereport(LOG,
					(errmsg("s2s_tracking worker gave back %d deliveries in flight at shutdown", n)));
	}
}
