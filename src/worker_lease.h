/*
 * worker_lease.h
 *		Renewing the leases of the delivery worker's requests in flight (worker_lease.c).
 */
#ifndef S2S_WORKER_LEASE_H
#define S2S_WORKER_LEASE_H

#include "worker_state.h"

/*
 * In the current transaction, renews the leases due for renewal; records in pass which
 * ones, applied by s2s_after_write_back once the transaction commits.
 */
extern void s2s_renew_leases(WorkerPass *pass);

/* Takes a new lease into account for s2s_worker.next_renewal. */
extern void s2s_lease_note(TimestampTz lease_until);

/* Sets s2s_worker.next_renewal afresh from every lease in flight or held. */
extern void s2s_plan_renewal(void);

#endif							/* S2S_WORKER_LEASE_H */
