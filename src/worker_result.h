/*
 * worker_result.h
 *		A completed HTTP transfer judged and turned into a write-back row
 *		(worker_result.c).
 */
#ifndef S2S_WORKER_RESULT_H
#define S2S_WORKER_RESULT_H

#include "worker_state.h"

/*
 * Collects up to "max" completed transfers into pass->results (allocated here, in the
 * current memory context), leaving room for "extra" more (the claims of this pass that
 * cannot be sent); frees their slots.
 */
extern void s2s_collect_results(WorkerPass *pass, int max, int extra, TimestampTz now);

#endif							/* S2S_WORKER_RESULT_H */
