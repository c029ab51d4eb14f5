/*
 * extension_share_lock.c
 *		The worker's share of the lock on extension s2s_tracking.
 *
 * DROP EXTENSION locks the extension itself first (AccessExclusiveLock, when it looks the
 * name up), then each member as it finds it: tables, indexes, types, functions, one at a
 * time. A worker transaction that held one of those tables and then asked for another
 * already locked by the DROP closed a cycle, and PostgreSQL's deadlock detector cancelled
 * whichever of the two checked first: often the DROP (seen in CI: "deadlock detected").
 *
 * So every worker transaction first takes AccessShareLock on the extension, before it
 * touches any member. Either it gets it, and a DROP EXTENSION then waits at its very first
 * lock, holding nothing the worker needs, until the transaction ends; or a DROP holds it,
 * and the worker waits there, holding nothing of the extension's. No cycle either way.
 * AccessShareLock conflicts with nothing but AccessExclusiveLock, which only DROP takes
 * (COMMENT ON EXTENSION and ALTER EXTENSION ADD/DROP take ShareUpdateExclusiveLock).
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
#include "storage/lmgr.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

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

Oid
s2s_lock_extension_shared(void)
{
	Oid			owner;
	Oid			locked = find_extension(&owner);

	for (int i = 0; OidIsValid(locked) && i < MAX_LOOKUPS; i++)
	{
		Oid			now;

		/* (LockDatabaseObject takes in the invalidations a wait let through) */
		LockDatabaseObject(ExtensionRelationId, locked, 0, AccessShareLock);

		/*
		 * A DROP EXTENSION this waited for may have committed: look again with a new
		 * catalog snapshot (not every such commit invalidates the one we have).
		 */
		InvalidateCatalogSnapshot();
		now = find_extension(&owner);
		if (now == locked)
			return owner;
		/* the one locked is gone: its lock guards nothing; lock the new one if any */
		UnlockDatabaseObject(ExtensionRelationId, locked, 0, AccessShareLock);
		locked = now;
	}
	/* gone, or changing faster than worth following: the next unit looks again */
	return InvalidOid;
}
