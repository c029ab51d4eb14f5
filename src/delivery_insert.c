/*
 * delivery_insert.c
 *		The orders trigger's write into s2s.deliveries, done through the table access
 *		method and the executor's index routines instead of a planned statement.
 *
 * Why: the trigger runs inside the shop's checkout. For a one-row INSERT ... ON CONFLICT
 * DO NOTHING run through SPI, the executor's start-up (a projection over the table's 30
 * columns, the ON CONFLICT arbiter set-up, the plan-cache checks) cost more than the
 * insert itself (doc/orders.md, "Performance"). This file does what the executor does
 * for that statement, the speculative-insertion protocol of ExecInsert: insert the heap
 * tuple marked speculative; insert its index entries, the unique ones without raising on
 * a duplicate; confirm the tuple, or "super-delete" it when a duplicate exists (ours, or
 * a concurrent transaction's) and start again, now as ExecInsert does: check the
 * arbiters first (waiting for a transaction in progress), do nothing when one holds the
 * key. The first round skips that check (see below), unless the caller expects the key
 * to exist (an UPDATE that validates an order again): the key is then looked up first,
 * before a tuple is formed, so that finding it writes nothing and spends no identity value.
 * The tuple is built from the trigger's values and the table's own column defaults
 * (identity, now(), ...), evaluated as the executor would; the table's constraints are
 * checked as the executor would.
 *
 * What is prepared once per relcache generation of s2s.deliveries (and of each of its
 * indexes), not per row: the column defaults and partial-index predicates, compiled
 * (expressions without a parent: no plan, no JIT, nothing tied to a transaction), and
 * each index's IndexInfo, copied for the row.
 *
 * One deliberate difference: at REPEATABLE READ or SERIALIZABLE, the statement raises a
 * serialization failure when the conflicting row is not visible to the transaction's
 * snapshot; here the conversion is simply known to be enqueued already, and the shop's
 * checkout goes on.
 *
 * It is used only where it does what the statement does: s2s.deliveries is a plain table
 * (not a partition) without triggers (so also without deferrable unique constraints),
 * row-level security or generated columns, whose columns have the expected types, with a
 * valid unique index on exactly (endpoint, dedupe_key). Otherwise (a shop that added its
 * own trigger to the table, say) the caller runs the statement.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "rewrite/rewriteHandler.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "delivery_insert.h"

/* The columns: name, type of the value passed, and the cast the statement needs. */
static const struct
{
	const char *name;
	Oid			type;
	const char *cast;			/* a text value for an enum column, in the statement */
	bool		optional;		/* added by the current version's update: a library
								 * newer than the installed SQL objects leaves it out */
}			columns[S2S_DC_COUNT] =
{
	[S2S_DC_ENDPOINT] = {"endpoint", TEXTOID},
	[S2S_DC_KIND] = {"kind", TEXTOID, "s2s.delivery_kind"},
	[S2S_DC_DEDUPE_KEY] = {"dedupe_key", TEXTOID},
	[S2S_DC_CONVERSION_ID] = {"conversion_id", TEXTOID},
	[S2S_DC_AMOUNT] = {"amount", NUMERICOID},
	[S2S_DC_CURRENCY] = {"currency", TEXTOID},
	[S2S_DC_PAYMENT] = {"payment", TEXTOID},
	[S2S_DC_CUSTOMER] = {"customer", TEXTOID},
	[S2S_DC_CV] = {"cv", TEXTOID},
	[S2S_DC_VOUCHER] = {"voucher", TEXTOID},
	[S2S_DC_CLICK_IDS] = {"click_ids", TEXTOID},
	[S2S_DC_USER_ID] = {"user_id", TEXTOID},
	[S2S_DC_EVENT_ID] = {"event_id", TEXTOID},
	[S2S_DC_CLIENT_IP] = {"client_ip", INETOID},
	[S2S_DC_USER_AGENT] = {"user_agent", TEXTOID},
	[S2S_DC_REFERER] = {"referer", TEXTOID},
	[S2S_DC_STATUS] = {"status", TEXTOID, "s2s.delivery_status"},
	[S2S_DC_LAST_ERROR] = {"last_error", TEXTOID},
	[S2S_DC_FINISHED_AT] = {"finished_at", TIMESTAMPTZOID},
	[S2S_DC_ORDERED_AT] = {"ordered_at", TIMESTAMPTZOID, NULL, true},
};

