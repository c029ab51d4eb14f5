/*
 * endpoint_lock.c
 *		What stands for a foreign key from s2s.deliveries to s2s.endpoints: a lock on
 *		each endpoint's name, held until commit, shared by whoever enqueues to the
 *		endpoint and exclusive for whoever deletes or renames it.
 *
 * Why not the foreign key: its check is an SPI query that locks the endpoint's row (FOR
 * KEY SHARE) for every delivery; with every checkout referencing the same row, that was
 * an eighth of the orders trigger's cost, and the row lock of concurrent checkouts
 * becomes a MultiXact that is written to disk. A heavyweight lock on the name costs one
 * lock-table entry, nothing on disk.
 *
 * The protocol: a writer takes the lock in share mode before it trusts that the endpoint
 * exists and inserts its delivery; the endpoints guard (30_endpoints.sql), deleting or
 * renaming an endpoint, takes it in exclusive mode, so it waits for the writers in
 * progress, then sees their deliveries; a writer that waited for the guard sees, once it
 * has the lock, that the endpoint is gone (the orders trigger through the invalidation
 * the guard's transaction sent at commit, track_event by looking again). Both sides look
 * with a fresh snapshot, as a foreign key's checks do, so that the isolation level of
 * either transaction changes nothing. TRUNCATE of s2s.endpoints takes every endpoint's
 * lock, the endpoints listed and the deliveries looked for with a fresh snapshot too (a
 * REPEATABLE READ snapshot taken before an endpoint and its deliveries were committed
 * would see neither). A statement deleting or renaming several endpoints while a transaction enqueues
 * to two of them can deadlock with it; PostgreSQL's deadlock detector then cancels one.
 *
 * The lock is an "object" lock of the current database whose class is the OID of
 * s2s.endpoints (no catalog has that OID, so it collides with no real object) and whose
 * object is a hash of the name (two names with one hash only wait for each other).
 *
 * The SQL functions below are what the endpoints guards call: each takes the lock, and
 * those that refuse a change while an orders trigger tracks the endpoint ask
 * endpoint_triggers.c, which looks in pg_trigger.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "endpoint_lock.h"
#include "endpoint_triggers.h"
#include "extension_objects.h"

PG_FUNCTION_INFO_V1(s2s_hold_endpoint);
PG_FUNCTION_INFO_V1(s2s_lock_endpoint_for_change);
PG_FUNCTION_INFO_V1(s2s_carry_endpoint_rename);
PG_FUNCTION_INFO_V1(s2s_lock_endpoints_for_truncate);
PG_FUNCTION_INFO_V1(s2s_refuse_tracked_endpoint_change);

void
s2s_endpoint_lock(const char *name, bool exclusive)
{
	uint32		h = hash_bytes((const unsigned char *) name, strlen(name));

	/* LockDatabaseObject also takes in the invalidations the wait may have let through */
	LockDatabaseObject(s2s_endpoints_relid(), h, 0,
					   exclusive ? AccessExclusiveLock : AccessShareLock);
}

/*
 * Runs sql with its text arguments on a fresh snapshot, as a foreign key's checks do:
 * rows committed since the transaction's snapshot count. A write at REPEATABLE READ or
 * SERIALIZABLE also gets the transaction's snapshot as crosscheck, so that changing a row
 * that snapshot cannot see raises a serialization failure instead of going unnoticed.
 * Returns the number of rows found or processed.
 */
static uint64
run_on_fresh_snapshot(const char *sql, int nargs, text **args, bool write)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	SPIPlanPtr	plan;
	int			rc;
	int			i;
	uint64		n;

	Assert(nargs <= 2);
	for (i = 0; i < nargs; i++)
		values[i] = PointerGetDatum(args[i]);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	rc = SPI_execute_snapshot(plan, values, NULL, GetLatestSnapshot(),
							  write && IsolationUsesXactSnapshot() ?
							  GetTransactionSnapshot() : InvalidSnapshot,
							  !write, true, write ? 0 : 1);
	if (rc < 0)
		elog(ERROR, "SPI_execute_snapshot failed for \"%s\": %s", sql,
			 SPI_result_code_string(rc));
	n = SPI_processed;
	SPI_finish();
	return n;
}

/*
 * s2s_private.hold_endpoint(name text): for a writer of s2s.deliveries other than the
 * orders trigger (s2s.track_event). Takes the lock in share mode, then raises if the
 * endpoint does not exist (any more).
 */
