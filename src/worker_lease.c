/*
 * worker_lease.c
 *		The leases of the delivery worker's claims: renewed while their requests are in
 *		flight (or their results held back), so that no request of a live worker is ever
 *		given back and sent twice, however long it takes or however the lease is set.
 *
 * A claimed row carries a lease (lease_until); the reconcile gives back the rows whose
 * lease has ended, as those of a dead worker. A live worker renews its own leases when
 * half of one is left (s2s_tracking.lease as it is now), in the write-back transaction,
 * before that transaction's reconcile runs.
 */
#include "postgres.h"

#include "access/xact.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "settings.h"
#include "worker_lease.h"
#include "worker_state.h"

/*
 * Renews, in the current transaction, the lease of every request in flight (and of every
 * held result) whose lease ends within half a lease (s2s_tracking.lease as it is now) of
 * the transaction's start, now() to SQL. So when the reconcile that follows in the same
 * transaction gives back leases ending before now(), none of them is one of ours: those
 * renewed end a whole lease after now(), the others at least half a lease after.
 * Whatever the lease, its reloads or the time a request takes, a request in flight is
 * never given back, so never sent twice, and its result is written back. Applied to the
 * slots only once the transaction commits (s2s_after_write_back).
 */
void
s2s_renew_leases(WorkerPass *pass)
{
	TimestampTz xact_start = GetCurrentTransactionStartTimestamp();
	int64		lease_us = (int64) s2s_lease_s * USECS_PER_SEC;
	WorkerSlot *slots = s2s_worker.slots;
	HeldResult *held = s2s_worker.held;
	int			max = s2s_worker.in_flight + s2s_worker.n_held;
	int64	   *ids = MemoryContextAlloc(s2s_worker.batch_cxt, sizeof(int64) * Max(max, 1));
	int64	   *tokens = MemoryContextAlloc(s2s_worker.batch_cxt, sizeof(int64) * Max(max, 1));
	int			n = 0;

	pass->renewed = MemoryContextAlloc(s2s_worker.batch_cxt,
									   sizeof(TimestampTz *) * Max(max, 1));
	pass->renewed_until = xact_start + lease_us;
	for (int i = 0; i < MAX_SLOTS && n < s2s_worker.in_flight; i++)
	{
		if (!slots[i].used || slots[i].lease_until >= xact_start + lease_us / 2)
			continue;
		ids[n] = slots[i].id;
		tokens[n] = slots[i].token;
		pass->renewed[n++] = &slots[i].lease_until;
	}
	for (int i = 0; i < s2s_worker.n_held; i++)
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

/* Moves the next renewal earlier if the lease ending at lease_until needs it sooner. */
void
s2s_lease_note(TimestampTz lease_until)
{
	TimestampTz due = lease_until - (int64) s2s_lease_s * USECS_PER_SEC / 2;

	if (s2s_worker.next_renewal == 0 || due < s2s_worker.next_renewal)
		s2s_worker.next_renewal = due;
}

/* The earliest time a lease of a request in flight or a held result needs renewing. */
void
s2s_plan_renewal(void)
{
	s2s_worker.next_renewal = 0;
	for (int i = 0, seen = 0; i < MAX_SLOTS && seen < s2s_worker.in_flight; i++)
	{
		if (!s2s_worker.slots[i].used)
			continue;
		seen++;
		s2s_lease_note(s2s_worker.slots[i].lease_until);
	}
	for (int i = 0; i < s2s_worker.n_held; i++)
		s2s_lease_note(s2s_worker.held[i].lease_until);
}
