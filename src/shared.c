/*
 * shared.c
 *		Shared-memory state of s2s_tracking and wake-on-commit.
 *
 * A transaction that enqueues a delivery calls s2s_wake_at_commit(); a transaction
 * callback sets the worker's latch once that transaction has committed, so a conversion
 * leaves within milliseconds and a rolled-back one never disturbs the worker.
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

#include "shared.h"

S2SShared  *s2s_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Backend-local: this transaction enqueued something. */
static bool wake_pending = false;

/* Backend-local: the xid of the transaction being prepared, taken before PREPARE. */
static TransactionId preparing_xid = InvalidTransactionId;

/*
 * The transaction that enqueued was prepared: hand its xid to the worker, which watches
 * for its end. (Deliveries enqueued in another database than the worker's are not the
 * worker's concern.) Without an xid nothing was written: wake now.
 */
static void
hand_prepared_to_worker(TransactionId xid)
{
	bool		wake = true;

	if (s2s_shared == NULL)
		return;
	if (TransactionIdIsValid(xid))
	{
		SpinLockAcquire(&s2s_shared->mutex);
		if (OidIsValid(s2s_shared->worker_database) &&
			s2s_shared->worker_database != MyDatabaseId)
			wake = false;
		else if (s2s_shared->n_prepared < S2S_PREPARED_INBOX)
			s2s_shared->prepared[s2s_shared->n_prepared++] = xid;
		else
			s2s_shared->prepared_overflow = true;
		SpinLockRelease(&s2s_shared->mutex);
	}
	if (wake)
		s2s_wake_worker();
}

static void
s2s_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(S2SShared)));
}

static void
s2s_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	s2s_shared = ShmemInitStruct("s2s_tracking", sizeof(S2SShared), &found);
	if (!found)
	{
		memset(s2s_shared, 0, sizeof(S2SShared));
		SpinLockInit(&s2s_shared->mutex);
		pg_atomic_init_u64(&s2s_shared->sent, 0);
		pg_atomic_init_u64(&s2s_shared->retried, 0);
		pg_atomic_init_u64(&s2s_shared->failed, 0);
		pg_atomic_init_u64(&s2s_shared->attempts, 0);
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

void
s2s_wake_worker(void)
{
	Latch	   *latch;

	if (s2s_shared == NULL)
		return;
	SpinLockAcquire(&s2s_shared->mutex);
	latch = s2s_shared->worker_latch;
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
s2s_take_prepared(TransactionId *out, bool *overflow)
{
	int			n;

	/*
	 * Unlocked peek, as the worker calls this on every pass: a backend sets the latch
	 * after adding an xid, and the worker's ResetLatch is a memory barrier, so an xid
	 * missed here is seen on the pass that the latch causes.
	 */
	*overflow = false;
	if (s2s_shared->n_prepared == 0 && !s2s_shared->prepared_overflow)
		return 0;
	SpinLockAcquire(&s2s_shared->mutex);
	n = s2s_shared->n_prepared;
	memcpy(out, s2s_shared->prepared, sizeof(TransactionId) * n);
	s2s_shared->n_prepared = 0;
	*overflow = s2s_shared->prepared_overflow;
	s2s_shared->prepared_overflow = false;
	SpinLockRelease(&s2s_shared->mutex);
	return n;
}
