/*
 * shared.c
 *		Shared-memory state of s2s_tracking and wake-on-commit.
 *
 * A transaction that enqueues a delivery calls s2s_wake_at_commit(); a transaction
 * callback sets the worker's latch once that transaction has committed, so a conversion
 * leaves within milliseconds and a rolled-back one never disturbs the worker.
 */
#include "postgres.h"

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
