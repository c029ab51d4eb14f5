/*
 * worker_prepared.c
 *		Prepared transactions that enqueued, watched by the delivery worker until they
 *		end: COMMIT PREPARED runs in a backend that knows nothing of the enqueue, so the
 *		worker claims again when one of them ends.
 *
 * Backends hand the prepared transactions over in this database's slot (shared.c); when
 * that inbox overflowed, and at the worker's start, the worker reads pg_prepared_xacts.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "pgstat.h"
#include "storage/procarray.h"
#include "utils/memutils.h"

#include "worker_prepared.h"
#include "worker_state.h"

/* Prepared transactions that enqueued (or may have): a claim follows the end of each. */
static TransactionId *watched;
static int	n_watched;
static int	max_watched;

void
s2s_prepared_init(void)
{
	max_watched = S2S_PREPARED_INBOX;
	watched = MemoryContextAlloc(s2s_worker.cxt, sizeof(TransactionId) * max_watched);
}

bool
s2s_prepared_watching(void)
{
	return n_watched > 0;
}

static void
watch_xid(TransactionId xid)
{
	for (int i = 0; i < n_watched; i++)
		if (TransactionIdEquals(watched[i], xid))
			return;
	if (n_watched == max_watched)
	{
		max_watched *= 2;
		watched = repalloc(watched, sizeof(TransactionId) * max_watched);
	}
	watched[n_watched++] = xid;
}

/*
 * Every prepared transaction of the database, watched: at the worker's start (prepared
 * transactions outlive a restart, the inbox in shared memory does not) and when the
 * inbox overflowed. Those that enqueued nothing only cost a useless claim when they end.
 */
void
s2s_unit_scan_prepared(void *arg)
{
	int			rc;

	pgstat_report_activity(STATE_RUNNING, "looking for prepared transactions");
	rc = SPI_execute("SELECT transaction FROM pg_catalog.pg_prepared_xacts"
					 " WHERE database OPERATOR(pg_catalog.=) pg_catalog.current_database()",
					 true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "s2s_tracking could not read pg_prepared_xacts: %s",
			 SPI_result_code_string(rc));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			watch_xid(DatumGetTransactionId(d));
	}
}

/*
 * Takes the prepared transactions handed over by backends, and says whether one of those
 * watched has ended (COMMIT or ROLLBACK PREPARED): then its deliveries may be due. A
 * prepared transaction stays "in progress" (its dummy PGPROC in the proc array) until it
 * is finished, and its commit is in the clog before it leaves the proc array, so a claim
 * made after this says false sees what it enqueued.
 */
bool
s2s_prepared_ended(bool *scan)
{
	TransactionId in[S2S_PREPARED_INBOX];
	bool		overflow;
	int			n = s2s_take_prepared(s2s_worker.db_slot, in, &overflow);
	bool		ended = false;
	int			kept = 0;

	for (int i = 0; i < n; i++)
		watch_xid(in[i]);
	if (overflow)
		*scan = true;
	for (int i = 0; i < n_watched; i++)
	{
		if (TransactionIdIsInProgress(watched[i]))
			watched[kept++] = watched[i];
		else
			ended = true;
	}
	n_watched = kept;
	return ended;
}