/* Where each column of the new tuple comes from. */
typedef struct ColumnSource
{
	int			param;			/* an S2SDeliveryColumn, or -1: default or NULL */
	ExprState  *default_expr;	/* the column's default, compiled, or NULL */
	bool		convert;		/* text param into a column of another type (an enum) */
	FmgrInfo	input;			/* ... through the column type's input function */
	Oid			ioparam;
	int32		typmod;
	bool		is_enum;		/* then the last label and its value are kept: the */
	char		memo_label[NAMEDATALEN];	/* trigger passes a handful of labels */
	Datum		memo_value;
} ColumnSource;

/*
 * One index of the table: what ExecOpenIndices would build for every row, kept. Indexes
 * not ready for inserts are kept too: CREATE INDEX CONCURRENTLY marks one ready by
 * invalidating the index alone, and from then on every row must go into it.
 */
typedef struct IndexEntry
{
	Oid			oid;
	bool		ready;			/* ready for inserts */
	IndexInfo  *info;			/* without its predicate: */
	ExprState  *predicate;		/* a partial index's, compiled, or NULL */
} IndexEntry;

/* What was learnt about s2s.deliveries, until a relcache invalidation of it. */
static struct
{
	bool		valid;			/* cleared by an invalidation, even during the build */
	bool		complete;		/* built without error */
	Oid			relid;
	bool		direct;			/* the table allows the direct path */
	int			natts;
	ColumnSource *cols;
	List	   *arbiters;		/* the valid unique indexes on (endpoint, dedupe_key) */
	int			nindexes;		/* all the table's indexes */
	IndexEntry *indexes;
	MemoryContext cxt;
}			cache;

/* Inserts in progress in this transaction (see s2s_delivery_insert_direct). */
static LocalTransactionId busy_lxid = InvalidLocalTransactionId;
static int	busy_depth = 0;

Oid
s2s_delivery_column_type(S2SDeliveryColumn c)
{
	return columns[c].type;
}

char *
s2s_delivery_insert_statement(Oid relid)
{
	StringInfoData names;
	StringInfoData values;
	int			c;

	initStringInfo(&names);
	initStringInfo(&values);
	for (c = 0; c < S2S_DC_COUNT; c++)
	{
		if (columns[c].optional && get_attnum(relid, columns[c].name) == InvalidAttrNumber)
			continue;
		appendStringInfo(&names, "%s%s", c > 0 ? ", " : "", columns[c].name);
		appendStringInfo(&values, "%s$%d", c > 0 ? ", " : "", c + 1);
		if (columns[c].cast)
			appendStringInfo(&values, "::%s", columns[c].cast);
	}
	return psprintf("INSERT INTO s2s.deliveries (%s) VALUES (%s)"
					" ON CONFLICT (endpoint, dedupe_key) DO NOTHING",
					names.data, values.data);
}

void
s2s_delivery_insert_invalidate(Oid relid)
{
	int			i;

	/* only a flag: an invalidation may arrive while the cache is being built */
	if (relid == InvalidOid || relid == cache.relid)
		cache.valid = false;
	/*
	 * CREATE INDEX CONCURRENTLY marks the new index ready for inserts by invalidating the
	 * index alone: from then on, every row must go into it too.
	 */
	for (i = 0; i < cache.nindexes; i++)
		if (relid == cache.indexes[i].oid)
			cache.valid = false;
}

/* Is this index an arbiter of ON CONFLICT (endpoint, dedupe_key), as the planner infers? */
static bool
is_arbiter(Relation irel, IndexInfo *ii, AttrNumber endpoint_att, AttrNumber dedupe_att)
{
	Form_pg_index ix = irel->rd_index;

	return ix->indisunique && ix->indimmediate && ix->indisvalid &&
		ix->indnkeyatts == 2 && ii->ii_Predicate == NIL && ii->ii_Expressions == NIL &&
		((ix->indkey.values[0] == endpoint_att && ix->indkey.values[1] == dedupe_att) ||
		 (ix->indkey.values[0] == dedupe_att && ix->indkey.values[1] == endpoint_att));
}

