/*
 * first_seen.h
 *		s2s_private.order_first_seen: when the orders trigger first saw an order that
 *		carries a click ID and is not validated yet (first_seen.c).
 */
#ifndef S2S_FIRST_SEEN_H
#define S2S_FIRST_SEEN_H

#include "datatype/timestamp.h"

/*
 * Whether the table exists: a library newer than the installed SQL objects (before ALTER
 * EXTENSION UPDATE) runs without it, and the orders are then judged when validated.
 */
extern bool s2s_first_seen_installed(void);

/*
 * Records that order order_id of endpoint was first seen at at. A row already there stays,
 * unless replace: the order's click IDs changed, and the new ones were first seen at at.
 */
extern void s2s_first_seen_record(const char *endpoint, const char *order_id, TimestampTz at,
								  bool replace);

/* Removes the order's row; returns whether there was one, and its time in *at. */
extern bool s2s_first_seen_take(const char *endpoint, const char *order_id, TimestampTz *at);

#endif							/* S2S_FIRST_SEEN_H */
