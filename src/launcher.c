/*
 * launcher.c
 *		The launcher: a static background worker that starts one delivery worker per
 *		database (dynamic background workers) and stops it when it is in the way.
 *
 * s2s_tracking.database names the databases served: one name (the default, postgres),
 * a comma-separated list, or "*" for every database that has the extension. Every half
 * second the launcher reads pg_database (it connects to no database: pg_database is a
 * shared catalog) and, for each database served, makes sure exactly one worker runs,
 * within s2s_tracking.max_databases and the free max_worker_processes slots (each
 * shortage is logged once, until it ends).
 *
 * Which databases have the extension can only be seen from inside each one, so with "*"
 * the launcher starts a worker in every database that accepts connections; a worker that
 * does not find the extension leaves at once, quietly, and the launcher tries again
 * PROBE_INTERVAL_MS later: CREATE EXTENSION is noticed within seconds, and a database that
 * drops it loses its worker within seconds.
 *
 * A worker never stands in the way of DROP DATABASE, ALTER DATABASE ... RENAME / SET
 * TABLESPACE or CREATE DATABASE ... TEMPLATE: those wait up to 5 s for the database's other
 * sessions to leave, and hold a lock on the database object while they wait (the lock
 * that a new connection's RowExclusiveLock conflicts with). The launcher looks for such a
 * lock at every tick, stops the worker of that database (SIGTERM: it gives back its
 * requests in flight within a second and leaves) and starts none there while the lock is
 * held.
 *
 * That there is never more than one worker per database is enforced by the workers
 * themselves in shared memory (shared.c), not by the launcher's bookkeeping, which a
 * restarted launcher loses: a worker started by a former launcher is seen through its
 * slot and left alone.
 */
#include "postgres.h"

#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "launcher.h"
#include "settings.h"
#include "shared.h"
#include "worker.h"

/* How often the launcher looks at pg_database and at its workers. */
#define LAUNCHER_TICK_MS 500

/* A worker of a named database that stopped is started again this much later. */
#define RESTART_DELAY_MS 1000

/* With "*": how often a database without the extension is looked at again. */
#define PROBE_INTERVAL_MS 2000

/* One database the launcher knows of. */
typedef struct DbEntry
{
	Oid			oid;
	char		name[NAMEDATALEN];
	bool		wanted;			/* served, as of the last look at pg_database */
	bool		probe;			/* found by "*" rather than named */
	BackgroundWorkerHandle *handle; /* the worker this launcher started, or NULL */
	bool		stopping;		/* asked to stop (logged once) */
	TimestampTz next_start;
} DbEntry;

static MemoryContext launcher_cxt;
static MemoryContext tick_cxt;
static DbEntry *dbs;
static int	n_dbs;
static int	max_dbs;

/* Shortages already logged (each is logged once, until it ends). */
static bool said_max_databases;
static bool said_no_bgworker;
static char *said_missing;		/* the names in s2s_tracking.database not found, as logged */

void
s2s_launcher_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "s2s_tracking");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "s2s_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "s2s_tracking launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "s2s_tracking launcher");
	RegisterBackgroundWorker(&worker);
}

static DbEntry *
entry_for(Oid oid, const char *name)
{
	for (int i = 0; i < n_dbs; i++)
		if (dbs[i].oid == oid)
		{
			strlcpy(dbs[i].name, name, NAMEDATALEN);
			return &dbs[i];
		}
	if (n_dbs == max_dbs)
	{
		max_dbs *= 2;
		dbs = repalloc(dbs, sizeof(DbEntry) * max_dbs);
	}
	memset(&dbs[n_dbs], 0, sizeof(DbEntry));
	dbs[n_dbs].oid = oid;
	strlcpy(dbs[n_dbs].name, name, NAMEDATALEN);
	return &dbs[n_dbs++];
}

/*
 * Marks the databases that s2s_tracking.database names (or every one that accepts
 * connections, for "*"), from pg_database. A named database that does not exist is logged
 * once (it is looked for again at every tick).
 */
