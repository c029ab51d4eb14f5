/*
 * compat.h
 *		Every difference between the PostgreSQL versions s2s_tracking builds against, in
 *		one place: 15 (Debian 12), 16 (no Debian package: these branches follow 16's
 *		headers, built nowhere here), 17 (Debian 13) and 18 (Debian unstable).
 *
 * Each branch names the version whose headers changed the API. Code outside this file
 * never tests PG_VERSION_NUM: it calls these wrappers, whose arguments are those of the
 * oldest version, and a new major version is a matter of this file alone.
 */
#ifndef S2S_COMPAT_H
#define S2S_COMPAT_H

#include "access/tupdesc.h"
#include "executor/executor.h"
#include "nodes/bitmapset.h"
#include "nodes/pg_list.h"
#include "storage/latch.h"		/* 18: includes storage/waiteventset.h */
#include "storage/proc.h"
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"	/* addRTEPermissionInfo */
#endif

/* 17 moved PGPROC's local transaction id into its virtual transaction id, vxid. */
#if PG_VERSION_NUM >= 170000
#define S2S_MY_LXID()	(MyProc->vxid.lxid)
#else
#define S2S_MY_LXID()	(MyProc->lxid)
#endif

/*
 * The range table of an executor state made for one relation. 16 moved the permissions
 * out of the RangeTblEntry into a list of RTEPermissionInfo that ExecInitRangeTable takes
 * (the error detail of a failed constraint looks the relation's up, so it must exist; it
 * requires no permission: the caller has checked what it needed); 18 also takes the
 * relations left after partition pruning, here the one relation.
 */
static inline void
s2s_init_range_table(EState *estate, RangeTblEntry *rte)
{
#if PG_VERSION_NUM >= 160000
	List	   *perminfos = NIL;

	(void) addRTEPermissionInfo(&perminfos, rte);
#endif
#if PG_VERSION_NUM >= 180000
	ExecInitRangeTable(estate, list_make1(rte), perminfos, bms_make_singleton(1));
#elif PG_VERSION_NUM >= 160000
	ExecInitRangeTable(estate, list_make1(rte), perminfos);
#else
	ExecInitRangeTable(estate, list_make1(rte));
#endif
}

/*
 * ExecCheckIndexConstraints for an insert. 18 added the TID of a row being updated, to
 * be ignored by the check (NULL: an insert has none).
 */
static inline bool
s2s_check_index_constraints(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate,
							ItemPointer conflict_tid, List *arbiters)
{
#if PG_VERSION_NUM >= 180000
	return ExecCheckIndexConstraints(rri, slot, estate, conflict_tid, NULL, arbiters);
#else
	return ExecCheckIndexConstraints(rri, slot, estate, conflict_tid, arbiters);
#endif
}

/*
 * ExecInsertIndexTuples for a new row (not an update). 16 added onlySummarizing, for an
 * update that only summarizing indexes (BRIN) must see; false: every index.
 */
static inline List *
s2s_insert_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate,
						bool no_dup_err, bool *spec_conflict, List *arbiters)
{
#if PG_VERSION_NUM >= 160000
	return ExecInsertIndexTuples(rri, slot, estate, false, no_dup_err, spec_conflict,
								 arbiters, false);
#else
	return ExecInsertIndexTuples(rri, slot, estate, false, no_dup_err, spec_conflict,
								 arbiters);
#endif
}

/*
 * Does the table have generated columns? 18 added virtual ones, computed when read: a
 * row written without the executor would miss their checks.
 */
static inline bool
s2s_has_generated_columns(TupleDesc desc)
{
	if (desc->constr == NULL)
		return false;
#if PG_VERSION_NUM >= 180000
	return desc->constr->has_generated_stored || desc->constr->has_generated_virtual;
#else
	return desc->constr->has_generated_stored;
#endif
}

/*
 * A wait event set that lives until FreeWaitEventSet, across transactions. 17 tracks
 * such sets with a resource owner instead of a memory context: none here (the worker
 * frees it itself), so it is allocated in TopMemoryContext, as the context was.
 */
static inline WaitEventSet *
s2s_create_wait_event_set(MemoryContext cxt, int nevents)
{
#if PG_VERSION_NUM >= 170000
	(void) cxt;
	return CreateWaitEventSet(NULL, nevents);
#else
	return CreateWaitEventSet(cxt, nevents);
#endif
}

#endif							/* S2S_COMPAT_H */
