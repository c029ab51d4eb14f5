/*
 * delivery_check.h
 *		What a delivery must hold before it may be sent (pure): the rules the orders
 *		trigger applies when it enqueues a conversion, and s2s.retry applies again before
 *		it makes a delivery due, so that a retry never sends what the trigger refused.
 *
 * Nothing here reads the catalog or a setting: the caller passes the values (as the
 * trigger computed them, or as s2s.deliveries holds them), the endpoint's kind, the time
 * the click IDs are judged at and the click-ID settings.
 */
#ifndef S2S_DELIVERY_CHECK_H
#define S2S_DELIVERY_CHECK_H

#include "utils/numeric.h"

#include "trigger_args.h"

/* Longest raw click-ID value kept on a skipped delivery (whole characters). */
#define S2S_RAW_CLICK_IDS_MAX 1024

/* Longest invalid currency kept on a skipped delivery and quoted in its reason. */
#define S2S_RAW_CURRENCY_MAX 16

typedef struct S2SDeliveryFacts
{
	S2SEndpointKind kind;		/* the endpoint's kind */
	bool		is_event;		/* enqueued by s2s.track_event, not by the trigger */
	const char *click_ids;		/* Affilae: '-'-joined, raw or normalised; or NULL */
	bool		has_amount;
	bool		amount_required;	/* an Affilae sale: the trigger maps an amount */
	Numeric		amount;
	const char *currency;		/* the delivery's, else the endpoint's; NULL: neither */
	const char *user_id;		/* Swaarm */
	const char *event_id;		/* Swaarm */
	bool		has_client_ip;
	const char *user_agent;
	int64		judged_at_s;	/* Unix time the click IDs are judged at */
	int64		click_ttl_s;
	int64		click_max_skew_s;
	int			cookie_max_ids;
} S2SDeliveryFacts;

/*
 * The first reason why the delivery cannot be sent (a full sentence, the one the trigger
 * stores in last_error), or NULL when it can. For an Affilae conversion *click_ids_out
 * gets the valid click IDs, normalised ('-'-joined, oldest first), and otherwise NULL.
 */
extern const char *s2s_delivery_problem(const S2SDeliveryFacts *f, char **click_ids_out);

/* The reason an Affilae sale without its amount is skipped for (s2s.retry keeps to it). */
#define S2S_REASON_AMOUNT_NULL "The order's amount is NULL."

/* ISO 4217 form: three capital ASCII letters. */
extern bool s2s_currency_is_valid(const char *c);

#endif							/* S2S_DELIVERY_CHECK_H */
