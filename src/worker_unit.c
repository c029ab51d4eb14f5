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
 * Whether the worker is in a unit. A unit may wait: for a lock (a row an administrator's
 * open or prepared transaction holds, a table someone locked) or, at its commit, for a
 * synchronous standby. PostgreSQL ends such a wait only for a backend being terminated
 * (die()), a query cancel or the postmaster's death: a SIGTERM that only asked the loop to
 * stop would leave a fast shutdown waiting for as long as the lock is held (for ever, by
 * a prepared transaction) or the standby is gone. So a SIGTERM during a unit also cancels
 * it: a unit cancelled before its commit fails like any other (a write-back keeps its
 * results, held, for the shutdown's last write-back); during the commit, only the wait for
 * the standby ends, and the commit stays, durable locally, as for any backend.
 */
static volatile sig_atomic_t in_unit = false;

/* How long a transaction of a worker that is leaving may wait for a lock. */
#define LEAVING_LOCK_TIMEOUT "1s"

/* Whether the last unit that failed was cancelled or gave up waiting for a lock. */
static bool last_failure_waited = false;

void
s2s_worker_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	ShutdownRequestPending = true;
	if (in_unit)
	{
		QueryCancelPending = true;
		InterruptPending = true;
	}
	SetLatch(MyLatch);
	errno = save_errno;
}

/*
 * pg_cancel_backend(): cancels the unit in progress, if any. Between units there is
 * nothing to cancel, and PostgreSQL's handler would leave a cancel pending there, which the
 * loop's next check would raise as an error outside any unit: the worker's end.
 */
void
s2s_worker_sigint(SIGNAL_ARGS)
{
	int			save_errno = errno;

	if (in_unit)
	{
		QueryCancelPending = true;
		InterruptPending = true;
	}
	SetLatch(MyLatch);
	errno = save_errno;
}

/*
 * Out of a unit: a cancel that nothing took (it came after the unit's last check) was for
 * the unit only; the worker has no query to cancel.
 */
static void
leave_unit(void)
{
	in_unit = false;
	QueryCancelPending = false;
}

bool
s2s_leaving_after_wait(void)
{
	return ShutdownRequestPending && last_failure_waited;
}

/* Commits the unit's transaction; see "in_unit". */
static void
commit_unit(void)
{
	/* a SIGTERM that came before: no wait for a standby either */
	if (ShutdownRequestPending)
		(void) set_config_option("synchronous_commit", "local", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	CommitTransactionCommand();
	leave_unit();
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
	in_unit = true;

	/*
	 * Leaving already (the shutdown's own transactions, or one a SIGTERM came just before):
	 * no SIGTERM will come to end a wait for a lock, so none lasts longer than this.
	 */
	if (ShutdownRequestPending)
		(void) set_config_option("lock_timeout", LEAVING_LOCK_TIMEOUT, PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
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
			leave_unit();
			ok = false;
		}
	}
	PG_CATCH();
	{
		int			code = geterrcode();

		leave_unit();
		MemoryContextSwitchTo(old);
		last_failure_waited = (code == ERRCODE_QUERY_CANCELED ||
							   code == ERRCODE_LOCK_NOT_AVAILABLE);
		/* leaving: not errors, but the SIGTERM above and LEAVING_LOCK_TIMEOUT */
		if (ShutdownRequestPending && last_failure_waited)
		{
			FlushErrorState();
			ereport(LOG,
					(errmsg(code == ERRCODE_QUERY_CANCELED ?
							"s2s_tracking worker cancelled its transaction in progress to shut down" :
							"s2s_tracking worker gave up waiting for a lock to shut down")));
		}
		else
		{
			EmitErrorReport();
			FlushErrorState();
		}
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
