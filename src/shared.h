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

/*
 * Prepared transactions (PREPARE TRANSACTION) that enqueued, handed to the worker, which
 * watches them end: COMMIT PREPARED runs in a backend that knows nothing of the enqueue.
 * When the inbox is full, "prepared_overflow" makes the worker read pg_prepared_xacts.
 */
#define S2S_PREPARED_INBOX 64

typedef struct S2SShared
{
	slock_t		mutex;			/* protects the non-atomic fields below */
	Latch	   *worker_latch;	/* NULL while no worker runs */
	int			worker_pid;
	Oid			worker_database;	/* InvalidOid while no worker runs */
	int			n_prepared;
	bool		prepared_overflow;
	TransactionId prepared[S2S_PREPARED_INBOX];
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

/*
 * For the worker: moves the xids of prepared transactions that enqueued into out (room
 * for S2S_PREPARED_INBOX); returns how many. *overflow: some were not recorded (read
 * pg_prepared_xacts to find them).
 */
extern int	s2s_take_prepared(TransactionId *out, bool *overflow);

#endif							/* S2S_SHARED_H */
