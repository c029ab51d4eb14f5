/*
 * enqueue.h
 *		The orders trigger's resolved configuration, shared by the trigger
 *		(enqueue.c) and by s2s.track_orders (track_orders.c), which checks a new
 *		configuration with the very code the trigger will run.
 */
#ifndef S2S_ENQUEUE_H
#define S2S_ENQUEUE_H

#include "fmgr.h"
#include "nodes/bitmapset.h"
#include "utils/rel.h"

#include "mapping_expr.h"
#include "trigger_args.h"

/* How a column's value becomes what the delivery needs. */
typedef enum S2SValueHow
{
	S2S_HOW_NONE = 0,			/* field not configured */
	S2S_HOW_CONSTANT,			/* a constant from the trigger arguments */
	S2S_HOW_TEXT,				/* text, varchar (or a domain over them) */
	S2S_HOW_BPCHAR,				/* char(n): trailing blanks dropped */
	S2S_HOW_OUTPUT,				/* any other scalar: its output function */
	S2S_HOW_TEXT_ARRAY,			/* text[] / varchar[]: elements joined */
	S2S_HOW_NUMERIC,			/* amount columns */
	S2S_HOW_INT2,
	S2S_HOW_INT4,
	S2S_HOW_INT8,
	S2S_HOW_MONEY,
	S2S_HOW_INET,				/* inet, cidr */
	S2S_HOW_ENUM,				/* status: compared by enum value OID */
	S2S_HOW_TIMESTAMPTZ,		/* order_time */
	S2S_HOW_BOOL				/* validated_when */
} S2SValueHow;

typedef struct S2SFieldInfo
{
	AttrNumber	attnum;			/* column, or 0 */
	S2SMappingExpr *expr;		/* or an expression over the row, or NULL */
	Bitmapset  *expr_attrs;		/* expr: the columns it reads (pull_varattnos) */
	Datum		value;			/* expr: this row's value, set before use */
	bool		isnull;
	S2SValueHow how;
	const char *constant;		/* S2S_HOW_CONSTANT */
	FmgrInfo	out;			/* S2S_HOW_OUTPUT */
	Oid			elemtype;		/* S2S_HOW_TEXT_ARRAY */
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
} S2SFieldInfo;

/* One trigger's configuration, resolved against its relation and endpoint. */
typedef struct S2SOrderTrigger
{
	Oid			tgoid;			/* hash key */
	Oid			relid;
	bool		valid;			/* cleared by a relcache invalidation */
	bool		complete;		/* built without error */
	MemoryContext cxt;
	char	   *endpoint;
	S2SEndpointKind kind;
	char	   *endpoint_currency;
	bool		endpoint_sendable;	/* enabled and not paused: wake the worker */
	/*
	 * Left so behind the endpoints guards (a restore in another order, a change made
	 * with the guards disabled): the trigger reports it and lets the order through.
	 */
	bool		endpoint_missing;	/* the endpoint does not exist */
	char	   *kind_problem;	/* why the columns do not fit its kind, or NULL */
	S2SFieldInfo f[S2S_NFIELDS];
	int			nvalidated;
	char	  **validated;		/* text statuses (S2S_HOW_TEXT / BPCHAR) */
	Oid		   *validated_oids; /* enum statuses (S2S_HOW_ENUM) */
	bool		has_exprs;		/* a field other than validated_when is an expression */
	Oid			built_as;		/* the user the expressions were compiled for */
	int64		window_s;		/* endpoints.attribution_window; 0: the setting */
	bool		first_seen;		/* records orders first seen unvalidated (first_seen.c) */
	int			npayment_map;	/* payment_map: shop value -> Affilae value */
	char	  **payment_from;
	char	  **payment_to;
} S2SOrderTrigger;

/*
 * Resolves the trigger arguments against rel and the endpoint into *t (allocating in
 * t->cxt). Raises a clear error for a configuration that cannot work: bad arguments,
 * unknown endpoint, arguments that do not fit its kind, a missing column or one of a
 * type that cannot be used. trigname is NULL when s2s.track_orders checks a new
 * configuration, else the firing trigger's name (the error then says how to repair it);
 * for the firing trigger, an unknown endpoint or one of a kind the arguments do not fit
 * is no error but noted in t (endpoint_missing, kind_problem): the endpoint changed, not
 * the trigger, and the order must go through.
 */
extern void s2s_order_trigger_build(S2SOrderTrigger *t, Relation rel, const char *trigname,
									int nargs, char **args);

#endif							/* S2S_ENQUEUE_H */
