/*
 * mapping_expr.c
 *		Mappings of s2s.track_orders given as SQL expressions over the orders row: their
 *		checking (when track_orders is called, and again when the trigger builds its
 *		configuration), their canonical text, their compilation and their evaluation.
 *
 * Checking parses the text as one expression (the grammar PL/pgSQL uses for its
 * expressions; anything else around it, a FROM, a second statement, is refused) with the
 * orders table as the only range table entry, under search_path pg_catalog, pg_temp, and
 * then refuses what a per-row mapping must not do: other tables (not in scope), system
 * columns or the whole row, sub-queries, aggregates, window functions and set-returning
 * functions (the trigger-WHEN expression kind refuses those), parameters (no hook to
 * resolve them) and volatile functions. STABLE functions are accepted: the trigger
 * evaluates each expression once per row within the statement that wrote it, which is
 * exactly what STABLE promises to be consistent in (now(), a timestamptz cast to text).
 *
 * The trigger's argument keeps the deparsed text (pg_get_expr's form): it survives
 * pg_dump and restore like any trigger argument, and functions outside pg_catalog come
 * out schema-qualified, so the caller's search_path never changes what runs. Each backend
 * looks the names up again, with the exact argument types the text spells out (casts
 * shown): track_orders refuses what such a look-up could resolve differently later (a
 * polymorphic function or operator outside pg_catalog, check_resolution).
 *
 * Evaluation runs under an internal subtransaction (as a PL/pgSQL EXCEPTION block does):
 * an expression can raise on one row's data (a cast of a metadata value, a division by
 * zero), and the checkout must not fail because of tracking data. Only data exceptions
 * (SQLSTATE class 22) are turned into a message for the caller; any other error (a
 * cancel, out of memory, a permission) is raised as it is.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "mb/pg_wchar.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"

#include "mapping_expr.h"
#include "subxact.h"

static void
mapping_error_context(void *arg)
{
	errcontext("mapping \"%s\" of s2s.track_orders", (const char *) arg);
}

/* Vars of the orders row only: user columns of range table entry 1. */
static bool
check_vars(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) node;

		if (var->varno != 1 || var->varlevelsup != 0 || var->varattno <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("mapping \"%s\" may refer only to user columns of the orders table",
							(const char *) context),
					 errdetail("System columns and the whole row cannot be used.")));
		return false;
	}
	return expression_tree_walker(node, check_vars, context);
}

/*
 * Raises 0A000 when a function or operator outside pg_catalog takes a polymorphic
 * argument. The trigger keeps the expression as text and looks its names up again in
 * every backend, by name and the exact argument types the deparsed text spells out: for
 * a function with concrete parameter types that finds it again and nothing else (another
 * function with those very types cannot exist beside it), but a polymorphic one would lose
 * to an overload with the row's exact types that anyone who may create in its schema adds
 * later, and that overload would run in the order's transaction, as whoever writes the
 * order. Functions reached through a cast are found by their types, not their name.
 */
static void
refuse_polymorphic(Oid fn, Oid nsp, int nargs, const Oid *argtypes, bool oper, Oid oprid,
				   const char *mapping)
{
	int			i;

	if (nsp == PG_CATALOG_NAMESPACE)
		return;
	for (i = 0; i < nargs; i++)
		if (IsPolymorphicType(argtypes[i]) || argtypes[i] == ANYOID)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("mapping \"%s\" uses %s %s, which takes a polymorphic argument",
							mapping, oper ? "operator" : "function",
							oper ? format_operator_qualified(oprid) :
							format_procedure_qualified(fn)),
					 errdetail("The trigger looks the %s up again by name in every session: an overload added to its schema later would be called instead.",
							   oper ? "operator" : "function"),
					 errhint("Use a function or operator whose parameters have concrete types.")));
}

static void
refuse_polymorphic_operator(Oid opno, const char *mapping)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	Form_pg_operator op;
	Oid			types[2];

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opno);
	op = (Form_pg_operator) GETSTRUCT(tup);
	types[0] = op->oprleft;
	types[1] = op->oprright;
	refuse_polymorphic(InvalidOid, op->oprnamespace, 2, types, true, opno, mapping);
	ReleaseSysCache(tup);
}

