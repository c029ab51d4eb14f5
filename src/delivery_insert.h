/*
 * delivery_insert.h
 *		The orders trigger's write into s2s.deliveries: one row, INSERT ... ON CONFLICT
 *		(endpoint, dedupe_key) DO NOTHING, done directly through the table access method
 *		(delivery_insert.c explains why and when).
 */
#ifndef S2S_DELIVERY_INSERT_H
#define S2S_DELIVERY_INSERT_H

#include "postgres.h"

/*
 * The columns the trigger sets; every other column of s2s.deliveries gets its default.
 * The order is also the order of the $n of s2s_delivery_insert_statement().
 */
typedef enum S2SDeliveryColumn
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
} S2SDeliveryColumn;

/* Type of the value the caller passes for each column (TEXTOID, NUMERICOID, ...). */
extern Oid	s2s_delivery_column_type(S2SDeliveryColumn c);

/*
 * The statement the direct insert stands for, INSERT ... ON CONFLICT (endpoint,
 * dedupe_key) DO NOTHING with one $n per S2SDeliveryColumn, for the caller to run where
 * s2s_delivery_insert_direct cannot serve (palloc'd). A column the current version's
 * update adds (ordered_at) is left out while relid (s2s.deliveries) does not have it yet.
 */
extern char *s2s_delivery_insert_statement(Oid relid);

/*
 * Inserts the row unless a delivery with the same (endpoint, dedupe_key) exists, waiting,
 * as INSERT ... ON CONFLICT DO NOTHING does, for a concurrent transaction inserting the
 * same key to decide. Sets *inserted. With probe (the key is likely to exist), the key
 * is looked up before anything is written, so that finding it leaves no trace (no dead
 * tuple, no identity value spent); without, the row is inserted at once and taken back
 * on a conflict, which is cheaper when a conflict is rare. Returns false, having done
 * nothing, when the table has something only the executor handles (a trigger of the
 * shop's, row-level security, a generated column, no matching unique index): the caller
 * then runs the statement. relid is s2s.deliveries. Call as its owner, in a
 * transaction, with a snapshot.
 */
extern bool s2s_delivery_insert_direct(Oid relid, const Datum *values, const bool *isnull,
									   bool probe, bool *inserted);

/* Forgets what was cached about s2s.deliveries (a relcache invalidation of relid). */
extern void s2s_delivery_insert_invalidate(Oid relid);

#endif							/* S2S_DELIVERY_INSERT_H */
