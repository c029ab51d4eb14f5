/*
 * extension_share_lock.c
 *		The worker's share of the lock on extension s2s_tracking, and then its lock on
 *		s2s.deliveries: the first two locks of each worker transaction.
 *
 * DROP EXTENSION locks the extension itself first (AccessExclusiveLock, when it looks the
 * name up), then each member as it finds it: tables, indexes, types, functions, one at a
 * time. A worker transaction that held one of those tables and then asked for another
 * already locked by the DROP closed a cycle, and PostgreSQL's deadlock detector cancelled
 * whichever of the two checked first: often the DROP (seen in CI: "deadlock detected").
 *
 * So every worker transaction first takes AccessShareLock on the extension, before it
 * touches any member. When it gets it, a DROP EXTENSION then waits at its very first lock,
 * holding nothing the worker needs, until the transaction ends. When a DROP holds the
 * extension's lock, the worker waits for it there, holding nothing of the extension's, then
 * finds the extension gone. No cycle either way.
 *
 * But the worker never waits for a session it need not wait for. Anyone who can connect
 * can queue a DROP EXTENSION (it locks before it checks ownership) behind a session holding
 * AccessShareLock on the extension (pg_get_object_address()), and can hold
 * AccessExclusiveLock on it outright (ALTER FUNCTION ... DEPENDS ON EXTENSION checks
 * ownership of the function only), each for as long as it likes. So the lock is asked for
 * without waiting; when that fails, the worker waits (asking again, every 10 to 200 ms) only
 * while a session entitled to drop the extension holds a conflicting lock, and otherwise
 * goes on without the lock, as it did before it took one. A worker asked to stop while it
 * waits does not run the unit (its tables may be locked by the DROP).
 *
 * ALTER EXTENSION UPDATE does not take this lock; its scripts lock s2s.deliveries first,
 * and so does every worker transaction, right after this lock (lock_deliveries_first).
 * Other DDL on the extension's objects (DROP SCHEMA CASCADE, DROP OWNED) can still meet a
 * worker transaction in a deadlock, as any two sessions that lock the same tables in
 * other orders (doc/operations.md).
 *
 * The shop's own sessions (the orders trigger, the click functions) do not take it: their
 * locks follow the shop's statements, and a shop that drops the extension while its
 * checkout runs orders those itself.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/sinval.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "extension_objects.h"
#include "extension_share_lock.h"

/*
 * A DROP EXTENSION and a CREATE EXTENSION committed together (or one after the other)
 * while this waited give a new OID each time; so few in a row are not worth chasing.
 */
#define MAX_LOOKUPS 8

/* pg_extension's row for s2s_tracking, as the latest catalog snapshot sees it */
static Oid
find_extension(Oid *owner)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			oid = InvalidOid;

	*owner = InvalidOid;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("s2s_tracking"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		Form_pg_extension ext = (Form_pg_extension) GETSTRUCT(tuple);

		oid = ext->oid;
		*owner = ext->extowner;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return oid;
}

/*
 * How often to ask again for the lock while an entitled session holds it: soon at first
 * (most DROPs take milliseconds), then less often (each look copies the lock table).
 */
#define RETRY_FIRST_MS 10
#define RETRY_MAX_MS 200

/*
 * Whether a session entitled to drop the extension (logged in as a superuser or as a
 * member of its owner, which may SET ROLE to it) holds a lock on it that keeps out
 * AccessShareLock. Another role can hold one too, for as long as it likes: ALTER
 * FUNCTION ... DEPENDS ON EXTENSION takes AccessExclusiveLock on the extension and checks
 * ownership of the function only. A prepared transaction's holder (no pid) is not known
 * to be entitled.
 */
static bool
entitled_holder(const LOCKTAG *tag, Oid owner)
{
	LockData   *locks = GetLockStatusData();
	bool		found = false;

	for (int i = 0; i < locks->nelements && !found; i++)
	{
		LockInstanceData *l = &locks->locks[i];
		PGPROC	   *proc;
		Oid			role;

		if (l->locktag.locktag_type != tag->locktag_type ||
			l->locktag.locktag_field1 != tag->locktag_field1 ||
			l->locktag.locktag_field2 != tag->locktag_field2 ||
			l->locktag.locktag_field3 != tag->locktag_field3 ||
			l->locktag.locktag_field4 != tag->locktag_field4 ||
			(l->holdMask & LOCKBIT_ON(AccessExclusiveLock)) == 0 ||
			l->pid == 0 || l->pid == MyProcPid)
			continue;
		proc = BackendPidGetProc(l->pid);
		role = proc != NULL ? proc->roleId : InvalidOid;
		found = OidIsValid(role) && (superuser_arg(role) || is_member_of_role(role, owner));
	}
	/* (asked again and again for as long as a DROP lasts, in one transaction) */
	pfree(locks->locks);
	pfree(locks);
	return found;
}

