/*
 * admin.c
 *		C parts of the administrator's functions: s2s.preview() (the exact request of one
 *		delivery, through the same select list, mapper and renderer as the worker) and
 *		s2s.wake() (wake the worker when the current transaction commits).
 *
 * retry, retry_failed, pause and resume are plain SQL (40_events_admin.sql): they only
 * change rows, then call s2s.wake().
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "delivery_read.h"
#include "render.h"
#include "shared.h"

PG_FUNCTION_INFO_V1(s2s_preview);
PG_FUNCTION_INFO_V1(s2s_wake);

#define PREVIEW_QUERY \
	"SELECT " S2S_DELIVERY_SELECT_LIST \
	"  FROM s2s.deliveries d" \
	"  JOIN s2s.endpoints e ON e.name = d.endpoint" \
	"  LEFT JOIN s2s_private.endpoint_secrets s ON s.endpoint = e.name" \
	" WHERE d.id = $1"

/*
 * s2s.preview(delivery_id bigint, OUT method text, OUT url text, OUT headers text[],
 *			   OUT body text)
 */
Datum
s2s_preview(PG_FUNCTION_ARGS)
{
	int64		delivery_id = PG_GETARG_INT64(0);
	MemoryContext callercxt = CurrentMemoryContext;
	TupleDesc	resultdesc;
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	S2SReadColumns cols;
	S2SReadDelivery delivery;
	S2SRequest	request;
	const char *err;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	Datum	   *headers;
	int			i;
	int			rc;

	if (get_call_result_type(fcinfo, NULL, &resultdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "s2s.preview must be declared to return a record");
	resultdesc = BlessTupleDesc(resultdesc);

	SPI_connect();
	args[0] = Int64GetDatum(delivery_id);
	rc = SPI_execute_with_args(PREVIEW_QUERY, 1, argtypes, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "s2s.preview: SPI_execute_with_args returned %d", rc);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("delivery %lld does not exist", (long long) delivery_id)));

	/* Build the answer in the caller's memory: SPI_finish frees SPI's. */
	MemoryContextSwitchTo(callercxt);
	s2s_read_columns_init(&cols, SPI_tuptable->tupdesc);
	s2s_read_delivery_from_tuple(&cols, SPI_tuptable->tupdesc, SPI_tuptable->vals[0], &delivery);
	err = s2s_render_request(&delivery.endpoint_conf, &delivery.data, true, &request);
	SPI_finish();

	if (err != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("delivery %lld cannot be rendered: %s", (long long) delivery_id, err),
				 errdetail("The worker records the same reason when it meets this delivery.")));

	headers = palloc(sizeof(Datum) * Max(request.nheaders, 1));
	for (i = 0; i < request.nheaders; i++)
	{
		StringInfoData line;

		initStringInfo(&line);
		appendStringInfo(&line, "%s: %s", request.header_names[i], request.header_values[i]);
		headers[i] = CStringGetTextDatum(line.data);
	}

	values[0] = CStringGetTextDatum(request.method);
	values[1] = CStringGetTextDatum(request.url);
	values[2] = PointerGetDatum(construct_array(headers, request.nheaders, TEXTOID,
												-1, false, TYPALIGN_INT));
	if (request.body != NULL)
		values[3] = PointerGetDatum(cstring_to_text_with_len(request.body, request.body_len));
	else
		nulls[3] = true;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(resultdesc, values, nulls)));
}

/* s2s.wake(): the worker looks at the queue as soon as this transaction commits. */
Datum
s2s_wake(PG_FUNCTION_ARGS)
{
	s2s_wake_at_commit();
	PG_RETURN_VOID();
}
