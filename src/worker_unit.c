/*
 * worker_unit.c
 *		One unit of the delivery worker's work: one transaction, run as the extension's
 *		owner, whose error is logged and rolled back without ending the loop; and the
 *		SIGTERM handler that lets a commit waiting for a synchronous standby end.
 *
 * As in worker_spi, every unit of work is its own transaction and says what it does in
 * pg_stat_activity (pgstat_report_activity); unlike there, a unit that fails does not end
 * the worker: the loop goes on and tries again.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "extension_share_lock.h"
#include "worker_state.h"
#include "worker_unit.h"

/*
 * Whether the worker is committing a unit. A commit may wait for a synchronous standby,
 * and PostgreSQL ends that wait only for a backend being terminated (die()), a query
 * cancel or the postmaster's death: a SIGTERM that only asked the loop to stop would leave
 * a fast shutdown waiting for a standby that may be gone for good. So a SIGTERM during a
 * commit also cancels that wait: the commit stays, durable locally, as for any backend.
 */
static volatile sig_atomic_t committing = false;

void
s2s_worker_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	ShutdownRequestPending = true;
	if (committing)
	{
		QueryCancelPending = true;
		InterruptPending = true;
	}
	SetLatch(MyLatch);
	errno = save_errno;
}

/* Commits the unit's transaction; see "committing". */
static void
commit_unit(void)
{
	committing = true;
	/* a SIGTERM that came before: no wait for a standby either */
	if (ShutdownRequestPending)
		(void) set_config_option("synchronous_commit", "local", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	CommitTransactionCommand();
	committing = false;
	/* the cancel was for the wait only (the worker has no query to cancel) */
	if (ShutdownRequestPending)
		QueryCancelPending = false;
}

/*
 * Runs fn in its own transaction, as the extension's owner; an error is logged and the
 * transaction rolled back, so that one failing unit never kills the loop. Returns whether
 * it committed. Without the extension, fn runs only when it does not need it (the check
 * for the extension), and then as the worker's own user, reading the catalog only; a unit
 * that needs it does not run, and returns false without logging anything.
 *
 * Why as the owner: the worker connects as the bootstrap superuser, but its statements
 * (and any trigger they fire) need no more than what the extension's owner has, since
 * that role owns every table they touch. The owner is looked up in every unit, so an
 * ownership change (REASSIGN OWNED) applies at once. SECURITY_RESTRICTED_OPERATION, as
 * for maintenance commands run as a table's owner, keeps code fired by the worker's
 * statements from changing the session under it (SET ROLE, temporary objects, ...).
 * The user is switched back after the commit, so that deferred triggers fired by the
 * commit run as the owner too; on error, the abort restores it.
 */
bool
s2s_run_unit_as_owner(void (*fn) (void *), void *arg, bool needs_extension)
{
	MemoryContext old = CurrentMemoryContext;
	bool		ok = true;
	Oid			save_user;
	int			save_sec;

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		/* first: see extension_share_lock.c; and the snapshot after any wait there */
		s2s_worker.extension_owner = s2s_lock_extension_shared();
		PushActiveSnapshot(GetTransactionSnapshot());
		if (OidIsValid(s2s_worker.extension_owner))
			SetUserIdAndSecContext(s2s_worker.extension_owner,
								   save_sec | SECURITY_LOCAL_USERID_CHANGE |
								   SECURITY_RESTRICTED_OPERATION);
		if (OidIsValid(s2s_worker.extension_owner) || !needs_extension)
		{
			fn(arg);
			SPI_finish();
			PopActiveSnapshot();
			commit_unit();
			SetUserIdAndSecContext(save_user, save_sec);
		}
		else
		{
			/*
			 * Dropped since the loop last looked (often while this waited for the DROP):
			 * not an error of the unit. The loop looks for the extension again and says
			 * once that it waits; a write-back keeps its results (held).
			 */
			SPI_finish();
			PopActiveSnapshot();
			AbortCurrentTransaction();
			ok = false;
		}
	}
	PG_CATCH();
	{
		committing = false;
		MemoryContextSwitchTo(old);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		/* (the abort restored the user already; this only makes it plain) */
		SetUserIdAndSecContext(save_user, save_sec);
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);

	/* So that autovacuum sees the worker's writes. */
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return ok;
}

/* A unit that needs the extension. */
bool
s2s_run_unit(void (*fn) (void *), void *arg)
{
	return s2s_run_unit_as_owner(fn, arg, true);
}
