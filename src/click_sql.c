/*
 * click_sql.c
 *		The SQL-callable click-ID functions of the app layer: s2s.is_valid_click_id,
 *		s2s.click_time, s2s.record_click, s2s.click_ids, s2s.cookie_merge and
 *		s2s.set_cookie_header (declared in sql/install/20_clicks.sql).
 *
 * The parsing itself is in click.c (pure); this file reads the settings, turns the
 * messages click.c returns into errors (SQLSTATE 22023), and stores clicks with SPI.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "click.h"
#include "settings.h"

PG_FUNCTION_INFO_V1(s2s_is_valid_click_id);
PG_FUNCTION_INFO_V1(s2s_click_time);
PG_FUNCTION_INFO_V1(s2s_record_click);
PG_FUNCTION_INFO_V1(s2s_click_ids);
PG_FUNCTION_INFO_V1(s2s_cookie_merge);
PG_FUNCTION_INFO_V1(s2s_set_cookie_header);

typedef enum ClickNetwork
{
	NETWORK_AFFILAE,
	NETWORK_SWAARM
} ClickNetwork;

/* user_agent, referer and landing_url are cut to this many bytes when recorded. */
#define RECORD_TEXT_MAX 8192

/* At most this many bytes of a refused value are quoted in an error message. */
#define QUOTE_MAX 40

static char *quote_value(const char *s, size_t len);

/*
 * The clock the click-ID checks use: the transaction's start, like now(), so that every
 * check in one statement or transaction agrees and tests can build IDs from now().
 */
static int64
now_seconds(void)
{
	return (int64) timestamptz_to_time_t(GetCurrentTransactionStartTimestamp());
}

static ClickNetwork
parse_network(text *network)
{
	char	   *name;

	if (network == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("click network must not be null"),
				 errhint("Use 'affilae' or 'swaarm'.")));
	name = text_to_cstring(network);
	if (strcmp(name, "affilae") == 0)
		return NETWORK_AFFILAE;
	if (strcmp(name, "swaarm") == 0)
		return NETWORK_SWAARM;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown click network \"%s\"", quote_value(name, strlen(name))),
			 errhint("Use 'affilae' or 'swaarm'.")));
	pg_unreachable();
}

/*
 * The start of a refused value, for a message: at most QUOTE_MAX bytes, whole characters,
 * control characters shown as \xNN so that a message never carries a raw CR or LF.
 */
static char *
quote_value(const char *s, size_t len)
{
	int			cut = pg_mbcliplen(s, (int) Min(len, (size_t) (QUOTE_MAX + MAX_MULTIBYTE_CHAR_LEN)),
								   QUOTE_MAX);
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < cut; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c < 0x20 || c == 0x7f)
			appendStringInfo(&buf, "\\x%02X", c);
		else
			appendStringInfoChar(&buf, (char) c);
	}
	if ((size_t) cut < len)
		appendStringInfoString(&buf, "...");
	return buf.data;
}

/*
 * Checks one click ID; returns true when valid. With report, raises the error that says
 * what is wrong instead of returning false. For Affilae, *norm (25 bytes) gets the
 * lower-cased ID and *clicked_s its embedded time.
 */
static bool
check_click(ClickNetwork network, const char *id, size_t len, bool report,
			char *norm, int64 *clicked_s)
{
	S2SClickProblem problem = S2S_CLICK_OK;
	char	   *detail;

	if (network == NETWORK_SWAARM)
	{
		detail = s2s_swaarm_check(id, len);
		if (detail != NULL && report)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid Swaarm click ID \"%s\"", quote_value(id, len)),
					 errdetail("%s", detail)));
		return detail == NULL;
	}

	detail = s2s_affilae_check(id, len, now_seconds(), s2s_click_ttl_s,
							   s2s_click_max_skew_s, clicked_s, &problem);
	if (detail == NULL)
	{
		if (norm)
			s2s_affilae_normalize(id, norm);
		return true;
	}
	if (!report)
		return false;
	switch (problem)
	{
		case S2S_CLICK_FUTURE:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("Affilae click ID \"%s\" is from the future", quote_value(id, len)),
					 errdetail("%s", detail),
					 errhint("s2s_tracking.click_max_skew sets how far ahead of the server's clock a click ID may be.")));
			break;
		case S2S_CLICK_EXPIRED:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("expired Affilae click ID \"%s\"", quote_value(id, len)),
					 errdetail("%s", detail),
					 errhint("s2s_tracking.click_ttl sets the attribution window.")));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid Affilae click ID \"%s\"", quote_value(id, len)),
					 errdetail("%s", detail)));
	}
	return false;
}

/* s2s.is_valid_click_id(click_id text, network text) -> boolean; STRICT */
Datum
s2s_is_valid_click_id(PG_FUNCTION_ARGS)
{
	text	   *id = PG_GETARG_TEXT_PP(0);
	ClickNetwork network = parse_network(PG_GETARG_TEXT_PP(1));

	PG_RETURN_BOOL(check_click(network, VARDATA_ANY(id), VARSIZE_ANY_EXHDR(id), false,
							   NULL, NULL));
}

