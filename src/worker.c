/*
 * worker.c
 *		The delivery background worker: registration and main loop.
 *
 * Shape of worker_spi: register in _PG_init, unblock signals, connect, then a loop of
 * WaitLatch / ResetLatch / CHECK_FOR_INTERRUPTS, reloading the configuration on SIGHUP.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"

#include "settings.h"
#include "shared.h"
#include "worker.h"

void
s2s_worker_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "s2s_tracking");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "s2s_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "s2s_tracking worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "s2s_tracking worker");
	RegisterBackgroundWorker(&worker);
}

static void
s2s_worker_detach(int code, Datum arg)
{
	SpinLockAcquire(&s2s_shared->mutex);
	s2s_shared->worker_latch = NULL;
	s2s_shared->worker_pid = 0;
	SpinLockRelease(&s2s_shared->mutex);
}

void
s2s_worker_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(s2s_database, NULL, 0);

	SpinLockAcquire(&s2s_shared->mutex);
	s2s_shared->worker_latch = MyLatch;
	s2s_shared->worker_pid = MyProcPid;
	s2s_shared->worker_started_at = GetCurrentTimestamp();
	SpinLockRelease(&s2s_shared->mutex);
	before_shmem_exit(s2s_worker_detach, (Datum) 0);

	for (;;)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 s2s_poll_interval_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
}