static void
refresh_databases(void)
{
	char	   *raw;
	List	   *names = NIL;
	bool		all = false;
	bool	   *found;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	StringInfoData missing;
	int			i;
	ListCell   *lc;

	raw = pstrdup(s2s_database ? s2s_database : "");
	if (!SplitGUCList(raw, ',', &names))
	{
		/* (cannot happen: the setting's check hook refuses such a list) */
		names = NIL;
	}
	foreach(lc, names)
		if (strcmp((char *) lfirst(lc), "*") == 0)
			all = true;
	found = palloc0(sizeof(bool) * (list_length(names) + 1));

	for (i = 0; i < n_dbs; i++)
		dbs[i].wanted = false;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		const char *name = NameStr(db->datname);
		bool		named = false;
		DbEntry    *e;

		i = 0;
		foreach(lc, names)
		{
			if (strcmp((char *) lfirst(lc), name) == 0)
			{
				named = true;
				found[i] = true;
			}
			i++;
		}
		/* a database half dropped (an interrupted DROP DATABASE) is not one */
		if (database_is_invalid_form(db))
			continue;
		if (!named && !(all && db->datallowconn && !db->datistemplate))
			continue;
		/* (in the launcher's memory, not the transaction's) */
		{
			MemoryContext old = MemoryContextSwitchTo(launcher_cxt);

			e = entry_for(db->oid, name);
			MemoryContextSwitchTo(old);
		}
		e->wanted = true;
		e->probe = !named;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	MemoryContextSwitchTo(tick_cxt);

	initStringInfo(&missing);
	i = 0;
	foreach(lc, names)
	{
		if (!found[i] && strcmp((char *) lfirst(lc), "*") != 0)
			appendStringInfo(&missing, "%s\"%s\"", missing.len ? ", " : "",
							 (char *) lfirst(lc));
		i++;
	}
	if (missing.len > 0 && (said_missing == NULL || strcmp(said_missing, missing.data) != 0))
		ereport(LOG,
				(errmsg("s2s_tracking launcher: database %s named in s2s_tracking.database does not exist",
						missing.data),
				 errhint("Create it, or correct s2s_tracking.database; the launcher looks for it again every half second.")));
	if (said_missing != NULL)
		pfree(said_missing);
	said_missing = missing.len > 0 ? MemoryContextStrdup(launcher_cxt, missing.data) : NULL;
}

/*
 * Whether a session holds a lock on the database object that a new connection would wait
 * for: DROP DATABASE, ALTER DATABASE ... RENAME / SET TABLESPACE, CREATE DATABASE with
 * it as template. Each of them then waits for the database's sessions to leave.
 */
static bool
database_wanted_alone(Oid database)
{
	LOCKTAG		tag;
	VirtualTransactionId *holders;

	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, database, 0);
	holders = GetLockConflicts(&tag, RowExclusiveLock, NULL);
	return VirtualTransactionIdIsValid(holders[0]);
}

/* Whether a worker runs for e, and its pid (0 while starting). */
static bool
worker_running(DbEntry *e, int *pid)
{
	pid_t		p = 0;

	*pid = 0;
	if (e->handle != NULL)
	{
		switch (GetBackgroundWorkerPid(e->handle, &p))
		{
			case BGWH_STARTED:
				*pid = (int) p;
				return true;
			case BGWH_NOT_YET_STARTED:
				return true;
			case BGWH_STOPPED:
			case BGWH_POSTMASTER_DIED:
				pfree(e->handle);
				e->handle = NULL;
				e->next_start = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															e->probe ? PROBE_INTERVAL_MS :
															RESTART_DELAY_MS);
				break;
		}
	}

	/*
	 * Still attached to its slot (leaving), or started by a former launcher: running
	 * all the same. A worker is only started once the previous one is gone.
	 */
	return s2s_database_served(e->oid, pid);
}

static void
stop_worker(DbEntry *e, int pid, const char *why)
{
	if (!e->stopping)
		ereport(LOG,
				(errmsg("s2s_tracking launcher stops the worker of database \"%s\": %s",
						e->name, why)));
	e->stopping = true;
	if (e->handle != NULL)
		TerminateBackgroundWorker(e->handle);
	else if (pid != 0)
		(void) kill(pid, SIGTERM);
}

/* Starts a worker for e; false when no background worker slot is free. */
static bool
start_worker(DbEntry *e)
{
	BackgroundWorker worker;
	S2SWorkerArgs args;
	MemoryContext old;
	bool		ok;

	memset(&args, 0, sizeof(args));
	args.probe = e->probe;
	strlcpy(args.database, e->name, NAMEDATALEN);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	/* the launcher restarts it, unless the database is gone or wanted alone */
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "s2s_tracking");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "s2s_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "s2s_tracking worker for database %s", e->name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "s2s_tracking worker");
	worker.bgw_main_arg = ObjectIdGetDatum(e->oid);
	worker.bgw_notify_pid = MyProcPid;
	StaticAssertStmt(sizeof(S2SWorkerArgs) <= BGW_EXTRALEN, "S2SWorkerArgs too large");
	memcpy(worker.bgw_extra, &args, sizeof(args));

	old = MemoryContextSwitchTo(launcher_cxt);
	ok = RegisterDynamicBackgroundWorker(&worker, &e->handle);
	MemoryContextSwitchTo(old);
	if (!ok)
		e->handle = NULL;
	return ok;
}