/* s2s.click_time(click_id text) -> timestamptz; STRICT, no time-window check */
Datum
s2s_click_time(PG_FUNCTION_ARGS)
{
	text	   *id = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(id);
	size_t		len = VARSIZE_ANY_EXHDR(id);
	char	   *detail = s2s_affilae_check_format(s, len);

	if (detail != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid Affilae click ID \"%s\"", quote_value(s, len)),
				 errdetail("%s", detail)));
	PG_RETURN_TIMESTAMPTZ(time_t_to_timestamptz((pg_time_t) s2s_affilae_time(s)));
}

/* A text argument cut to RECORD_TEXT_MAX bytes (whole characters), or NULL. */
static Datum
capped_text_arg(FunctionCallInfo fcinfo, int n, char *nulls)
{
	text	   *t;
	int			len;

	if (PG_ARGISNULL(n))
	{
		*nulls = 'n';
		return (Datum) 0;
	}
	*nulls = ' ';
	t = PG_GETARG_TEXT_PP(n);
	len = VARSIZE_ANY_EXHDR(t);
	if (len <= RECORD_TEXT_MAX)
		return PointerGetDatum(t);
	len = pg_mbcliplen(VARDATA_ANY(t), len, RECORD_TEXT_MAX);
	return PointerGetDatum(cstring_to_text_with_len(VARDATA_ANY(t), len));
}

/*
 * s2s.record_click(click_id, ip, user_agent, referer, landing_url, network) -> bigint
 *
 * Validates, then stores the click once: a second call for the same (network, click_id)
 * changes nothing and returns the id of the row the first call stored.
 */
Datum
s2s_record_click(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr insert_plan = NULL;
	static SPIPlanPtr select_plan = NULL;
	ClickNetwork network = parse_network(PG_ARGISNULL(5) ? NULL : PG_GETARG_TEXT_PP(5));
	const char *network_name = network == NETWORK_AFFILAE ? "affilae" : "swaarm";
	text	   *id;
	char		norm[S2S_AFFILAE_ID_LEN + 1];
	int64		clicked_s = 0;
	Datum		values[7];
	char		nulls[8] = "       ";
	int64		row_id = 0;
	bool		found = false;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s click ID", network == NETWORK_AFFILAE ? "Affilae" : "Swaarm"),
				 errdetail("The click ID is NULL.")));
	id = PG_GETARG_TEXT_PP(0);
	check_click(network, VARDATA_ANY(id), VARSIZE_ANY_EXHDR(id), true, norm, &clicked_s);

	values[0] = CStringGetTextDatum(network_name);
	if (network == NETWORK_AFFILAE)
	{
		values[1] = CStringGetTextDatum(norm);
		values[2] = TimestampTzGetDatum(time_t_to_timestamptz((pg_time_t) clicked_s));
	}
	else
	{
		values[1] = PointerGetDatum(id);
		values[2] = (Datum) 0;
		nulls[2] = 'n';
	}
	if (PG_ARGISNULL(1))
	{
		values[3] = (Datum) 0;
		nulls[3] = 'n';
	}
	else
		values[3] = PG_GETARG_DATUM(1);
	values[4] = capped_text_arg(fcinfo, 2, &nulls[4]);
	values[5] = capped_text_arg(fcinfo, 3, &nulls[5]);
	values[6] = capped_text_arg(fcinfo, 4, &nulls[6]);

	SPI_connect();
	if (insert_plan == NULL)
	{
		Oid			types[7] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, INETOID, TEXTOID, TEXTOID, TEXTOID};
		SPIPlanPtr	plan;

		plan = SPI_prepare("INSERT INTO s2s.clicks"
						   " (network, click_id, clicked_at, ip, user_agent, referer, landing_url)"
						   " VALUES ($1, $2, $3, $4, $5, $6, $7)"
						   " ON CONFLICT (network, click_id) DO NOTHING RETURNING id",
						   7, types);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for the clicks insert: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		insert_plan = plan;

		plan = SPI_prepare("SELECT id FROM s2s.clicks WHERE network = $1 AND click_id = $2",
						   2, types);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for the clicks lookup: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		select_plan = plan;
	}

	/*
	 * Insert, or find the row that is already there. Each statement takes a fresh
	 * snapshot (READ COMMITTED), so a conflict with a concurrent insert that committed is
	 * followed by a lookup that sees it; the second round covers a row deleted in between.
	 */
	for (int round = 0; round < 2 && !found; round++)
	{
		if (SPI_execute_plan(insert_plan, values, nulls, false, 1) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not insert into s2s.clicks");
		if (SPI_processed == 0)
		{
			if (SPI_execute_plan(select_plan, values, nulls, false, 1) != SPI_OK_SELECT)
				elog(ERROR, "could not look up s2s.clicks");
		}
		if (SPI_processed > 0)
		{
			bool		isnull;

			row_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 1, &isnull));
			found = !isnull;
		}
	}
	SPI_finish();
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not record the click: a concurrent transaction deleted it"),
				 errhint("Retry the call.")));
	PG_RETURN_INT64(row_id);
}

