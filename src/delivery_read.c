/*
 * delivery_read.c
 *		Maps a row of S2S_DELIVERY_SELECT_LIST onto S2SReadDelivery (endpoint configuration and
 *		request parameters), for the worker's claim and for s2s.preview() alike.
 *
 * Column positions are looked up by name once per TupleDesc (s2s_read_columns_init),
 * so that a batch of thousands of rows costs one heap_getattr per field and no name
 * lookups.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "delivery_read.h"

static int
column(TupleDesc tupdesc, const char *name, Oid type)
{
	int			attnum = SPI_fnumber(tupdesc, name);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("delivery query does not return column \"%s\"", name)));
	if (TupleDescAttr(tupdesc, attnum - 1)->atttypid != type)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("delivery query column \"%s\" has type %s, expected %s", name,
						format_type_be(TupleDescAttr(tupdesc, attnum - 1)->atttypid),
						format_type_be(type))));
	return attnum;
}

void
s2s_read_columns_init(S2SReadColumns *cols, TupleDesc tupdesc)
{
	cols->id = column(tupdesc, "s2s_id", INT8OID);
	cols->endpoint = column(tupdesc, "s2s_endpoint", TEXTOID);
	cols->delivery_kind = column(tupdesc, "s2s_delivery_kind", TEXTOID);
	cols->attempts = column(tupdesc, "s2s_attempts", INT4OID);
	cols->first_attempt_at = column(tupdesc, "s2s_first_attempt_at", TIMESTAMPTZOID);
	cols->created_at = column(tupdesc, "s2s_created_at", TIMESTAMPTZOID);
	cols->endpoint_kind = column(tupdesc, "s2s_endpoint_kind", TEXTOID);
	cols->url = column(tupdesc, "s2s_url", TEXTOID);
	cols->secret = column(tupdesc, "s2s_secret", TEXTOID);
	cols->http_method = column(tupdesc, "s2s_http_method", TEXTOID);
	cols->token_in_query = column(tupdesc, "s2s_token_in_query", BOOLOID);
	cols->refused_pattern = column(tupdesc, "s2s_refused_pattern", TEXTOID);
	cols->max_concurrency = column(tupdesc, "s2s_max_concurrency", INT4OID);
	cols->request_timeout_ms = column(tupdesc, "s2s_request_timeout_ms", INT8OID);
	cols->retry_window_s = column(tupdesc, "s2s_retry_window_s", INT8OID);
	cols->conversion_id = column(tupdesc, "s2s_conversion_id", TEXTOID);
	cols->amount = column(tupdesc, "s2s_amount", TEXTOID);
	cols->currency = column(tupdesc, "s2s_currency", TEXTOID);
	cols->payment = column(tupdesc, "s2s_payment", TEXTOID);
	cols->customer = column(tupdesc, "s2s_customer", TEXTOID);
	cols->cv = column(tupdesc, "s2s_cv", TEXTOID);
	cols->voucher = column(tupdesc, "s2s_voucher", TEXTOID);
	cols->click_ids = column(tupdesc, "s2s_click_ids", TEXTOID);
	cols->user_id = column(tupdesc, "s2s_user_id", TEXTOID);
	cols->event_id = column(tupdesc, "s2s_event_id", TEXTOID);
	cols->event_value = column(tupdesc, "s2s_event_value", TEXTOID);
	cols->aggregated_event_value = column(tupdesc, "s2s_aggregated_event_value", TEXTOID);
	cols->client_ip = column(tupdesc, "s2s_client_ip", TEXTOID);
	cols->user_agent = column(tupdesc, "s2s_user_agent", TEXTOID);
	cols->referer = column(tupdesc, "s2s_referer", TEXTOID);
}

/* A text column as a palloc'd C string, NULL for SQL NULL. */
static char *
get_text(HeapTuple tuple, TupleDesc tupdesc, int attnum)
{
	bool		isnull;
	Datum		value = heap_getattr(tuple, attnum, tupdesc, &isnull);

	return isnull ? NULL : TextDatumGetCString(value);
}

