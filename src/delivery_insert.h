/*
 * delivery_insert.h
 *		The orders trigger's write into s2s.deliveries: one row, INSERT ... ON CONFLICT
 *		(endpoint, dedupe_key) DO NOTHING (delivery_insert.c).
 */
#ifndef S2S_DELIVERY_INSERT_H
#define S2S_DELIVERY_INSERT_H

/*
 * The columns the trigger sets; every other column of s2s.deliveries gets its default.
 * The order is also the order of the $n of s2s_delivery_insert_statement().
 */
typedef enum S2SInsertColumn
{
	S2S_DC_ENDPOINT,			/* text */
	S2S_DC_KIND,				/* text: a value of s2s.delivery_kind */
	S2S_DC_DEDUPE_KEY,			/* text */
	S2S_DC_CONVERSION_ID,		/* text */
	S2S_DC_AMOUNT,				/* numeric */
	S2S_DC_CURRENCY,			/* text */
	S2S_DC_PAYMENT,				/* text */
	S2S_DC_CUSTOMER,			/* text */
	S2S_DC_CV,					/* text */
	S2S_DC_VOUCHER,				/* text */
	S2S_DC_CLICK_IDS,			/* text */
	S2S_DC_USER_ID,				/* text */
	S2S_DC_EVENT_ID,			/* text */
	S2S_DC_CLIENT_IP,			/* inet */
	S2S_DC_USER_AGENT,			/* text */
	S2S_DC_REFERER,				/* text */
	S2S_DC_STATUS,				/* text: a value of s2s.delivery_status */
	S2S_DC_LAST_ERROR,			/* text */
	S2S_DC_FINISHED_AT,			/* timestamptz */
	S2S_DC_ORDERED_AT,			/* timestamptz */
	S2S_DC_COUNT
} S2SInsertColumn;

/* Type of the value the caller passes for each column (TEXTOID, NUMERICOID, ...). */
extern Oid	s2s_delivery_column_type(S2SInsertColumn c);

/*
 * The statement INSERT ... ON CONFLICT (endpoint, dedupe_key) DO NOTHING with one $n per
 * S2SInsertColumn (palloc'd). A column the current version's update adds (ordered_at)
 * is left out while relid (s2s.deliveries) does not have it yet.
 */
extern char *s2s_delivery_insert_statement(Oid relid);

#endif							/* S2S_DELIVERY_INSERT_H */