/* s2s.click_ids(value text) -> text[]; STRICT: every valid ID, oldest first, no cap */
Datum
s2s_click_ids(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);
	char	  **ids;
	int			n;
	Datum	   *elems;
	ArrayType  *result;

	n = s2s_cookie_ids(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value), now_seconds(),
					   s2s_click_ttl_s, s2s_click_max_skew_s, 0, &ids);
	if (n == 0)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(TEXTOID));
	elems = palloc_extended((size_t) n * sizeof(Datum), MCXT_ALLOC_HUGE);
	for (int i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(ids[i]);
	result = construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT);
	PG_RETURN_ARRAYTYPE_P(result);
}

/*
 * s2s.cookie_merge(cookie text, click_id text) -> text
 *
 * NULL cookie = no cookie yet; NULL or invalid click_id = nothing to add (the cookie is
 * still cleaned). Never NULL: "" when no valid ID is left.
 */
Datum
s2s_cookie_merge(PG_FUNCTION_ARGS)
{
	text	   *cookie = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	text	   *id = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	size_t		clen = cookie ? VARSIZE_ANY_EXHDR(cookie) : 0;
	size_t		ilen = id ? VARSIZE_ANY_EXHDR(id) : 0;
	char	   *joined = palloc_extended(clen + ilen + 2, MCXT_ALLOC_HUGE);
	char	   *w = joined;

	if (clen > 0)
	{
		memcpy(w, VARDATA_ANY(cookie), clen);
		w += clen;
	}
	*w++ = '-';
	if (ilen > 0)
	{
		memcpy(w, VARDATA_ANY(id), ilen);
		w += ilen;
	}
	PG_RETURN_TEXT_P(cstring_to_text(s2s_cookie_normalize(joined, w - joined, now_seconds(),
														  s2s_click_ttl_s, s2s_click_max_skew_s,
														  s2s_cookie_max_ids, NULL)));
}

/*
 * Whole seconds of an interval, rounded down, counted as extract(epoch FROM ...) counts
 * them: a year is 365.25 days, a month 30 days. No overflow: |month| < 2^31.
 */
static int64
interval_seconds(Interval *iv)
{
	int64		s = (int64) (iv->month / MONTHS_PER_YEAR) * (int64) (DAYS_PER_YEAR * SECS_PER_DAY) +
		(int64) (iv->month % MONTHS_PER_YEAR) * DAYS_PER_MONTH * SECS_PER_DAY +
		(int64) iv->day * SECS_PER_DAY + iv->time / USECS_PER_SEC;

	if (iv->time % USECS_PER_SEC < 0)
		s--;
	return s;
}

/*
 * s2s.set_cookie_header(value text, name text, max_age interval) -> text
 *
 * NULL value: NULL (no cookie to set). NULL max_age: s2s_tracking.click_ttl, capped at
 * the 400 days browsers keep a cookie.
 */
Datum
s2s_set_cookie_header(PG_FUNCTION_ARGS)
{
	text	   *value;
	text	   *name;
	const char *v,
			   *n;
	size_t		vlen,
				nlen;
	int64		max_age;
	char	   *detail;
	char	   *header;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	value = PG_GETARG_TEXT_PP(0);
	v = VARDATA_ANY(value);
	vlen = VARSIZE_ANY_EXHDR(value);

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid cookie name"),
				 errdetail("The cookie name is NULL.")));
	name = PG_GETARG_TEXT_PP(1);
	n = VARDATA_ANY(name);
	nlen = VARSIZE_ANY_EXHDR(name);

	if (PG_ARGISNULL(2))
		max_age = Min((int64) s2s_click_ttl_s, (int64) S2S_COOKIE_MAX_AGE_S);
	else
		max_age = interval_seconds(PG_GETARG_INTERVAL_P(2));

	if ((detail = s2s_cookie_name_check(n, nlen)) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid cookie name \"%s\"", quote_value(n, nlen)),
				 errdetail("%s", detail),
				 errhint("A cookie name is made of visible ASCII characters other than ()<>@,;:\\\"/[]?={}.")));
	if ((detail = s2s_cookie_value_check(v, vlen)) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid cookie value \"%s\"", quote_value(v, vlen)),
				 errdetail("%s", detail),
				 errhint("A cookie value is made of visible ASCII characters other than '\"', ',', ';' and '\\'.")));
	if (nlen + vlen > S2S_COOKIE_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cookie too long"),
				 errdetail("The cookie name and value are %zu bytes long; browsers keep at most %d.",
						   nlen + vlen, S2S_COOKIE_MAX_BYTES)));
	if (max_age < 0 || max_age > S2S_COOKIE_MAX_AGE_S)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cookie max_age out of range"),
				 errdetail("Max-Age must be between 0 and 400 days (%d seconds), got %lld seconds.",
						   S2S_COOKIE_MAX_AGE_S, (long long) max_age),
				 errhint("Browsers keep a cookie at most 400 days; 0 deletes it.")));

	header = s2s_cookie_header(n, nlen, v, vlen, max_age, &detail);
	if (header == NULL)			/* cannot happen: every check above passed */
		elog(ERROR, "could not build the Set-Cookie header: %s", detail);
	PG_RETURN_TEXT_P(cstring_to_text(header));
}
