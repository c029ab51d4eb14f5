/*
 * kept_plan.h: plans kept for the life of the backend, prepared under a pinned
 * search_path (kept_plan.c).
 */
#ifndef S2S_KEPT_PLAN_H
#define S2S_KEPT_PLAN_H

#include "executor/spi.h"

/* Prepares sql under search_path pg_catalog, pg_temp and keeps the plan (SPI_keepplan). */
extern SPIPlanPtr s2s_prepare_kept(const char *sql, int nargs, Oid *argtypes);

#endif							/* S2S_KEPT_PLAN_H */