/*
 * The table's indexes and what inserting into them needs, built once instead of for
 * every row as ExecOpenIndices does, and the arbiters. A partial index's predicate is
 * compiled here, from the relcache's form, which is simplified already.
 */
static void
load_indexes(Relation rel, AttrNumber endpoint_att, AttrNumber dedupe_att)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;

	cache.indexes = palloc0(sizeof(IndexEntry) * Max(list_length(indexes), 1));
	foreach(lc, indexes)
	{
		Relation	irel = index_open(lfirst_oid(lc), AccessShareLock);
		IndexInfo  *ii = BuildIndexInfo(irel);
		IndexEntry *ie = &cache.indexes[cache.nindexes];

		ie->oid = RelationGetRelid(irel);
		ie->ready = ii->ii_ReadyForInserts;
		if (ie->ready && is_arbiter(irel, ii, endpoint_att, dedupe_att))
		{
			cache.arbiters = lappend_oid(cache.arbiters, ie->oid);
			BuildSpeculativeIndexInfo(irel, ii);	/* what the conflict check needs */
		}
		if (ii->ii_Predicate != NIL)
			ie->predicate = ExecInitQual(ii->ii_Predicate, NULL);
		ii->ii_Predicate = NIL;
		ie->info = ii;
		/* counted once filled in: an invalidation of it from now on is seen */
		cache.nindexes++;
		index_close(irel, AccessShareLock);
	}
	list_free(indexes);
}

/*
 * ExecOpenIndices for this row, from what load_indexes kept: only the indexes the row
 * goes into are opened (one not ready for inserts, or a partial index whose predicate the
 * row fails, is skipped, as ExecInsertIndexTuples would skip it), their IndexInfo copied
 * into the row's memory. With arbiters_only, only the arbiters (never partial), for a
 * look-up of the key.
 */
static void
open_indexes(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate, bool arbiters_only)
{
	ExprContext *econtext = GetPerTupleExprContext(estate);
	int			i;

	rri->ri_NumIndices = 0;
	rri->ri_IndexRelationDescs = palloc(sizeof(Relation) * Max(cache.nindexes, 1));
	rri->ri_IndexRelationInfo = palloc(sizeof(IndexInfo *) * Max(cache.nindexes, 1));
	econtext->ecxt_scantuple = slot;
	for (i = 0; i < cache.nindexes; i++)
	{
		IndexEntry *ie = &cache.indexes[i];
		IndexInfo  *ii;

		if (arbiters_only ? !list_member_oid(cache.arbiters, ie->oid) :
			(!ie->ready || (ie->predicate != NULL && !ExecQual(ie->predicate, econtext))))
			continue;
		ii = makeNode(IndexInfo);
		memcpy(ii, ie->info, sizeof(IndexInfo));
		ii->ii_ExpressionsState = NIL;
		ii->ii_PredicateState = NULL;
		ii->ii_AmCache = NULL;
		ii->ii_Context = CurrentMemoryContext;
		rri->ri_IndexRelationDescs[rri->ri_NumIndices] = index_open(ie->oid, RowExclusiveLock);
		rri->ri_IndexRelationInfo[rri->ri_NumIndices] = ii;
		rri->ri_NumIndices++;
	}
}