typedef enum
{
	SHARE_HELD,					/* the transaction holds AccessShareLock */
	SHARE_NOT_NEEDED,			/* held by a session not to wait for: go on without */
	SHARE_STOPPING,				/* the worker was asked to stop while it waited */
} ShareResult;

/*
 * Takes AccessShareLock on the extension, waiting only while an entitled session holds
 * it (see above). The wait is a poll, not a place in the lock's queue: a place would also
 * put the worker behind every request queued ahead of it (a DROP that only waits), and a
 * lock wait does not end on the worker's SIGTERM.
 */
static ShareResult
lock_unless_held_by_another(Oid extoid, Oid owner)
{
	LOCKTAG		tag;
	bool		slept = false;
	long		retry_ms = RETRY_FIRST_MS;
	ShareResult result;

	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, ExtensionRelationId, extoid, 0);
	for (;;)
	{
		if (LockAcquire(&tag, AccessShareLock, false, true) != LOCKACQUIRE_NOT_AVAIL)
		{
			result = SHARE_HELD;
			break;
		}
		if (!entitled_holder(&tag, owner))
		{
			result = SHARE_NOT_NEEDED;
			break;
		}
		if (ShutdownRequestPending)
		{
			result = SHARE_STOPPING;
			break;
		}
		if (!slept)
		{
			pgstat_report_activity(STATE_RUNNING, "waiting for a DROP EXTENSION to end");
			/* (not to hold back the xmin horizon meanwhile) */
			InvalidateCatalogSnapshot();
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 retry_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		slept = true;
		retry_ms = Min(retry_ms * 2, RETRY_MAX_MS);
	}
	/* a wake-up this consumed (a commit that enqueued, a SIGTERM) is for the loop */
	if (slept)
		SetLatch(MyLatch);
	return result;
}

/*
 * Then s2s.deliveries, before any other table of the extension: the updates' scripts lock
 * it first (their guard, ACCESS EXCLUSIVE), so that an ALTER EXTENSION UPDATE and a worker
 * transaction take the tables in the same order, and one waits for the other rather than
 * each for the other's (seen in CI: TAP 058, "deadlock detected"). This wait is the one
 * the worker's claims and write-backs already had on the table: a role with USAGE on
 * schema s2s can queue a CREATE TRIGGER on it (which locks before it checks the TRIGGER
 * right) behind a long transaction of the shop's, and hold the worker up meanwhile; now
 * every worker transaction waits there, not only those that write.
 */
static void
lock_deliveries_first(void)
{
	LockRelationOid(s2s_deliveries_relid(), RowExclusiveLock);
}

Oid
s2s_lock_extension_shared(void)
{
	Oid			owner;
	Oid			locked = find_extension(&owner);

	for (int i = 0; OidIsValid(locked) && i < MAX_LOOKUPS; i++)
	{
		uint64		inval_count = SharedInvalidMessageCounter;
		ShareResult share;
		Oid			now;

		share = lock_unless_held_by_another(locked, owner);
		if (share == SHARE_STOPPING)
			return InvalidOid;	/* as absent: a unit that needs it is not run; the loop ends */
		/* (what committed before the lock was granted, a DROP's included) */
		AcceptInvalidationMessages();
		if (inval_count == SharedInvalidMessageCounter)
		{
			/* nothing committed meanwhile */
			lock_deliveries_first();
			return owner;
		}

		/*
		 * Something committed meanwhile, perhaps the DROP this waited for: look again,
		 * with a new catalog snapshot (not every such commit invalidates the one we have).
		 */
		InvalidateCatalogSnapshot();
		now = find_extension(&owner);
		if (now == locked)
		{
			lock_deliveries_first();
			return owner;
		}
		/* the one locked is gone: its lock guards nothing; lock the new one if any */
		if (share == SHARE_HELD)
			UnlockDatabaseObject(ExtensionRelationId, locked, 0, AccessShareLock);
		locked = now;
	}
	/* gone, or changing faster than worth following: the next unit looks again */
	return InvalidOid;
}
