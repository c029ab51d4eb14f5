/*
 * mapping_expr.h
 *		A mapping of s2s.track_orders given as an SQL expression over the orders row
 *		(metadata->>'aecid', total_gross - total_tax, validated_when): checked once, kept
 *		as text in the trigger's arguments, compiled once per backend and evaluated per
 *		row (mapping_expr.c).
 */
#ifndef S2S_MAPPING_EXPR_H
#define S2S_MAPPING_EXPR_H

#include "nodes/execnodes.h"
#include "utils/rel.h"

/* What a mapping's expression must return. */
typedef enum S2SExprResult
{
	S2S_EXPR_SCALAR,			/* any scalar: the caller checks the type it got */
	S2S_EXPR_BOOLEAN,			/* validated_when */
	S2S_EXPR_TIMESTAMPTZ		/* order_time: timestamptz, timestamp or date */
} S2SExprResult;

/*
 * Parses and checks text as an expression over rel's row for the mapping named mapping:
 * only rel's own columns in scope (no other table, no system column, no whole row), no
 * sub-query, aggregate, window function, set-returning function, parameter or volatile
 * function, and a result as want says. Functions and operators are looked up under
 * search_path pg_catalog, pg_temp: any other must be schema-qualified. Raises 42601,
 * 42P10, 0A000 or 42804 naming the mapping. Returns the analysed expression.
 */
extern Node *s2s_mapping_expr_check(Relation rel, const char *mapping, const char *text,
									S2SExprResult want);

/*
 * For s2s.track_orders, on a checked expression: raises 0A000 when it calls a function or
 * operator outside pg_catalog that takes a polymorphic argument, which the trigger's own
 * look-up by name could later resolve to an overload added to its schema.
 */
extern void s2s_mapping_expr_check_resolution(const char *mapping, Node *expr);

/*
 * The canonical text of a checked expression, as the trigger's argument keeps it: what
 * pg_get_expr would show, functions outside pg_catalog schema-qualified.
 */
extern char *s2s_mapping_expr_deparse(Relation rel, Node *expr);

/* A compiled expression and what it needs to run over one row of its relation. */
typedef struct S2SMappingExpr
{
	ExprState  *state;
	Oid			type;			/* result type */
	int16		typlen;
	bool		typbyval;
	ExprContext *econtext;
	TupleTableSlot *slot;
} S2SMappingExpr;

/* Compiles expr (from s2s_mapping_expr_check) in CurrentMemoryContext, for rel's rows. */
extern S2SMappingExpr *s2s_mapping_expr_compile(Relation rel, Node *expr);

/* Longest message of a data exception that s2s_mapping_expr_eval returns, in bytes. */
#define S2S_MAPPING_PROBLEM_MAX 512

/*
 * Evaluates the n expressions over tup into values/isnull (copied into
 * CurrentMemoryContext), under a subtransaction: a data exception (SQLSTATE class 22,
 * such as a cast of one row's metadata that fails) is not raised but returned as a
 * palloc'd message (its first S2S_MAPPING_PROBLEM_MAX bytes, whole characters), with
 * *failed set to the index of the expression that raised; with any_error, so is any
 * other error but a cancel (class 57: a query cancel, a statement timeout, a shutdown).
 * Any other error is raised. NULL when every expression was evaluated. exprs[i] may be
 * NULL (skipped).
 */
extern char *s2s_mapping_expr_eval(S2SMappingExpr **exprs, int n, HeapTuple tup,
								   Datum *values, bool *isnull, int *failed,
								   bool any_error);

#endif							/* S2S_MAPPING_EXPR_H */