void
s2s_read_delivery_from_tuple(const S2SReadColumns *cols, TupleDesc tupdesc,
						HeapTuple tuple, S2SReadDelivery *out)
{
	bool		isnull;
	Datum		value;
	char	   *kind;
	char	   *delivery_kind;

	memset(out, 0, sizeof(*out));

	out->id = DatumGetInt64(heap_getattr(tuple, cols->id, tupdesc, &isnull));
	out->endpoint = get_text(tuple, tupdesc, cols->endpoint);
	delivery_kind = get_text(tuple, tupdesc, cols->delivery_kind);
	out->is_event = delivery_kind != NULL && strcmp(delivery_kind, "event") == 0;
	value = heap_getattr(tuple, cols->attempts, tupdesc, &isnull);
	out->attempts = isnull ? 0 : DatumGetInt32(value);
	value = heap_getattr(tuple, cols->first_attempt_at, tupdesc, &isnull);
	out->has_first_attempt = !isnull;
	out->first_attempt_at = isnull ? 0 : DatumGetTimestampTz(value);
	value = heap_getattr(tuple, cols->created_at, tupdesc, &isnull);
	out->created_at = isnull ? 0 : DatumGetTimestampTz(value);
	value = heap_getattr(tuple, cols->max_concurrency, tupdesc, &isnull);
	out->max_concurrency = isnull ? 0 : DatumGetInt32(value);
	value = heap_getattr(tuple, cols->request_timeout_ms, tupdesc, &isnull);
	out->request_timeout_ms = isnull ? 0 : DatumGetInt64(value);
	value = heap_getattr(tuple, cols->retry_window_s, tupdesc, &isnull);
	out->retry_window_s = isnull ? -1 : DatumGetInt64(value);
	out->refused_pattern = get_text(tuple, tupdesc, cols->refused_pattern);

	kind = get_text(tuple, tupdesc, cols->endpoint_kind);
	if (kind == NULL || !s2s_parse_endpoint_kind(kind, &out->endpoint_conf.kind))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("delivery %lld has an unknown endpoint kind \"%s\"",
						(long long) out->id, kind ? kind : "")));
	out->endpoint_conf.url = get_text(tuple, tupdesc, cols->url);
	out->endpoint_conf.secret = get_text(tuple, tupdesc, cols->secret);
	out->endpoint_conf.http_method = get_text(tuple, tupdesc, cols->http_method);
	value = heap_getattr(tuple, cols->token_in_query, tupdesc, &isnull);
	out->endpoint_conf.token_in_query = !isnull && DatumGetBool(value);

	out->data.conversion_id = get_text(tuple, tupdesc, cols->conversion_id);
	out->data.amount = get_text(tuple, tupdesc, cols->amount);
	out->data.currency = get_text(tuple, tupdesc, cols->currency);
	out->data.payment = get_text(tuple, tupdesc, cols->payment);
	out->data.customer = get_text(tuple, tupdesc, cols->customer);
	out->data.cv = get_text(tuple, tupdesc, cols->cv);
	out->data.voucher = get_text(tuple, tupdesc, cols->voucher);
	out->data.click_ids = get_text(tuple, tupdesc, cols->click_ids);
	out->data.user_id = get_text(tuple, tupdesc, cols->user_id);
	out->data.event_id = get_text(tuple, tupdesc, cols->event_id);
	out->data.event_value = get_text(tuple, tupdesc, cols->event_value);
	out->data.aggregated_event_value = get_text(tuple, tupdesc, cols->aggregated_event_value);
	out->data.client_ip = get_text(tuple, tupdesc, cols->client_ip);
	out->data.user_agent = get_text(tuple, tupdesc, cols->user_agent);
	out->data.referer = get_text(tuple, tupdesc, cols->referer);
}
