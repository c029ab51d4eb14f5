/*
 * shared.h
 *		State shared between the delivery worker and every backend: the worker's latch
 *		(for wake-on-commit) and its status counters.
 *
 * Only plain values and the latch of the worker's PGPROC (itself in shared memory) live
 * here: never a process-local pointer such as a curl handle.
 */
#ifndef S2S_SHARED_H
#define S2S_SHARED_H

#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

typedef struct S2SShared
{
	slock_t		mutex;			/* protects the non-atomic fields below */
	Latch	   *worker_latch;	/* NULL while no worker runs */
	int			worker_pid;
	TimestampTz worker_started_at;
	TimestampTz last_loop_at;
	int			in_flight;

	/* cumulative since the worker started */
	pg_atomic_uint64 sent;
	pg_atomic_uint64 retried;
	pg_atomic_uint64 failed;
	pg_atomic_uint64 attempts;
} S2SShared;

extern S2SShared *s2s_shared;

/* Called from _PG_init while preloading. */
extern void s2s_shared_init(void);

/* Sets the worker's latch now (no-op when no worker runs). */
extern void s2s_wake_worker(void);

/*
 * Asks for the worker to be woken when the current transaction commits (nothing happens
 * if it aborts). Cheap enough to call once per enqueued row.
 */
extern void s2s_wake_at_commit(void);

#endif							/* S2S_SHARED_H */