static void
build_cache(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	attnums[S2S_DC_COUNT];
	MemoryContext old;
	int			c;
	int			i;

	cache.valid = true;
	cache.complete = false;
	cache.nindexes = 0;			/* before its array is freed: the callback reads it */
	if (cache.cxt == NULL)
		cache.cxt = AllocSetContextCreate(CacheMemoryContext, "s2s_tracking delivery insert",
										  ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(cache.cxt);
	old = MemoryContextSwitchTo(cache.cxt);

	cache.relid = RelationGetRelid(rel);
	cache.natts = desc->natts;
	cache.cols = palloc0(sizeof(ColumnSource) * desc->natts);
	cache.arbiters = NIL;
	cache.direct = rel->rd_rel->relkind == RELKIND_RELATION && !rel->rd_rel->relispartition &&
		!rel->rd_rel->relrowsecurity && rel->trigdesc == NULL &&
		!(desc->constr && desc->constr->has_generated_stored);

	for (i = 0; i < desc->natts; i++)
		cache.cols[i].param = -1;
	for (c = 0; c < S2S_DC_COUNT; c++)
	{
		attnums[c] = InvalidAttrNumber;
		for (i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped && strcmp(NameStr(att->attname), columns[c].name) == 0)
			{
				ColumnSource *cs = &cache.cols[i];

				attnums[c] = att->attnum;
				cs->param = c;
				if (att->atttypid != columns[c].type)
				{
					Oid			infunc;

					if (columns[c].type != TEXTOID)
						cache.direct = false;
					getTypeInputInfo(att->atttypid, &infunc, &cs->ioparam);
					fmgr_info_cxt(infunc, &cs->input, cache.cxt);
					cs->typmod = att->atttypmod;
					cs->convert = true;
					cs->is_enum = type_is_enum(att->atttypid);
				}
				break;
			}
		}
		if (attnums[c] == InvalidAttrNumber && !columns[c].optional)
			cache.direct = false;
	}

	/* every other column gets its default (identity, now(), a constant) or NULL */
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Node	   *def;

		if (att->attisdropped || cache.cols[i].param >= 0)
			continue;
		def = build_column_default(rel, att->attnum);
		if (def != NULL)
		{
			/* not planned: no SQL function inlined, nothing folded that could change */
			fix_opfuncids(def);
			cache.cols[i].default_expr = ExecInitExpr((Expr *) def, NULL);
		}
	}

	if (cache.direct)
	{
		load_indexes(rel, attnums[S2S_DC_ENDPOINT], attnums[S2S_DC_DEDUPE_KEY]);
		cache.direct = cache.arbiters != NIL;
	}
	MemoryContextSwitchTo(old);
	cache.complete = true;
}

/* A text value for a column of another type, through that type's input function. */
static Datum
convert_text(ColumnSource *cs, Datum value)
{
	char	   *s = TextDatumGetCString(value);
	Datum		result;

	if (cs->is_enum && cs->memo_label[0] != '\0' && strcmp(s, cs->memo_label) == 0)
		return cs->memo_value;
	result = InputFunctionCall(&cs->input, s, cs->ioparam, cs->typmod);
	if (cs->is_enum)
	{
		strlcpy(cs->memo_label, s, sizeof(cs->memo_label));
		cs->memo_value = result;
	}
	return result;
}

/*
 * Fills slot with the new row: the caller's values, then (with_defaults) the defaults.
 * Without them, the row is only good for looking its key up: nothing is evaluated that
 * has an effect (the identity's nextval).
 */
static void
form_row(TupleTableSlot *slot, EState *estate, const Datum *values, const bool *isnull,
		 bool with_defaults)
{
	ExprContext *econtext = GetPerTupleExprContext(estate);
	int			i;

	ExecClearTuple(slot);
	for (i = 0; i < cache.natts; i++)
	{
		ColumnSource *cs = &cache.cols[i];

		slot->tts_isnull[i] = true;
		slot->tts_values[i] = (Datum) 0;
		if (cs->param >= 0)
		{
			if (isnull[cs->param])
				continue;
			slot->tts_values[i] = cs->convert ? convert_text(cs, values[cs->param]) :
				values[cs->param];
			slot->tts_isnull[i] = false;
		}
		else if (with_defaults && cs->default_expr != NULL)
			slot->tts_values[i] = ExecEvalExprSwitchContext(cs->default_expr, econtext,
															&slot->tts_isnull[i]);
	}
	ExecStoreVirtualTuple(slot);
}

