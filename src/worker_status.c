/*
 * worker_status.c
 *		s2s.worker_status(): what this database's delivery worker is doing, read from
 *		shared memory.
 *
 * Each database has its own worker and slot (shared.h); the function answers for the
 * database it is called in, so a shop sees its own worker only. The worker publishes its pid, start time, the time of its last loop, the transfers it
 * has in flight and counters of attempt outcomes; this function reads them without
 * touching the queue, so it is cheap enough to poll from monitoring.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "funcapi.h"
#include "utils/timestamp.h"

#include "shared.h"

PG_FUNCTION_INFO_V1(s2s_worker_status);

Datum
s2s_worker_status(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[8];
	bool		nulls[8];
	int			pid;
	TimestampTz started_at;
	TimestampTz last_loop_at;
	int			in_flight;
	S2SDbSlot  *slot = NULL;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);

	memset(nulls, 0, sizeof(nulls));
	if (s2s_shared == NULL)
	{
		/* The library is not preloaded: there is no worker. */
		memset(nulls, true, sizeof(nulls));
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
	}

	pid = 0;
	started_at = last_loop_at = 0;
	in_flight = 0;
	SpinLockAcquire(&s2s_shared->mutex);
	for (int i = 0; i < s2s_shared->n_slots; i++)
	{
		S2SDbSlot  *s = &s2s_shared->slots[i];

		if (s->database == MyDatabaseId && s->worker_pid != 0)
		{
			slot = s;
			pid = s->worker_pid;
			started_at = s->worker_started_at;
			last_loop_at = s->last_loop_at;
			in_flight = s->in_flight;
			break;
		}
	}
	SpinLockRelease(&s2s_shared->mutex);

	values[0] = Int32GetDatum(pid);
	nulls[0] = (pid == 0);
	values[1] = TimestampTzGetDatum(started_at);
	nulls[1] = (pid == 0);
	values[2] = TimestampTzGetDatum(last_loop_at);
	nulls[2] = (pid == 0);
	values[3] = Int32GetDatum(in_flight);

	/* (the counters of a slot just given up may belong to its next worker: harmless) */
	values[4] = Int64GetDatum(slot ? (int64) pg_atomic_read_u64(&slot->sent) : 0);
	values[5] = Int64GetDatum(slot ? (int64) pg_atomic_read_u64(&slot->retried) : 0);
	values[6] = Int64GetDatum(slot ? (int64) pg_atomic_read_u64(&slot->failed) : 0);
	values[7] = Int64GetDatum(slot ? (int64) pg_atomic_read_u64(&slot->attempts) : 0);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
