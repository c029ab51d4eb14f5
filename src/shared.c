/*
 * shared.c
 *		Shared-memory state of s2s_tracking and wake-on-commit.
 *
 * One slot per database served (s2s_tracking.max_databases of them), taken by that
 * database's worker when it starts and given up when it exits; a slot is found by the
 * database's OID, so a backend wakes the worker of its own database and no other.
 *
 * A transaction that enqueues a delivery calls s2s_wake_at_commit(); a transaction
 * callback sets the latch of its database's worker once that transaction has committed,
 * so a conversion leaves within milliseconds and a rolled-back one never disturbs it.
 *
 * Two-phase commit: PREPARE TRANSACTION ends the transaction in this backend, and COMMIT
 * PREPARED runs later, maybe in another backend, with no callback an extension can hook
 * (a two-phase resource manager needs an rmid registered in PostgreSQL itself). So at
 * PREPARE the callback hands the transaction's xid to the worker (shared inbox + latch);
 * the worker looks every 100 ms whether the xids it watches are still in progress, and
 * claims as soon as one has ended (committed or rolled back: a claim finds nothing in the
 * latter case). It costs nothing while no prepared transaction enqueued.
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "settings.h"
#include "shared.h"

S2SShared  *s2s_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Backend-local: this transaction enqueued something. */
static bool wake_pending = false;

/* Backend-local: the xid of the transaction being prepared, taken before PREPARE. */
static TransactionId preparing_xid = InvalidTransactionId;

static Size
shared_size(void)
{
	return add_size(offsetof(S2SShared, slots),
					mul_size(sizeof(S2SDbSlot), s2s_max_databases));
}

/* The slot of database's worker, or NULL; the caller holds the mutex. */
static S2SDbSlot *
slot_of(Oid database)
{
	for (int i = 0; i < s2s_shared->n_slots; i++)
		if (s2s_shared->slots[i].database == database)
			return &s2s_shared->slots[i];
	return NULL;
}

/*
 * The transaction that enqueued was prepared: hand its xid to the worker of this
 * database, which watches for its end. No worker runs for it: nothing to do (a worker
 * reads pg_prepared_xacts when it starts). Without an xid nothing was written: wake now.
 */
static void
hand_prepared_to_worker(TransactionId xid)
{
	S2SDbSlot  *slot;
	Latch	   *latch = NULL;

	if (s2s_shared == NULL)
		return;
	SpinLockAcquire(&s2s_shared->mutex);
	slot = slot_of(MyDatabaseId);
	if (slot != NULL)
	{
		if (!TransactionIdIsValid(xid))
			;
		else if (slot->n_prepared < S2S_PREPARED_INBOX)
			slot->prepared[slot->n_prepared++] = xid;
		else
			slot->prepared_overflow = true;
		latch = slot->worker_latch;
	}
	SpinLockRelease(&s2s_shared->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

static void
s2s_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(shared_size()));
}

static void
s2s_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	s2s_shared = ShmemInitStruct("s2s_tracking", shared_size(), &found);
	if (!found)
	{
		memset(s2s_shared, 0, shared_size());
		SpinLockInit(&s2s_shared->mutex);
		s2s_shared->n_slots = s2s_max_databases;
		for (int i = 0; i < s2s_shared->n_slots; i++)
		{
			S2SDbSlot  *slot = &s2s_shared->slots[i];

			pg_atomic_init_u64(&slot->sent, 0);
			pg_atomic_init_u64(&slot->retried, 0);
			pg_atomic_init_u64(&slot->failed, 0);
			pg_atomic_init_u64(&slot->attempts, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

static void
s2s_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_pending)
			{
				wake_pending = false;
				s2s_wake_worker();
			}
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			wake_pending = false;
			preparing_xid = InvalidTransactionId;
			break;
		case XACT_EVENT_PRE_PREPARE:
			preparing_xid = GetTopTransactionIdIfAny();
			break;
		case XACT_EVENT_PREPARE:
			if (wake_pending)
			{
				wake_pending = false;
				hand_prepared_to_worker(preparing_xid);
			}
			preparing_xid = InvalidTransactionId;
			break;
		default:
			break;
	}
}

void
s2s_shared_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = s2s_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = s2s_shmem_startup;

	/* Registered in the postmaster, inherited by every backend it forks. */
	RegisterXactCallback(s2s_xact_callback, NULL);
}

/*
 * Given up at the worker's exit, after its transaction was aborted (on_shmem_exit runs
 * after the before_shmem_exit callbacks): the next worker of this database finds no
 * statement of this one still running when it gives back the 'sending' rows.
 */