Datum
s2s_hold_endpoint(PG_FUNCTION_ARGS)
{
	text	   *name = PG_GETARG_TEXT_PP(0);
	char	   *cname = text_to_cstring(name);

	s2s_endpoint_lock(cname, false);
	if (run_on_fresh_snapshot("SELECT 1 FROM s2s.endpoints WHERE name OPERATOR(pg_catalog.=) $1",
							  1, &name, false) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("endpoint \"%s\" does not exist", cname)));
	PG_RETURN_VOID();
}

/*
 * s2s_private.lock_endpoint_for_change(name text) returns boolean: for the endpoints
 * guard, before an endpoint is deleted or renamed. Takes the lock in exclusive mode
 * (waiting for the transactions enqueuing to it), then says whether any delivery
 * references it.
 */
Datum
s2s_lock_endpoint_for_change(PG_FUNCTION_ARGS)
{
	text	   *name = PG_GETARG_TEXT_PP(0);

	s2s_endpoint_lock(text_to_cstring(name), true);
	PG_RETURN_BOOL(run_on_fresh_snapshot("SELECT 1 FROM s2s.deliveries"
										 " WHERE endpoint OPERATOR(pg_catalog.=) $1",
										 1, &name, false) > 0);
}

/*
 * s2s_private.carry_endpoint_rename(old_name text, new_name text): for the endpoints
 * guard, when an endpoint is renamed. Takes the old name's lock in exclusive mode, then
 * renames the endpoint in every delivery, including those committed after the
 * transaction's snapshot (as ON UPDATE CASCADE did).
 */
Datum
s2s_carry_endpoint_rename(PG_FUNCTION_ARGS)
{
	text	   *names[2] = {PG_GETARG_TEXT_PP(0), PG_GETARG_TEXT_PP(1)};

	s2s_endpoint_lock(text_to_cstring(names[0]), true);
	(void) run_on_fresh_snapshot("UPDATE s2s.deliveries SET endpoint = $2"
								 " WHERE endpoint OPERATOR(pg_catalog.=) $1",
								 2, names, true);
	PG_RETURN_VOID();
}

/*
 * s2s_private.lock_endpoints_for_truncate() returns boolean: for the truncate guard of
 * s2s.endpoints, which already holds that table's ACCESS EXCLUSIVE lock (no endpoint can
 * be added or removed any more). Takes every endpoint's lock in exclusive mode, refuses
 * (2BP01) while an orders trigger tracks one of them, then says whether s2s.deliveries
 * has any row. Everything is read with a fresh snapshot: at REPEATABLE READ the
 * transaction's snapshot may predate an endpoint and its deliveries.
 */
Datum
s2s_lock_endpoints_for_truncate(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	const char *sql = "SELECT name FROM s2s.endpoints ORDER BY name";
	List	   *names = NIL;
	ListCell   *lc;
	SPIPlanPtr	plan;
	uint64		i;
	int			rc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(sql, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	rc = SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(), InvalidSnapshot, true,
							  false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "listing the endpoints failed: %s", SPI_result_code_string(rc));
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		MemoryContext old = MemoryContextSwitchTo(caller);

		names = lappend(names, pstrdup(name));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();

	/*
	 * Refused at once when a trigger tracks an endpoint, before queueing for its lock:
	 * waiting there would hold every checkout enqueuing to it behind us, only to fail.
	 * Then again under the locks, for a track_orders that committed meanwhile.
	 */
	foreach(lc, names)
		s2s_refuse_if_tracked(lfirst(lc), "truncate");
	foreach(lc, names)
		s2s_endpoint_lock(lfirst(lc), true);
	foreach(lc, names)
		s2s_refuse_if_tracked(lfirst(lc), "truncate");
	PG_RETURN_BOOL(run_on_fresh_snapshot("SELECT 1 FROM s2s.deliveries LIMIT 1", 0, NULL,
										 false) > 0);
}

/*
 * s2s_private.refuse_tracked_endpoint_change(name text, change text): for the endpoints
 * guards, before an endpoint is deleted ('delete'), renamed ('rename') or given another
 * kind ('kind'). Raises 2BP01 while an orders trigger tracks it: first at once, so that a
 * refused change never queues for the endpoint's lock (every checkout enqueuing to it
 * would wait behind it, and one with a lock_timeout would fail), then again after waiting
 * for the transactions enqueuing to it or tracking it (its lock, exclusive), for a
 * track_orders that committed meanwhile.
 */
Datum
s2s_refuse_tracked_endpoint_change(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *change = text_to_cstring(PG_GETARG_TEXT_PP(1));

	s2s_refuse_if_tracked(name, change);
	s2s_endpoint_lock(name, true);
	s2s_refuse_if_tracked(name, change);
	PG_RETURN_VOID();
}