bool
s2s_delivery_insert_direct(Oid relid, const Datum *values, const bool *isnull, bool probe,
						   bool *inserted)
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	RangeTblEntry *rte;
	TupleTableSlot *slot;
	CommandId	cid;
	MemoryContext old;
	int			round;

	*inserted = false;
	/* a depth left over by an error belongs to an earlier transaction */
	if (busy_lxid != MyProc->lxid)
	{
		busy_lxid = MyProc->lxid;
		busy_depth = 0;
	}
	rel = table_open(relid, RowExclusiveLock);
	if (!cache.valid || !cache.complete || cache.relid != relid ||
		cache.natts != RelationGetDescr(rel)->natts)
	{
		/*
		 * Never rebuild under an insert in progress (a constraint or default of the
		 * table that enqueues an order in turn): the outer one is using the cache.
		 */
		if (busy_depth > 0)
		{
			table_close(rel, NoLock);
			return false;
		}
		build_cache(rel);
	}
	if (!cache.direct)
	{
		table_close(rel, NoLock);
		return false;
	}
	busy_depth++;

	estate = CreateExecutorState();
	old = MemoryContextSwitchTo(estate->es_query_cxt);
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = RELKIND_RELATION;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(estate, list_make1(rte));
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	cid = GetCurrentCommandId(true);
	estate->es_output_cid = cid;

	slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(rel), table_slot_callbacks(rel));

	/*
	 * When the delivery may exist already (the caller knows the order was validated
	 * before), look its key up first, as ExecInsert does for ON CONFLICT: finding it
	 * there writes nothing at all, where the optimistic round below would leave a dead
	 * tuple, its index entries and a spent identity value behind. The look-up waits for a
	 * transaction in progress that inserted the key, as the statement would.
	 */
	if (probe)
	{
		ItemPointerData conflict_tid;
		bool		known;

		form_row(slot, estate, values, isnull, false);
		open_indexes(rri, slot, estate, true);
		known = !ExecCheckIndexConstraints(rri, slot, estate, &conflict_tid, cache.arbiters);
		ExecCloseIndices(rri);
		if (known)
		{
			ExecResetTupleTable(estate->es_tupleTable, false);
			MemoryContextSwitchTo(old);
			FreeExecutorState(estate);
			table_close(rel, NoLock);
			busy_depth--;
			return true;
		}
	}

	form_row(slot, estate, values, isnull, true);
	if (rel->rd_att->constr)
		ExecConstraints(rri, slot, estate);

	/*
	 * ExecInsert's ON CONFLICT DO NOTHING, but optimistic: a conflict is rare (an order
	 * validated again), so the first round skips the arbiters' check and inserts at once,
	 * with every unique index told not to raise on a duplicate (noDupErr without an
	 * arbiter list): any duplicate, committed, ours or in progress, only makes the round
	 * fail; the tuple is then super-deleted and the next rounds are exactly ExecInsert's
	 * (check the arbiters, waiting for a transaction in progress; insert; a unique index
	 * other than an arbiter then raises as it would for the statement).
	 */
	open_indexes(rri, slot, estate, false);
	for (round = 0;; round++)
	{
		ItemPointerData conflict_tid;
		bool		conflict = false;
		uint32		token;
		List	   *recheck;

		if (round > 0 &&
			!ExecCheckIndexConstraints(rri, slot, estate, &conflict_tid, cache.arbiters))
			break;				/* enqueued already (by a committed transaction, or ours) */

		token = SpeculativeInsertionLockAcquire(GetCurrentTransactionId());
		table_tuple_insert_speculative(rel, slot, cid, 0, NULL, token);
		recheck = ExecInsertIndexTuples(rri, slot, estate, false, true, &conflict,
										round > 0 ? cache.arbiters : NIL);
		table_tuple_complete_speculative(rel, slot, token, !conflict);
		/* a transaction waiting for our decision now sees the tuple confirmed or dead */
		SpeculativeInsertionLockRelease(GetCurrentTransactionId());
		list_free(recheck);
		if (!conflict)
		{
			*inserted = true;
			break;
		}
		CHECK_FOR_INTERRUPTS();
	}

	ExecCloseIndices(rri);
	ExecResetTupleTable(estate->es_tupleTable, false);
	MemoryContextSwitchTo(old);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	busy_depth--;
	return true;
}