static bool
check_resolution(Node *node, void *context)
{
	const char *mapping = (const char *) context;

	if (node == NULL)
		return false;
	if (IsA(node, FuncExpr) && ((FuncExpr *) node)->funcformat == COERCE_EXPLICIT_CALL)
	{
		Oid			fn = ((FuncExpr *) node)->funcid;
		HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
		Form_pg_proc proc;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for function %u", fn);
		proc = (Form_pg_proc) GETSTRUCT(tup);
		refuse_polymorphic(fn, proc->pronamespace, proc->pronargs,
						   proc->proargtypes.values, false, InvalidOid, mapping);
		ReleaseSysCache(tup);
	}
	else if (IsA(node, OpExpr) || IsA(node, DistinctExpr) || IsA(node, NullIfExpr))
		refuse_polymorphic_operator(((OpExpr *) node)->opno, mapping);
	else if (IsA(node, ScalarArrayOpExpr))
		refuse_polymorphic_operator(((ScalarArrayOpExpr *) node)->opno, mapping);
	else if (IsA(node, RowCompareExpr))
	{
		ListCell   *lc;

		foreach(lc, ((RowCompareExpr *) node)->opnos)
			refuse_polymorphic_operator(lfirst_oid(lc), mapping);
	}
	return expression_tree_walker(node, check_resolution, context);
}

void
s2s_mapping_expr_check_resolution(const char *mapping, Node *expr)
{
	(void) check_resolution(expr, (void *) mapping);
}

/* The one expression of text; raises 42601 for anything else. */
static Node *
parse_one_expression(const char *mapping, const char *text)
{
	List	   *raw = raw_parser(text, RAW_PARSE_PLPGSQL_EXPR);
	RawStmt    *rs;
	SelectStmt *s;
	ResTarget  *rt;

	if (list_length(raw) == 1)
	{
		rs = linitial_node(RawStmt, raw);
		s = (SelectStmt *) rs->stmt;
		if (IsA(s, SelectStmt) && s->op == SETOP_NONE && list_length(s->targetList) == 1 &&
			s->distinctClause == NIL && s->intoClause == NULL && s->fromClause == NIL &&
			s->whereClause == NULL && s->groupClause == NIL && s->havingClause == NULL &&
			s->windowClause == NIL && s->valuesLists == NIL && s->sortClause == NIL &&
			s->limitOffset == NULL && s->limitCount == NULL && s->lockingClause == NIL &&
			s->withClause == NULL)
		{
			rt = linitial_node(ResTarget, s->targetList);
			if (rt->name == NULL)
				return rt->val;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("mapping \"%s\" is not one scalar expression", mapping),
			 errdetail("A mapping is a column of the orders table or an expression over its row, such as total_gross - total_tax; FROM, WHERE, aliases and further statements are not accepted.")));
	return NULL;				/* keep the compiler quiet */
}

Node *
s2s_mapping_expr_check(Relation rel, const char *mapping, const char *text,
					   S2SExprResult want)
{
	ErrorContextCallback errcb;
	int			save_nestlevel;
	ParseState *pstate;
	ParseNamespaceItem *nsitem;
	Node	   *raw;
	Node	   *expr;
	Oid			type;

	errcb.callback = mapping_error_context;
	errcb.arg = (void *) mapping;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	/* what the expression names must not depend on who runs it, nor where */
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	raw = parse_one_expression(mapping, text);
	pstate = make_parsestate(NULL);
	/* no source text: a position in the expression would be shown against the call */
	pstate->p_sourcetext = NULL;
	nsitem = addRangeTableEntryForRelation(pstate, rel, AccessShareLock, NULL, false, false);
	addNSItemToQuery(pstate, nsitem, false, true, true);
	/* the trigger-WHEN kind refuses sub-queries, aggregates, window functions and SRFs */
	expr = transformExpr(pstate, raw, EXPR_KIND_TRIGGER_WHEN);

	switch (want)
	{
		case S2S_EXPR_BOOLEAN:
			expr = coerce_to_boolean(pstate, expr, mapping);
			break;
		case S2S_EXPR_TIMESTAMPTZ:
			type = exprType(expr);
			if (type != TIMESTAMPTZOID && type != TIMESTAMPOID && type != DATEOID)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("mapping \"%s\" has type %s", mapping, format_type_be(type)),
						 errdetail("It must be of type timestamptz, timestamp or date.")));
			expr = coerce_to_target_type(pstate, expr, type, TIMESTAMPTZOID, -1,
										 COERCION_IMPLICIT, COERCE_IMPLICIT_CAST, -1);
			break;
		case S2S_EXPR_SCALAR:
			break;
	}
	assign_expr_collations(pstate, expr);
	(void) check_vars(expr, (void *) mapping);
	if (expression_returns_set(expr))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("mapping \"%s\" must return one value per row", mapping)));
	if (contain_volatile_functions(expr))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("mapping \"%s\" uses a volatile function", mapping),
				 errdetail("A mapping is evaluated once per order row: only immutable and stable functions are accepted.")));
	free_parsestate(pstate);

	AtEOXact_GUC(true, save_nestlevel);
	error_context_stack = errcb.previous;
	return expr;
}

