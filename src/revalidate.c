/*
 * revalidate.c
 *		s2s_private.delivery_problem(): the orders trigger's rules (delivery_check.c)
 *		applied to a delivery as s2s.deliveries holds it, for s2s.retry and
 *		s2s.retry_failed (40_events_admin.sql), so that a retry never sends what the
 *		trigger refused and the rules exist once.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "delivery_check.h"
#include "settings.h"

PG_FUNCTION_INFO_V1(s2s_delivery_problem_sql);

/* NULL also for an argument the SQL function of an earlier 0.4.0 script does not pass */
static const char *
text_arg(FunctionCallInfo fcinfo, int argno)
{
	return argno >= PG_NARGS() || PG_ARGISNULL(argno) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * s2s_private.delivery_problem(endpoint_kind text, delivery_kind text, click_ids text,
 *		amount numeric, currency text, user_id text, event_id text, has_client_ip boolean,
 *		user_agent text, judged_at timestamptz, attribution_window_s bigint,
 *		last_error text, OUT problem text, OUT click_ids text)
 *
 * A delivery's values judged by the rules the orders trigger applied (delivery_check.c),
 * with the current click-ID settings, the click IDs at judged_at (when the order was
 * placed, or when the trigger judged them) and with the endpoint's attribution window in
 * seconds (NULL: s2s_tracking.click_ttl), as the trigger judges them. An Affilae
 * conversion without an amount is one without a sale (a lead), unless the trigger skipped
 * it for that very reason (last_error): a sale stays refused until its amount is filled in. problem is NULL when the delivery may be sent; click_ids is then, for an Affilae
 * conversion, its valid click IDs normalised.
 */
Datum
s2s_delivery_problem_sql(PG_FUNCTION_ARGS)
{
	S2SDeliveryFacts f;
	TupleDesc	resultdesc;
	const char *kind = text_arg(fcinfo, 0);
	const char *dkind = text_arg(fcinfo, 1);
	const char *problem;
	char	   *click_ids;
	Datum		values[2];
	bool		nulls[2] = {true, true};

	if (get_call_result_type(fcinfo, NULL, &resultdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "s2s_private.delivery_problem must be declared to return a record");
	resultdesc = BlessTupleDesc(resultdesc);

	memset(&f, 0, sizeof(f));
	if (kind == NULL || !s2s_endpoint_kind_parse(kind, &f.kind))
		problem = "The delivery's endpoint does not exist.";
	else
	{
		f.is_event = dkind != NULL && strcmp(dkind, "event") == 0;
		f.click_ids = text_arg(fcinfo, 2);
		f.has_amount = !PG_ARGISNULL(3);
		f.amount_required = f.kind == S2S_KIND_AFFILAE && !f.is_event && text_arg(fcinfo, 11) != NULL &&
			strcmp(text_arg(fcinfo, 11), S2S_REASON_AMOUNT_NULL) == 0;
		if (f.has_amount)
			f.amount = PG_GETARG_NUMERIC(3);
		f.currency = text_arg(fcinfo, 4);
		f.user_id = text_arg(fcinfo, 5);
		f.event_id = text_arg(fcinfo, 6);
		f.has_client_ip = !PG_ARGISNULL(7) && PG_GETARG_BOOL(7);
		f.user_agent = text_arg(fcinfo, 8);
		f.judged_at_s = PG_ARGISNULL(9) ?
			(int64) timestamptz_to_time_t(GetCurrentTransactionStartTimestamp()) :
			(int64) timestamptz_to_time_t(PG_GETARG_TIMESTAMPTZ(9));
		f.click_ttl_s = PG_NARGS() <= 10 || PG_ARGISNULL(10) || PG_GETARG_INT64(10) <= 0 ?
			s2s_click_ttl_s : PG_GETARG_INT64(10);
		f.click_max_skew_s = s2s_click_max_skew_s;
		f.cookie_max_ids = s2s_cookie_max_ids;
		problem = s2s_delivery_problem(&f, &click_ids);
		if (problem == NULL && click_ids != NULL)
		{
			values[1] = CStringGetTextDatum(click_ids);
			nulls[1] = false;
		}
	}
	if (problem != NULL)
	{
		values[0] = CStringGetTextDatum(problem);
		nulls[0] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(resultdesc, values, nulls)));
}
