/*
 * extension_objects.c
 *		The extension's own objects as a backend sees them: the OIDs of s2s.deliveries,
 *		s2s.endpoints and s2s.enqueue_conversion(), and the owner of s2s.deliveries.
 *
 * Looked up once per backend and kept until a relcache invalidation of either table (or
 * of every relation) says the extension may have been dropped and created again, or its
 * tables given to another owner: they are then looked up again at their next use. The
 * orders trigger (enqueue.c), the endpoint lock (endpoint_lock.c), the endpoints guards
 * (endpoint_triggers.c) and track_orders.c all ask here, so that none of them needs
 * another.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "extension_objects.h"

static bool callback_registered = false;

/*
 * Stale: looked up before an invalidation that may concern them. The OIDs are kept
 * meanwhile, so that s2s_extension_relation answers for them whichever invalidation
 * callback runs first.
 */
static bool stale = false;
static Oid	deliveries_relid = InvalidOid;
static Oid	endpoints_relid = InvalidOid;
static Oid	deliveries_owner = InvalidOid;
static Oid	enqueue_fn_oid = InvalidOid;

bool
s2s_extension_relation(Oid relid)
{
	return relid == InvalidOid || relid == deliveries_relid || relid == endpoints_relid;
}

static void
relcache_callback(Datum arg, Oid relid)
{
	if (s2s_extension_relation(relid))
		stale = true;
}

void
s2s_lookup_extension_objects(void)
{
	Oid			nsp;
	Oid			deliveries = InvalidOid;
	Oid			endpoints = InvalidOid;
	Oid			owner;
	HeapTuple	tup;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
		callback_registered = true;
	}
	if (!stale && OidIsValid(deliveries_owner) && OidIsValid(deliveries_relid) &&
		OidIsValid(endpoints_relid))
		return;
	/* the extension may have been dropped and created again: look everything up */
	stale = false;
	enqueue_fn_oid = InvalidOid;
	nsp = get_namespace_oid("s2s", true);
	if (OidIsValid(nsp))
	{
		deliveries = get_relname_relid("deliveries", nsp);
		endpoints = get_relname_relid("endpoints", nsp);
	}
	if (!OidIsValid(deliveries) || !OidIsValid(endpoints))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("tables s2s.deliveries and s2s.endpoints do not exist"),
				 errhint("Is the extension s2s_tracking installed in this database?")));
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(deliveries));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", deliveries);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);

	/*
	 * Set together, after every catalog access (an invalidation it processes marks them
	 * stale for the next call): the caller can use all three until its next catalog
	 * access.
	 */
	deliveries_relid = deliveries;
	endpoints_relid = endpoints;
	deliveries_owner = owner;
}

Oid
s2s_deliveries_relid(void)
{
	s2s_lookup_extension_objects();
	return deliveries_relid;
}

Oid
s2s_endpoints_relid(void)
{
	s2s_lookup_extension_objects();
	return endpoints_relid;
}

Oid
s2s_deliveries_owner(void)
{
	s2s_lookup_extension_objects();
	return deliveries_owner;
}

Oid
s2s_enqueue_function_oid(void)
{
	static const Oid noargs[1] = {InvalidOid};

	s2s_lookup_extension_objects();
	if (!OidIsValid(enqueue_fn_oid))
		enqueue_fn_oid = LookupFuncName(list_make2(makeString("s2s"),
												   makeString("enqueue_conversion")),
										0, noargs, false);
	return enqueue_fn_oid;
}
