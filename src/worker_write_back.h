/*
 * worker_write_back.h
 *		Writing the delivery worker's results back, holding back those that cannot be
 *		written yet (worker_write_back.c).
 */
#ifndef S2S_WORKER_WRITE_BACK_H
#define S2S_WORKER_WRITE_BACK_H

#include "worker_state.h"

/* In the current transaction: the pass's results, pauses, lease renewals, reconcile. */
extern void s2s_write_back(WorkerPass *pass);

/* s2s_write_back as a unit for s2s_run_unit (arg: the WorkerPass). */
extern void s2s_unit_write_back(void *arg);

/* After a unit that wrote back committed: counts the results, applies the renewals. */
extern void s2s_after_write_back(WorkerPass *pass);

/*
 * Writes the pass's results back in a unit of their own; when that fails, one by one,
 * holding back each that still fails.
 */
extern void s2s_write_back_results(WorkerPass *pass);

/*
 * The unit that wrote the pass's results back failed, with a claim (claimed) or
 * without: writes them back again, so that none is lost.
 */
extern void s2s_write_back_after_failure(WorkerPass *pass, bool claimed);

/* Tries again to write back the results held back. */
extern void s2s_retry_held(void);

#endif							/* S2S_WORKER_WRITE_BACK_H */
