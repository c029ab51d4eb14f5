/*
 * trigger_args.c
 *		Parsing of the orders trigger's arguments and the per-kind rules (pure: no
 *		catalog, no ereport; see trigger_args.h for the syntax).
 *
 * The same code checks the arguments when s2s.track_orders creates the trigger and when
 * the trigger first fires in a backend, so a hand-written trigger is held to the same
 * rules as one that track_orders made.
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "trigger_args.h"

const char *const s2s_field_names[S2S_NFIELDS] = {
	"order_id", "amount", "currency", "click_ids", "customer", "payment", "voucher",
	"cv", "client_ip", "user_agent", "referer", "status", "user_id", "event_id",
	"order_time", "validated_when"
};

bool
s2s_payment_value_is_valid(const char *v)
{
	return strcmp(v, "online") == 0 || strcmp(v, "bankwire") == 0 || strcmp(v, "other") == 0;
}

/*
 * Constants make sense only for free text copied as is. The order ID, the amount, the
 * click IDs, the client IP, the status and the Swaarm user ID identify or describe one
 * order, so a constant there is always a mistake.
 */
bool
s2s_field_allows_constant(S2SField f)
{
	switch (f)
	{
		case S2S_F_CURRENCY:
		case S2S_F_CUSTOMER:
		case S2S_F_PAYMENT:
		case S2S_F_VOUCHER:
		case S2S_F_CV:
		case S2S_F_USER_AGENT:
		case S2S_F_REFERER:
		case S2S_F_EVENT_ID:
			return true;
		default:
			return false;
	}
}

/* 'it''s' -> it's; NULL when value is not a well-formed literal. */
static char *
unquote_literal(const char *value, size_t len)
{
	StringInfoData buf;
	size_t		i;

	if (len < 2 || value[0] != '\'' || value[len - 1] != '\'')
		return NULL;
	initStringInfo(&buf);
	for (i = 1; i < len - 1; i++)
	{
		if (value[i] == '\'')
		{
			/* inside the quotes a quote must be doubled */
			if (i + 1 >= len - 1 || value[i + 1] != '\'')
			{
				pfree(buf.data);
				return NULL;
			}
			i++;
		}
		appendStringInfoChar(&buf, value[i]);
	}
	return buf.data;
}

char *
s2s_trigger_args_parse(int nargs, char **args, S2STriggerArgs *out)
{
	int			i;

	memset(out, 0, sizeof(*out));
	out->validated = palloc0(sizeof(char *) * Max(nargs, 1));

	for (i = 0; i < nargs; i++)
	{
		const char *arg = args[i];
		const char *eq = strchr(arg, '=');
		const char *value;
		size_t		keylen;
		size_t		vlen;
		bool		is_expr = false;
		int			f;

		if (eq == NULL)
			return psprintf("Argument %d (\"%s\") is not of the form key=value.", i + 1, arg);
		keylen = eq - arg;
		value = eq + 1;
		vlen = strlen(value);
		if (vlen == 0)
			return psprintf("Argument \"%.*s\" has an empty value.", (int) keylen, arg);

		if (keylen == 8 && strncmp(arg, "endpoint", 8) == 0)
		{
			if (out->endpoint != NULL)
				return pstrdup("The endpoint is given more than once.");
			out->endpoint = value;
			continue;
		}
		if (keylen == 16 && strncmp(arg, "validated_status", 16) == 0)
		{
			out->validated[out->nvalidated++] = value;
			continue;
		}
		if (keylen == 11 && strncmp(arg, "payment_map", 11) == 0)
		{
			if (out->payment_map != NULL)
				return pstrdup("The payment_map is given more than once.");
			out->payment_map = value;
			continue;
		}
		/* "amount:expr": the value is an expression, not a column name */
		if (keylen > 5 && strncmp(eq - 5, ":expr", 5) == 0)
		{
			is_expr = true;
			keylen -= 5;
		}
		for (f = 0; f < S2S_NFIELDS; f++)
			if (strlen(s2s_field_names[f]) == keylen &&
				strncmp(arg, s2s_field_names[f], keylen) == 0)
				break;
		if (f == S2S_NFIELDS)
			return psprintf("Unknown argument \"%.*s\".", (int) keylen, arg);
		if (out->fields[f].column != NULL || out->fields[f].constant != NULL ||
			out->fields[f].expr != NULL)
			return psprintf("Argument \"%s\" is given more than once.", s2s_field_names[f]);

		if (is_expr)
		{
			if (f == S2S_F_STATUS)
				return pstrdup("Argument \"status\" must name a column; validated_when takes an expression.");
			out->fields[f].expr = value;
		}
		else if (value[0] == '\'' && vlen >= 2 && value[vlen - 1] == '\'')
		{
			char	   *constant;

			if (!s2s_field_allows_constant((S2SField) f))
				return psprintf("Argument \"%s\" must name a column, not a constant.",
								s2s_field_names[f]);
			constant = unquote_literal(value, vlen);
			if (constant == NULL)
				return psprintf("The constant given for \"%s\" is not a well-formed string literal: a quote inside it must be doubled.",
								s2s_field_names[f]);
			if (constant[0] == '\0')
				return psprintf("The constant given for \"%s\" is empty.", s2s_field_names[f]);
			out->fields[f].constant = constant;
		}
		else
			out->fields[f].column = value;
	}

	if (out->endpoint == NULL)
		return pstrdup("No endpoint is given.");
	if (out->fields[S2S_F_ORDER_ID].column == NULL && out->fields[S2S_F_ORDER_ID].expr == NULL)
		return pstrdup("The order_id column is required: it makes each order's delivery unique.");
	if (out->fields[S2S_F_STATUS].column != NULL && out->nvalidated == 0)
		return pstrdup("A status column is given without validated statuses.");
	if (out->fields[S2S_F_STATUS].column == NULL && out->nvalidated > 0)
		return pstrdup("Validated statuses are given without a status column.");
	if (out->payment_map != NULL && out->fields[S2S_F_PAYMENT].column == NULL &&
		out->fields[S2S_F_PAYMENT].expr == NULL)
		return pstrdup("A payment_map is given without a payment column or expression.");
	return NULL;
}

