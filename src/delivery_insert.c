/*
 * delivery_insert.c
 *		The orders trigger's write into s2s.deliveries: the statement
 *		INSERT ... ON CONFLICT (endpoint, dedupe_key) DO NOTHING, with one parameter per
 *		column the trigger sets (enqueue.c prepares it once per backend and runs it).
 *
 * The statement is the only write path: it applies whatever the shop adds to the table
 * (triggers, constraints, generated columns, row-level security) as any INSERT does, and
 * needs nothing of the executor's internals (doc/orders.md, "Performance", says why there
 * is no second, direct path).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/lsyscache.h"

#include "delivery_insert.h"

/* The columns: name, type of the value passed, and the cast the statement needs. */
static const struct
{
	const char *name;
	Oid			type;
	const char *cast;			/* a text value for an enum column, in the statement */
	bool		optional;		/* added by the current version's update: a library
								 * newer than the installed SQL objects leaves it out */
}			columns[S2S_DC_COUNT] =
{
	[S2S_DC_ENDPOINT] = {"endpoint", TEXTOID},
	[S2S_DC_KIND] = {"kind", TEXTOID, "s2s.delivery_kind"},
	[S2S_DC_DEDUPE_KEY] = {"dedupe_key", TEXTOID},
	[S2S_DC_CONVERSION_ID] = {"conversion_id", TEXTOID},
	[S2S_DC_AMOUNT] = {"amount", NUMERICOID},
	[S2S_DC_CURRENCY] = {"currency", TEXTOID},
	[S2S_DC_PAYMENT] = {"payment", TEXTOID},
	[S2S_DC_CUSTOMER] = {"customer", TEXTOID},
	[S2S_DC_CV] = {"cv", TEXTOID},
	[S2S_DC_VOUCHER] = {"voucher", TEXTOID},
	[S2S_DC_CLICK_IDS] = {"click_ids", TEXTOID},
	[S2S_DC_USER_ID] = {"user_id", TEXTOID},
	[S2S_DC_EVENT_ID] = {"event_id", TEXTOID},
	[S2S_DC_CLIENT_IP] = {"client_ip", INETOID},
	[S2S_DC_USER_AGENT] = {"user_agent", TEXTOID},
	[S2S_DC_REFERER] = {"referer", TEXTOID},
	[S2S_DC_STATUS] = {"status", TEXTOID, "s2s.delivery_status"},
	[S2S_DC_LAST_ERROR] = {"last_error", TEXTOID},
	[S2S_DC_FINISHED_AT] = {"finished_at", TIMESTAMPTZOID},
	[S2S_DC_ORDERED_AT] = {"ordered_at", TIMESTAMPTZOID, NULL, true},
};

Oid
s2s_delivery_column_type(S2SInsertColumn c)
{
	return columns[c].type;
}

char *
s2s_delivery_insert_statement(Oid relid)
{
	StringInfoData names;
	StringInfoData values;
	int			c;

	initStringInfo(&names);
	initStringInfo(&values);
	for (c = 0; c < S2S_DC_COUNT; c++)
	{
		if (columns[c].optional && get_attnum(relid, columns[c].name) == InvalidAttrNumber)
			continue;
		appendStringInfo(&names, "%s%s", c > 0 ? ", " : "", columns[c].name);
		appendStringInfo(&values, "%s$%d", c > 0 ? ", " : "", c + 1);
		if (columns[c].cast)
			appendStringInfo(&values, "::%s", columns[c].cast);
	}
	return psprintf("INSERT INTO s2s.deliveries (%s) VALUES (%s)"
					" ON CONFLICT (endpoint, dedupe_key) DO NOTHING",
					names.data, values.data);
}