static void
detach_slot(int code, Datum arg)
{
	S2SDbSlot  *slot = (S2SDbSlot *) DatumGetPointer(arg);

	SpinLockAcquire(&s2s_shared->mutex);
	if (slot->worker_pid == MyProcPid)
	{
		slot->worker_latch = NULL;
		slot->worker_pid = 0;
		slot->in_flight = 0;
		slot->delivering = false;
		slot->database = InvalidOid;
	}
	SpinLockRelease(&s2s_shared->mutex);
}

S2SDbSlot *
s2s_attach_slot(void)
{
	S2SDbSlot  *slot;

	SpinLockAcquire(&s2s_shared->mutex);
	slot = slot_of(MyDatabaseId);
	if (slot != NULL)
	{
		/* another worker of this database (a slot is freed only by its own worker) */
		SpinLockRelease(&s2s_shared->mutex);
		return NULL;
	}
	slot = slot_of(InvalidOid);
	if (slot == NULL)
	{
		SpinLockRelease(&s2s_shared->mutex);
		return NULL;
	}
	slot->database = MyDatabaseId;
	slot->worker_latch = MyLatch;
	slot->worker_pid = MyProcPid;
	slot->n_prepared = 0;
	slot->prepared_overflow = false;
	slot->worker_started_at = GetCurrentTimestamp();
	slot->last_loop_at = slot->worker_started_at;
	slot->in_flight = 0;
	slot->delivering = false;
	SpinLockRelease(&s2s_shared->mutex);
	pg_atomic_write_u64(&slot->sent, 0);
	pg_atomic_write_u64(&slot->retried, 0);
	pg_atomic_write_u64(&slot->failed, 0);
	pg_atomic_write_u64(&slot->attempts, 0);
	on_shmem_exit(detach_slot, PointerGetDatum(slot));
	return slot;
}

bool
s2s_database_served(Oid database, int *pid)
{
	S2SDbSlot  *slot;

	SpinLockAcquire(&s2s_shared->mutex);
	slot = slot_of(database);
	*pid = slot != NULL ? slot->worker_pid : 0;
	SpinLockRelease(&s2s_shared->mutex);
	return slot != NULL;
}

int
s2s_slots_in_use(bool delivering_only)
{
	int			n = 0;

	SpinLockAcquire(&s2s_shared->mutex);
	for (int i = 0; i < s2s_shared->n_slots; i++)
		if (OidIsValid(s2s_shared->slots[i].database) &&
			(!delivering_only || s2s_shared->slots[i].delivering))
			n++;
	SpinLockRelease(&s2s_shared->mutex);
	return n;
}

void
s2s_slot_set_delivering(S2SDbSlot *slot, bool delivering)
{
	SpinLockAcquire(&s2s_shared->mutex);
	slot->delivering = delivering;
	SpinLockRelease(&s2s_shared->mutex);
}

void
s2s_wake_worker(void)
{
	S2SDbSlot  *slot;
	Latch	   *latch = NULL;

	if (s2s_shared == NULL)
		return;
	SpinLockAcquire(&s2s_shared->mutex);
	slot = slot_of(MyDatabaseId);
	if (slot != NULL)
		latch = slot->worker_latch;
	SpinLockRelease(&s2s_shared->mutex);

	/*
	 * The latch belongs to a PGPROC, which stays in shared memory after its process exits;
	 * SetLatch on a latch nobody owns any longer does nothing harmful.
	 */
	if (latch != NULL)
		SetLatch(latch);
}

void
s2s_wake_at_commit(void)
{
	wake_pending = true;
}

int
s2s_take_prepared(S2SDbSlot *slot, TransactionId *out, bool *overflow)
{
	int			n;

	/*
	 * Unlocked peek, as the worker calls this on every pass: a backend sets the latch
	 * after adding an xid, and the worker's ResetLatch is a memory barrier, so an xid
	 * missed here is seen on the pass that the latch causes.
	 */
	*overflow = false;
	if (slot->n_prepared == 0 && !slot->prepared_overflow)
		return 0;
	SpinLockAcquire(&s2s_shared->mutex);
	n = slot->n_prepared;
	memcpy(out, slot->prepared, sizeof(TransactionId) * n);
	slot->n_prepared = 0;
	*overflow = slot->prepared_overflow;
	slot->prepared_overflow = false;
	SpinLockRelease(&s2s_shared->mutex);
	return n;
}