char *
s2s_mapping_expr_deparse(Relation rel, Node *expr)
{
	int			save_nestlevel = NewGUCNestLevel();
	char	   *text;

	/* with only pg_catalog visible, every other function comes out qualified */
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	text = deparse_expression(expr,
							  deparse_context_for(RelationGetRelationName(rel),
												  RelationGetRelid(rel)),
							  false, false);
	AtEOXact_GUC(true, save_nestlevel);
	return text;
}

S2SMappingExpr *
s2s_mapping_expr_compile(Relation rel, Node *expr)
{
	S2SMappingExpr *m = palloc0(sizeof(S2SMappingExpr));
	Expr	   *planned = expression_planner((Expr *) expr);

	m->type = exprType((Node *) planned);
	get_typlenbyval(m->type, &m->typlen, &m->typbyval);
	m->state = ExecInitExpr(planned, NULL);
	m->econtext = CreateStandaloneExprContext();
	/* a private copy of the descriptor: a slot kept across transactions pins none */
	m->slot = MakeSingleTupleTableSlot(CreateTupleDescCopy(RelationGetDescr(rel)),
									   &TTSOpsHeapTuple);
	m->econtext->ecxt_scantuple = m->slot;
	return m;
}

/* The expressions evaluated by eval_body, and how far it got. */
typedef struct EvalRun
{
	S2SMappingExpr **exprs;
	int			n;
	HeapTuple	tup;
	Datum	   *values;
	bool	   *isnull;
	int			i;				/* the expression being evaluated */
} EvalRun;

static void
eval_body(void *arg)
{
	EvalRun    *run = (EvalRun *) arg;

	for (run->i = 0; run->i < run->n; run->i++)
	{
		S2SMappingExpr *m = run->exprs[run->i];
		Datum		d;
		bool		null;

		if (m == NULL)
			continue;
		ResetExprContext(m->econtext);
		ExecStoreHeapTuple(run->tup, m->slot, false);
		d = ExecEvalExprSwitchContext(m->state, m->econtext, &null);
		if (!null)
			run->values[run->i] = datumCopy(d, m->typbyval, m->typlen);
		run->isnull[run->i] = null;
		ExecClearTuple(m->slot);
	}
}

char *
s2s_mapping_expr_eval(S2SMappingExpr **exprs, int n, HeapTuple tup,
					  Datum *values, bool *isnull, int *failed, bool any_error)
{
	EvalRun		run = {exprs, n, tup, values, isnull, 0};
	ErrorData  *edata;
	char	   *problem;

	for (int i = 0; i < n; i++)
	{
		isnull[i] = true;
		values[i] = (Datum) 0;
	}
	edata = s2s_subxact_run(eval_body, &run,
							any_error ? S2S_SWALLOW_ALL_BUT_CANCEL : S2S_SWALLOW_DATA_EXCEPTION);
	if (edata == NULL)
		return NULL;
	*failed = run.i;
	/* it may quote the row's data (a cast's input): the first bytes say enough */
	problem = pnstrdup(edata->message,
					   pg_mbcliplen(edata->message, strlen(edata->message),
									S2S_MAPPING_PROBLEM_MAX));
	FreeErrorData(edata);
	return problem;
}