static const char *const kind_names[] = {"affilae", "swaarm_postback", "swaarm_s2sevent"};

bool
s2s_endpoint_kind_parse(const char *name, S2SEndpointKind *kind)
{
	int			k;

	for (k = 0; k < lengthof(kind_names); k++)
		if (strcmp(name, kind_names[k]) == 0)
		{
			*kind = (S2SEndpointKind) k;
			return true;
		}
	return false;
}

const char *
s2s_endpoint_kind_name(S2SEndpointKind kind)
{
	return kind_names[kind];
}

static bool
given(const S2STriggerArgs *a, S2SField f)
{
	return a->fields[f].column != NULL || a->fields[f].constant != NULL ||
		a->fields[f].expr != NULL;
}

char *
s2s_trigger_args_check_kind(const S2STriggerArgs *a, S2SEndpointKind kind)
{
	/* amount only for a sale: a lead or a sign-up has none (doc/orders.md) */
	static const S2SField affilae_req[] = {S2S_F_CLICK_IDS};
	static const S2SField affilae_no[] = {S2S_F_USER_ID, S2S_F_EVENT_ID};
	static const S2SField postback_req[] = {S2S_F_USER_ID, S2S_F_EVENT_ID};
	/* order_time serves the click window, which only Affilae click IDs have */
	static const S2SField postback_no[] = {S2S_F_CLICK_IDS, S2S_F_CUSTOMER, S2S_F_PAYMENT,
	S2S_F_VOUCHER, S2S_F_CV, S2S_F_REFERER, S2S_F_ORDER_TIME};
	static const S2SField s2sevent_req[] = {S2S_F_USER_ID, S2S_F_EVENT_ID, S2S_F_CLIENT_IP,
	S2S_F_USER_AGENT};
	static const S2SField s2sevent_no[] = {S2S_F_AMOUNT, S2S_F_CURRENCY, S2S_F_CLICK_IDS,
		S2S_F_CUSTOMER, S2S_F_PAYMENT, S2S_F_VOUCHER, S2S_F_CV, S2S_F_REFERER, S2S_F_ORDER_TIME};
	const S2SField *req;
	const S2SField *no;
	int			nreq;
	int			nno;
	int			i;

	switch (kind)
	{
		case S2S_KIND_AFFILAE:
			req = affilae_req, nreq = lengthof(affilae_req);
			no = affilae_no, nno = lengthof(affilae_no);
			break;
		case S2S_KIND_SWAARM_POSTBACK:
			req = postback_req, nreq = lengthof(postback_req);
			no = postback_no, nno = lengthof(postback_no);
			break;
		default:
			req = s2sevent_req, nreq = lengthof(s2sevent_req);
			no = s2sevent_no, nno = lengthof(s2sevent_no);
			break;
	}
	for (i = 0; i < nreq; i++)
		if (!given(a, req[i]))
			return psprintf("An endpoint of kind %s needs the argument %s.",
							kind_names[kind], s2s_field_names[req[i]]);
	for (i = 0; i < nno; i++)
		if (given(a, no[i]))
			return psprintf("An endpoint of kind %s does not send %s; leave that argument out.",
							kind_names[kind], s2s_field_names[no[i]]);
	return NULL;
}
