/*
 * kept_plan.c: plans the orders trigger keeps for the life of the backend, prepared
 * under a pinned search_path.
 *
 * The trigger runs in the shop's sessions, whose search_path any role that can create
 * objects may have shaped. What protects the statements is that they name everything
 * qualified: every table, function, type and cast by its schema, every operator as
 * OPERATOR(pg_catalog.x). Pinning the path while preparing only makes the first plan
 * independent of the caller's path: the plan cache re-plans a kept statement under the
 * session's search_path of that moment whenever it differs from the one it was prepared
 * under, so a bare name in a statement given here would be looked up there.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/guc.h"

#include "kept_plan.h"

/* Prepares sql under search_path pg_catalog, pg_temp and keeps its plan. */
SPIPlanPtr
s2s_prepare_kept(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan;
	int			save_nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	AtEOXact_GUC(true, save_nestlevel);
	return plan;
}
