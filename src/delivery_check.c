/*
 * delivery_check.c
 *		The rules a delivery must pass to be sent (pure: no catalog, no setting, no
 *		network). One copy serves the orders trigger (enqueue.c: a delivery that fails
 *		them is enqueued 'skipped' with the reason) and s2s.retry (admin.c: a delivery that
 *		still fails them is refused with the reason), so that a retry judges a delivery
 *		exactly as the trigger did.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "click.h"
#include "delivery_check.h"

bool
s2s_currency_is_valid(const char *c)
{
	return strlen(c) == 3 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' &&
		c[2] >= 'A' && c[2] <= 'Z';
}

static bool
empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

/*
 * The checks run in the order the trigger has always reported them: attribution, the
 * Swaarm event, the amount, the currency, then what a Swaarm s2sevent requires.
 */
const char *
s2s_delivery_problem(const S2SDeliveryFacts *f, char **click_ids_out)
{
	*click_ids_out = NULL;

	if (f->kind == S2S_KIND_AFFILAE && !f->is_event)
	{
		int			n;
		char	   *ids;

		/* the trigger enqueues nothing then; only an edited delivery gets here */
		if (empty(f->click_ids))
			return "The conversion has no click ID.";
		ids = s2s_cookie_normalize(f->click_ids, strlen(f->click_ids), f->judged_at_s,
								   f->click_ttl_s, f->click_max_skew_s, f->cookie_max_ids, &n);
		if (n == 0)
			return "No valid click ID: every click ID of the order is malformed, expired or in the future.";
		*click_ids_out = ids;
	}
	else if (f->kind != S2S_KIND_AFFILAE)
	{
		if (empty(f->user_id))
			return "The delivery has no Swaarm user ID.";
		/* an empty one is Swaarm's attribution-only s2sevent ("event_id=") */
		if (f->event_id == NULL ||
			(f->event_id[0] == '\0' && f->kind != S2S_KIND_SWAARM_S2SEVENT))
			return "The order has no event ID.";
	}

	if (!f->has_amount)
	{
		if (f->amount_required)
			return S2S_REASON_AMOUNT_NULL;
	}
	else if (numeric_is_nan(f->amount) || numeric_is_inf(f->amount))
		return "The order's amount is not a finite number.";
	else if (!f->is_event &&
			 DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(f->amount),
											   NumericGetDatum(int64_to_numeric(0)))) < 0)
		return "The order's amount is negative.";

	if (f->currency != NULL && !s2s_currency_is_valid(f->currency))
		return psprintf("The order's currency \"%s\" is not an ISO 4217 code (three letters).",
						f->currency);
	/* no implied currency: an Affilae conversion always names one, an amount too */
	if (f->currency == NULL &&
		((f->kind == S2S_KIND_AFFILAE && !f->is_event) ||
		 (f->has_amount && f->kind == S2S_KIND_SWAARM_POSTBACK)))
		return "The order has no currency and its endpoint names none.";

	if (f->kind == S2S_KIND_SWAARM_S2SEVENT)
	{
		if (!f->has_client_ip)
			return "The order has no valid client IP, which a Swaarm s2sevent requires.";
		if (f->user_agent == NULL)
			return "The order has no user agent, which a Swaarm s2sevent requires.";
	}
	return NULL;
}
