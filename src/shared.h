/*
 * shared.h
 *		State shared between the delivery workers, their launcher and every backend: one
 *		slot per database served (the worker's latch for wake-on-commit, its prepared
 *		transactions inbox, its status counters).
 *
 * Only plain values and the latch of a worker's PGPROC (itself in shared memory) live
 * here: never a process-local pointer such as a curl handle.
 *
 * A slot belongs to the database of the worker that attached to it; a worker attaches
 * only when no other live worker holds a slot of its database, so there is never more
 * than one worker per database (the crash semantics rely on it: at a worker's start,
 * every 'sending' row of its database belongs to a dead worker).
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

/* One database's worker. Non-atomic fields are protected by S2SShared.mutex. */
typedef struct S2SDbSlot
{
	Oid			database;		/* InvalidOid: free */
	int			worker_pid;
	Latch	   *worker_latch;
	int			n_prepared;
	bool		prepared_overflow;
	TransactionId prepared[S2S_PREPARED_INBOX];
	TimestampTz worker_started_at;
	TimestampTz last_loop_at;
	int			in_flight;
	bool		delivering;		/* the worker found the extension */

	/* cumulative since the worker started */
	pg_atomic_uint64 sent;
	pg_atomic_uint64 retried;
	pg_atomic_uint64 failed;
	pg_atomic_uint64 attempts;
} S2SDbSlot;

typedef struct S2SShared
{
	slock_t		mutex;			/* protects the non-atomic fields of every slot */
	int			n_slots;		/* s2s_tracking.max_databases */
	S2SDbSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} S2SShared;

extern S2SShared *s2s_shared;

/* Called from _PG_init while preloading. */
extern void s2s_shared_init(void);

/*
 * For a worker connected to its database: takes a slot for MyDatabaseId and publishes
 * its latch and pid. Returns NULL when another live worker serves this database (the
 * caller must leave) or when every slot is taken. The slot is given up at exit.
 */
extern S2SDbSlot *s2s_attach_slot(void);

/* Whether a worker runs for database (for the launcher). */
extern bool s2s_database_served(Oid database, int *pid);

/* How many slots hold a worker (that found the extension, when delivering_only). */
extern int	s2s_slots_in_use(bool delivering_only);

/* For the worker: it found the extension in its database (or lost it). */
extern void s2s_slot_set_delivering(S2SDbSlot *slot, bool delivering);

/* Sets the latch of this database's worker now (no-op when none runs). */
extern void s2s_wake_worker(void);

/*
 * Asks for this database's worker to be woken when the current transaction commits
 * (nothing happens if it aborts). Cheap enough to call once per enqueued row.
 */
extern void s2s_wake_at_commit(void);

/*
 * For the worker: moves the xids of prepared transactions that enqueued into out (room
 * for S2S_PREPARED_INBOX); returns how many. *overflow: some were not recorded (read
 * pg_prepared_xacts to find them).
 */
extern int	s2s_take_prepared(S2SDbSlot *slot, TransactionId *out, bool *overflow);

#endif							/* S2S_SHARED_H */
