/*
 * endpoint_triggers.c
 *		The orders triggers that track an endpoint, found in pg_trigger, and the refusal
 *		to delete, rename or re-kind an endpoint while one of them does (called by the
 *		endpoints guards, endpoint_lock.c).
 *
 * An orders trigger names its endpoint in its arguments ("endpoint=NAME",
 * trigger_args.h). Deleting that endpoint, renaming it or giving it another kind would
 * leave the trigger naming nothing, or an endpoint its columns do not fit. pg_trigger is
 * the one place that knows every such trigger, whoever made it (s2s.track_orders,
 * pg_restore, a hand-written CREATE TRIGGER) and whatever the orders table is called
 * now; a registry of our own would drift from it through a dump and restore, an
 * ALTER TABLE ... RENAME or a DROP TABLE.
 *
 * Concurrency: s2s.track_orders holds the endpoint's lock (endpoint_lock.c) in share mode
 * from before it checks the endpoint until it commits; the guard takes that lock in
 * exclusive mode before it reads pg_trigger with a fresh snapshot. Either the guard waits
 * for the new trigger and sees it, or track_orders waits for the change and then finds
 * the endpoint gone or of its new kind.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "endpoint_triggers.h"
#include "extension_objects.h"

/* Whether the trigger's arguments (tgargs: NUL-terminated strings) include want. */
static bool
args_include(HeapTuple tup, TupleDesc desc, const char *want)
{
	Form_pg_trigger tg = (Form_pg_trigger) GETSTRUCT(tup);
	bool		isnull;
	Datum		d;
	bytea	   *ba;
	const char *p;
	const char *end;
	int			i;

	if (tg->tgnargs == 0)
		return false;
	d = heap_getattr(tup, Anum_pg_trigger_tgargs, desc, &isnull);
	if (isnull)
		return false;
	ba = DatumGetByteaPP(d);
	p = VARDATA_ANY(ba);
	end = p + VARSIZE_ANY_EXHDR(ba);
	for (i = 0; i < tg->tgnargs && p < end; i++)
	{
		const char *nul = memchr(p, '\0', end - p);

		if (nul == NULL)
			break;
		if (strcmp(p, want) == 0)
			return true;
		p = nul + 1;
	}
	return false;
}

bool
s2s_find_tracking_trigger(Oid relid, const char *endpoint, Oid *found_relid,
						  char **found_name)
{
	Oid			fn = s2s_enqueue_function_oid();
	char	   *want = psprintf("endpoint=%s", endpoint);
	Relation	tgrel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Snapshot	snap;
	bool		found = false;

	/* latest committed state: a trigger committed while we waited for a lock counts */
	snap = RegisterSnapshot(GetLatestSnapshot());
	tgrel = table_open(TriggerRelationId, AccessShareLock);
	if (OidIsValid(relid))
	{
		ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(relid));
		scan = systable_beginscan(tgrel, TriggerRelidNameIndexId, true, snap, 1, &key);
	}
	else
		/* no index on tgfoid; pg_trigger is small and this runs for rare changes only */
		scan = systable_beginscan(tgrel, InvalidOid, false, snap, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_trigger tg = (Form_pg_trigger) GETSTRUCT(tup);

		/* a partition's clone goes with its parent's trigger, which is reported */
		if (tg->tgfoid != fn || OidIsValid(tg->tgparentid))
			continue;
		if (args_include(tup, RelationGetDescr(tgrel), want))
		{
			if (found_relid)
				*found_relid = tg->tgrelid;
			if (found_name)
				*found_name = pstrdup(NameStr(tg->tgname));
			found = true;
			break;
		}
	}
	systable_endscan(scan);
	table_close(tgrel, AccessShareLock);
	UnregisterSnapshot(snap);
	return found;
}

void
s2s_refuse_if_tracked(const char *endpoint, const char *change)
{
	Oid			relid;
	char	   *tgname;
	char	   *relname;
	char	   *msg;

	if (!s2s_find_tracking_trigger(InvalidOid, endpoint, &relid, &tgname))
		return;
	relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										 get_rel_name(relid));
	if (strcmp(change, "delete") == 0)
		msg = psprintf("cannot delete endpoint \"%s\": an orders table is tracked for it", endpoint);
	else if (strcmp(change, "rename") == 0)
		msg = psprintf("cannot rename endpoint \"%s\": an orders table is tracked for it", endpoint);
	else if (strcmp(change, "kind") == 0)
		msg = psprintf("cannot change the kind of endpoint \"%s\": an orders table is tracked for it", endpoint);
	else if (strcmp(change, "truncate") == 0)
		msg = psprintf("cannot truncate s2s.endpoints: an orders table is tracked for endpoint \"%s\"", endpoint);
	else
		elog(ERROR, "unknown endpoint change \"%s\"", change);
	ereport(ERROR,
			(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
			 errmsg_internal("%s", msg),
			 errdetail("Trigger \"%s\" on table %s sends that table's orders to endpoint \"%s\".",
					   tgname, relname, endpoint),
			 errhint("Stop tracking first with SELECT s2s.untrack_orders(%s, %s); then track the table again with s2s.track_orders if needed.",
					 quote_literal_cstr(relname), quote_literal_cstr(endpoint))));
}