/*
 * One look at every database: stop the workers in the way or no longer wanted, start
 * those missing, within the limits.
 */
static void
manage_workers(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int			running = 0;
	bool		short_of_room = false;
	bool		short_of_bgworkers = false;
	int			kept = 0;

	for (int i = 0; i < n_dbs; i++)
	{
		int			pid;

		if (worker_running(&dbs[i], &pid))
			running++;
	}

	for (int i = 0; i < n_dbs; i++)
	{
		DbEntry    *e = &dbs[i];
		int			pid;
		bool		alone;

		if (worker_running(e, &pid))
		{
			if (!e->wanted)
				stop_worker(e, pid, "it is no longer named in s2s_tracking.database");
			else if (database_wanted_alone(e->oid))
			{
				stop_worker(e, pid, "a command waits for its sessions to leave (DROP DATABASE, CREATE DATABASE ... TEMPLATE, ALTER DATABASE)");
				e->next_start = TimestampTzPlusMilliseconds(now, RESTART_DELAY_MS);
			}
			continue;
		}
		e->stopping = false;
		if (!e->wanted)
			continue;
		if (now < e->next_start)
			continue;
		alone = database_wanted_alone(e->oid);
		if (alone)
			continue;
		if (running >= s2s_max_databases)
		{
			/*
			 * With "*", probes come and go: only a database that named, or every slot
			 * delivering, is a real shortage.
			 */
			if (!e->probe || s2s_slots_in_use(true) >= s2s_max_databases)
				short_of_room = true;
			if (short_of_room && !said_max_databases)
			{
				ereport(LOG,
						(errmsg("s2s_tracking launcher cannot start a worker for database \"%s\": s2s_tracking.max_databases (%d) workers already run",
								e->name, s2s_max_databases),
						 errhint("Raise s2s_tracking.max_databases (and max_worker_processes), which takes a restart, or serve fewer databases.")));
				said_max_databases = true;
			}
			continue;
		}
		if (!start_worker(e))
		{
			short_of_bgworkers = true;
			if (!said_no_bgworker)
			{
				ereport(LOG,
						(errmsg("s2s_tracking launcher cannot start a worker for database \"%s\": no background worker slot is free",
								e->name),
						 errhint("Raise max_worker_processes (it counts the launcher and every database's worker, with parallel workers and other extensions' workers), which takes a restart.")));
				said_no_bgworker = true;
			}
			e->next_start = TimestampTzPlusMilliseconds(now, RESTART_DELAY_MS);
			continue;
		}
		running++;
	}
	if (!short_of_room)
		said_max_databases = false;
	if (!short_of_bgworkers)
		said_no_bgworker = false;

	/* forget the databases neither wanted nor served */
	for (int i = 0; i < n_dbs; i++)
	{
		int			pid;

		if (dbs[i].wanted || dbs[i].handle != NULL || s2s_database_served(dbs[i].oid, &pid))
			dbs[kept++] = dbs[i];
	}
	n_dbs = kept;
}

void
s2s_launcher_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	/* No database: pg_database is a shared catalog. */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	launcher_cxt = AllocSetContextCreate(TopMemoryContext, "s2s_tracking launcher",
										 ALLOCSET_DEFAULT_SIZES);
	tick_cxt = AllocSetContextCreate(launcher_cxt, "s2s_tracking launcher tick",
									 ALLOCSET_DEFAULT_SIZES);
	max_dbs = 16;
	dbs = MemoryContextAllocZero(launcher_cxt, sizeof(DbEntry) * max_dbs);

	while (!ShutdownRequestPending)
	{
		MemoryContextSwitchTo(tick_cxt);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		refresh_databases();
		manage_workers();
		MemoryContextReset(tick_cxt);

		/* the latch: a worker started or stopped (bgw_notify_pid), a signal */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 LAUNCHER_TICK_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}

	/*
	 * Exit code 1: the postmaster starts the launcher again unless the server stops
	 * (it stops the workers itself then); its workers go on meanwhile.
	 */
	proc_exit(1);
}
