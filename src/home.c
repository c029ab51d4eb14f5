/*
 * home.c
 *		Where the queue lives, so that a copy of production stays silent.
 *
 * A database restored from a dump into another cluster or database, or made with CREATE
 * DATABASE ... TEMPLATE, holds production's endpoints, secrets and queue: a worker serving
 * it would send production's conversions again, with production's keys. So the database
 * records its home, the cluster's system identifier and its own OID, in
 * s2s_private.home when the extension is created (sql/install/65_home.sql); that table is
 * dumped with the data, so a restored copy carries its original's home. Before every
 * claim the worker compares it with where it runs (s2s_home_confirm, in the claim's
 * transaction): elsewhere, it pauses every endpoint with the reason, records the new home
 * (so that it pauses once, and s2s.resume(endpoint) confirms an endpoint as usual) and
 * logs one line. s2s.adopt_home() records the new home and resumes what it paused.
 *
 * A promoted standby (or any file-level copy of the data directory) keeps the system
 * identifier and the OIDs: it is the same home. doc/hardening.md says what this means for
 * a file-level copy started as a cluster of its own.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "home.h"

/* The reason an endpoint of a copy is paused with; s2s.adopt_home() resumes by it. */
#define COPY_REASON_PREFIX "this database is a copy"

/*
 * $1, $2: where the worker runs. The rows recorded, and the first one elsewhere (every
 * row must be this home: a restore adds the original's row to the one its CREATE
 * EXTENSION recorded).
 */
static const char *check_sql =
"SELECT pg_catalog.count(*),"
"       pg_catalog.count(*) FILTER (WHERE h.system_identifier OPERATOR(pg_catalog.<>) $1"
"                                      OR h.database_oid OPERATOR(pg_catalog.<>) $2),"
"       pg_catalog.min(h.system_identifier) FILTER (WHERE h.system_identifier OPERATOR(pg_catalog.<>) $1"
"                                      OR h.database_oid OPERATOR(pg_catalog.<>) $2)::pg_catalog.text,"
"       pg_catalog.min(h.database_oid) FILTER (WHERE h.system_identifier OPERATOR(pg_catalog.<>) $1"
"                                      OR h.database_oid OPERATOR(pg_catalog.<>) $2)::pg_catalog.text"
"  FROM s2s_private.home h";

/* $1: the reason. Endpoints already paused keep their own reason (and stay paused). */
static const char *pause_all_sql =
"UPDATE s2s.endpoints SET paused_at = pg_catalog.now(), pause_reason = $1"
" WHERE paused_at IS NULL";

/* $1, $2: the new home. */
static const char *rehome_sql =
"WITH d AS (DELETE FROM s2s_private.home) "
"INSERT INTO s2s_private.home (system_identifier, database_oid) VALUES ($1, $2)";

static SPIPlanPtr check_plan;
static SPIPlanPtr pause_all_plan;
static SPIPlanPtr rehome_plan;

PG_FUNCTION_INFO_V1(s2s_current_home);

static Datum
system_identifier_numeric(void)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), UINT64_FORMAT, GetSystemIdentifier());
	return DirectFunctionCall3(numeric_in, CStringGetDatum(buf),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/* s2s_private.current_home(): this cluster's system identifier and this database's OID. */
Datum
s2s_current_home(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);
	values[0] = system_identifier_numeric();
	values[1] = ObjectIdGetDatum(MyDatabaseId);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

static SPIPlanPtr
keep_plan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed for the s2s_tracking home check: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "SPI_keepplan failed for the s2s_tracking home check");
		*plan = p;
	}
	return *plan;
}

bool
s2s_home_confirm(const char *database)
{
	Oid			home_types[] = {NUMERICOID, OIDOID};
	Oid			reason_types[] = {TEXTOID};
	Datum		home[2];
	Datum		reason;
	int			rc;
	bool		isnull;
	int64		rows;
	int64		elsewhere;
	char	   *old_sysid;
	char	   *old_oid;
	char	   *why;

	/*
	 * An extension older than 0.4.0 (its update not run yet after the library's) records
	 * no home: nothing to check.
	 */
	if (!OidIsValid(get_relname_relid("home", get_namespace_oid("s2s_private", true))))
		return true;

	home[0] = system_identifier_numeric();
	home[1] = ObjectIdGetDatum(MyDatabaseId);
	rc = SPI_execute_plan(keep_plan(&check_plan, check_sql, 2, home_types), home, NULL,
						  true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "s2s_tracking could not read s2s_private.home: %s",
			 SPI_result_code_string(rc));
	rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	elsewhere = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (rows > 0 && elsewhere == 0)
		return true;

	if (rows == 0)
	{
		/* Nobody recorded a home (its row was deleted): this one is it. */
		rc = SPI_execute_plan(keep_plan(&rehome_plan, rehome_sql, 2, home_types), home,
							  NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "s2s_tracking could not record the home of the queue: %s",
				 SPI_result_code_string(rc));
		return true;
	}

	old_sysid = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	old_oid = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
	why = psprintf(COPY_REASON_PREFIX " (restored or copied from the database with OID %s of the cluster with system identifier %s): confirm with s2s.adopt_home() or s2s.resume(endpoint)",
				   old_oid, old_sysid);
	reason = CStringGetTextDatum(why);
	rc = SPI_execute_plan(keep_plan(&pause_all_plan, pause_all_sql, 1, reason_types),
						  &reason, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "s2s_tracking could not pause the endpoints of a copy: %s",
			 SPI_result_code_string(rc));
	rc = SPI_execute_plan(keep_plan(&rehome_plan, rehome_sql, 2, home_types), home,
						  NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "s2s_tracking could not record the home of the queue: %s",
			 SPI_result_code_string(rc));

	ereport(LOG,
			(errmsg("s2s_tracking worker paused every endpoint of database \"%s\": it is a copy of the database with OID %s of the cluster with system identifier %s",
					database, old_oid, old_sysid),
			 errdetail("It runs in the database with OID %u of the cluster with system identifier " UINT64_FORMAT "; nothing is sent from it.",
					   MyDatabaseId, GetSystemIdentifier()),
			 errhint("If this database is now the production one, run SELECT s2s.adopt_home() in it; otherwise leave its endpoints paused.")));
	return false;
}
