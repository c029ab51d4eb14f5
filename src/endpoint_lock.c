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
 * the guard's transaction sent at commit, track_event by looking again). Both look with
 * a fresh snapshot, as a foreign key's checks do, so that REPEATABLE READ changes nothing.
 *
 * The lock is an "object" lock of the current database whose class is the OID of
 * s2s.endpoints (no catalog has that OID, so it collides with no real object) and whose
 * object is a hash of the name (two names with one hash only wait for each other).
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "endpoint_lock.h"

PG_FUNCTION_INFO_V1(s2s_hold_endpoint);
PG_FUNCTION_INFO_V1(s2s_lock_endpoint_for_change);

void
s2s_endpoint_lock(Oid endpoints_relid, const char *name, bool exclusive)
{
	uint32		h = hash_bytes((const unsigned char *) name, strlen(name));

	/* LockDatabaseObject also takes in the invalidations the wait may have let through */
	LockDatabaseObject(endpoints_relid, h, 0, exclusive ? AccessExclusiveLock : AccessShareLock);
}

static Oid
endpoints_relid(void)
{
	Oid			nsp = get_namespace_oid("s2s", false);
	Oid			relid = get_relname_relid("endpoints", nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table s2s.endpoints does not exist")));
	return relid;
}

/* Whether the query finds a row for name, seen with a fresh snapshot. */
static bool
exists_now(const char *sql, text *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {PointerGetDatum(name)};
	SPIPlanPtr	plan;
	int			rc;
	bool		found;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(sql, 1, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	rc = SPI_execute_snapshot(plan, args, NULL, GetLatestSnapshot(), InvalidSnapshot,
							  true, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_snapshot failed: %s", SPI_result_code_string(rc));
	found = SPI_processed > 0;
	SPI_finish();
	return found;
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

	s2s_endpoint_lock(endpoints_relid(), cname, false);
	if (!exists_now("SELECT 1 FROM s2s.endpoints WHERE name OPERATOR(pg_catalog.=) $1", name))
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

	s2s_endpoint_lock(endpoints_relid(), text_to_cstring(name), true);
	PG_RETURN_BOOL(exists_now("SELECT 1 FROM s2s.deliveries WHERE endpoint OPERATOR(pg_catalog.=) $1",
							  name));
}
