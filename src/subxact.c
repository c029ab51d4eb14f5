/*
 * subxact.c
 *		Running a piece of code in an internal subtransaction that gives back some errors
 *		instead of raising them (see subxact.h): the orders trigger's mapping expressions
 *		(mapping_expr.c) and first-seen statements (first_seen.c), which must not fail a
 *		checkout, while a cancel still cancels.
 *
 * The caller's memory context is made current again after the subtransaction starts, so
 * that what body allocates (a mapping's value) outlives it, and after it ends, which makes
 * the parent transaction's context current. The resource owner is set back by hand, as
 * PL/pgSQL does: ending a subtransaction makes the parent's transaction owner current,
 * which is not the caller's when it runs in a portal.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/resowner.h"

#include "subxact.h"

static bool
swallowed(int sqlerrcode, S2SSubxactSwallow swallow)
{
	switch (swallow)
	{
		case S2S_SWALLOW_SERIALIZATION_FAILURE:
			return sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE;
		case S2S_SWALLOW_DATA_EXCEPTION:
			return ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_DATA_EXCEPTION;
		case S2S_SWALLOW_ALL_BUT_CANCEL:
			return ERRCODE_TO_CATEGORY(sqlerrcode) != ERRCODE_OPERATOR_INTERVENTION;
	}
	return false;
}

ErrorData *
s2s_subxact_run(void (*body) (void *arg), void *arg, S2SSubxactSwallow swallow)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		body(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (!swallowed(edata->sqlerrcode, swallow))
			ReThrowError(edata);
	}
	PG_END_TRY();
	return edata;
}
