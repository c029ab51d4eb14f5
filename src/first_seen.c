/*
 * first_seen.c
 *		s2s_private.order_first_seen: when the orders trigger first saw an order that
 *		carries a click ID and is not validated yet, on a tracking without order_time.
 *		When the order is validated later (a bank wire a week on), its click IDs are
 *		judged at that time, as the network judges them, not at its validation
 *		(doc/orders.md, "Order time and the attribution window").
 *
 * The trigger (enqueue.c) records a row, keyed as the delivery is (endpoint, order ID),
 * and takes it back when it enqueues or skips the conversion; the worker purges the rows
 * of orders never validated (queue.c). The caller runs these statements as the table's
 * owner: the shop's role has no right on schema s2s_private.
 *
 * Neither may fail a checkout. Both run on a fresh snapshot, as a foreign key's checks do:
 * the insert's ON CONFLICT then finds a row committed by another transaction (the same
 * order inserted twice) without the serialization failure a REPEATABLE READ snapshot that
 * cannot see it would raise, and the take finds the row of an order that another
 * transaction inserted after this one's snapshot. A row that another transaction inserts,
 * changes or deletes (the worker's purge) while this one waits for it still raises one
 * under REPEATABLE READ: each statement runs in a subtransaction that swallows it and does
 * nothing, the order being then judged when it is validated. Two transactions validating
 * the same order wait for each other on the order's row before they get here.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "first_seen.h"
#include "kept_plan.h"
#include "subxact.h"

static SPIPlanPtr record_plan = NULL;
static SPIPlanPtr replace_plan = NULL;
static SPIPlanPtr take_plan = NULL;

bool
s2s_first_seen_installed(void)
{
	Oid			nsp = get_namespace_oid("s2s_private", true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid("order_first_seen", nsp));
}

/* One keyed statement and what it reads back, for run_keyed_body. */
typedef struct KeyedRun
{
	SPIPlanPtr *plan;
	const char *sql;
	int			nargs;
	Oid		   *types;
	Datum	   *values;
	int			expected;
	TimestampTz *at;
	bool	   *found;
} KeyedRun;

static void
run_keyed_body(void *arg)
{
	KeyedRun   *run = (KeyedRun *) arg;
	int			rc;
	bool		isnull;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (*run->plan == NULL)
		*run->plan = s2s_prepare_kept(run->sql, run->nargs, run->types);
	rc = SPI_execute_snapshot(*run->plan, run->values, NULL, GetLatestSnapshot(),
							  InvalidSnapshot, false, false, 0);
	if (rc != run->expected)
		elog(ERROR, "\"%s\" failed: %s", run->sql, SPI_result_code_string(rc));
	if (run->at != NULL && SPI_processed > 0)
	{
		*run->at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
													 SPI_tuptable->tupdesc, 1, &isnull));
		*run->found = !isnull;
	}
	SPI_finish();
}

/*
 * Runs sql (prepared once into *plan) with the endpoint and the order ID as $1 and $2, and
 * more values after them, on a fresh snapshot, in a subtransaction of its own; with at,
 * reads the first column of the first row returned into *at (*found: whether there was
 * one). A serialization failure (under REPEATABLE READ or SERIALIZABLE, a row another
 * transaction inserted, updated or deleted while this one waited for it) does nothing:
 * the order is then judged when it is validated, and the checkout goes on. Any other
 * error is raised.
 */
static void
run_keyed(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types, Datum *values,
		  int expected, TimestampTz *at, bool *found)
{
	KeyedRun	run = {plan, sql, nargs, types, values, expected, at, found};
	ErrorData  *edata;

	edata = s2s_subxact_run(run_keyed_body, &run, S2S_SWALLOW_SERIALIZATION_FAILURE);
	if (edata != NULL)
		FreeErrorData(edata);
}

/* The record, both ways; only what a row already there gets differs. */
#define RECORD_SQL \
	"INSERT INTO s2s_private.order_first_seen (endpoint, order_id, first_seen_at)" \
	"     VALUES ($1, $2, $3)" \
	" ON CONFLICT (endpoint, order_id)"

void
s2s_first_seen_record(const char *endpoint, const char *order_id, TimestampTz at,
					  bool replace)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[3];

	values[0] = CStringGetTextDatum(endpoint);
	values[1] = CStringGetTextDatum(order_id);
	values[2] = TimestampTzGetDatum(at);
	if (replace)
		run_keyed(&replace_plan,
				  RECORD_SQL " DO UPDATE SET first_seen_at = EXCLUDED.first_seen_at",
				  3, types, values, SPI_OK_INSERT, NULL, NULL);
	else
		run_keyed(&record_plan, RECORD_SQL " DO NOTHING",
				  3, types, values, SPI_OK_INSERT, NULL, NULL);
}

bool
s2s_first_seen_take(const char *endpoint, const char *order_id, TimestampTz *at)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	bool		found = false;

	values[0] = CStringGetTextDatum(endpoint);
	values[1] = CStringGetTextDatum(order_id);
	run_keyed(&take_plan,
			  "DELETE FROM s2s_private.order_first_seen"
			  " WHERE endpoint OPERATOR(pg_catalog.=) $1"
			  "   AND order_id OPERATOR(pg_catalog.=) $2"
			  " RETURNING first_seen_at",
			  2, types, values, SPI_OK_DELETE_RETURNING, at, &found);
	return found;
}
