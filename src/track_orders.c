/*
 * track_orders.c
 *		s2s.track_orders and s2s.untrack_orders: the administrator's way of creating and
 *		removing the trigger that feeds an endpoint from an orders table.
 *
 * track_orders turns its arguments into trigger arguments (trigger_args.h), checks them
 * with the code the trigger itself runs (s2s_order_trigger_build: the endpoint, its kind,
 * every column and its type), then replaces any trigger that already feeds this endpoint
 * from this table by one new trigger. Every identifier is quoted with quote_identifier and
 * every argument with quote_literal: nothing the caller gives is spliced into SQL.
 *
 * Both run as the caller (SECURITY INVOKER): creating a trigger needs the TRIGGER right
 * on the table and EXECUTE on s2s.enqueue_conversion, dropping one needs ownership of the
 * table, so a role that may not change the orders table cannot make it feed an endpoint.
 * Those rights are checked before the table is locked (check_privileges), as PostgreSQL's
 * own DDL checks them in RangeVarGetRelidExtended's callback: a role without them gets
 * its error at once, and never queues behind (nor in front of) the shop's own locks on
 * the table. CREATE and DROP TRIGGER check them again once the lock is held.
 *
 * track_orders holds the endpoint's lock (endpoint_lock.c) in share mode from before it
 * checks the endpoint until commit: a concurrent rename, deletion or change of kind of
 * the endpoint, refused while a trigger tracks it (endpoint_triggers.c), either waits for
 * the new trigger and sees it, or is seen by track_orders' check.
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "compat.h"
#include "endpoint_lock.h"
#include "endpoint_triggers.h"
#include "enqueue.h"
#include "extension_objects.h"
#include "mapping_expr.h"
#include "trigger_args.h"

PG_FUNCTION_INFO_V1(s2s_track_orders);
PG_FUNCTION_INFO_V1(s2s_untrack_orders);

/* Trigger names are at most NAMEDATALEN - 1 bytes. */
#define TRIGGER_PREFIX "s2s_track_"

/* s2s.track_orders's argument number of each field. */
static int
field_argno(S2SField f)
{
	switch (f)
	{
		case S2S_F_ORDER_TIME:
			return 17;
		case S2S_F_VALIDATED_WHEN:
			return 19;
		default:
			return f <= S2S_F_STATUS ? (int) f + 2 : (int) f + 3;
	}
}
#define ARG_VALIDATED 14
#define ARG_PAYMENT_MAP 18

/*
 * Whether argument argno is given and not NULL: the SQL function of an older version,
 * still installed until ALTER EXTENSION UPDATE, passes fewer arguments.
 */
#define ARG_GIVEN(argno) ((argno) < PG_NARGS() && !PG_ARGISNULL(argno))

/* Whether s is a plain SQL identifier, such as a column name written without quotes. */
static bool
is_plain_identifier(const char *s)
{
	const char *c;

	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return false;
	for (c = s; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_' ||
			  *c == '$' || (*c >= '0' && *c <= '9')))
			return false;
	return true;
}

/*
 * The trigger argument for mapping f given as value: "f=column" when value names a column
 * of rel (as before expressions existed: a column's name verbatim) or looks like one (so
 * that a misspelt column is reported as such), "f='constant'" for a constant, else the
 * expression, checked (mapping_expr.c) and kept in its canonical text, "f:expr=text". An
 * expression that is just a column becomes that column.
 */
static char *
mapping_argument(Relation rel, S2SField f, const char *value)
{
	TupleDesc	desc = RelationGetDescr(rel);
	size_t		len = strlen(value);
	Node	   *expr;
	int			i;

	if (len == 0 || (len >= 2 && value[0] == '\'' && value[len - 1] == '\''))
		return psprintf("%s=%s", s2s_field_names[f], value);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), value) == 0)
			return psprintf("%s=%s", s2s_field_names[f], value);
	}
	if (is_plain_identifier(value) || f == S2S_F_STATUS)
		return psprintf("%s=%s", s2s_field_names[f], value);
	expr = s2s_mapping_expr_check(rel, s2s_field_names[f], value,
								  f == S2S_F_VALIDATED_WHEN ? S2S_EXPR_BOOLEAN :
								  f == S2S_F_ORDER_TIME ? S2S_EXPR_TIMESTAMPTZ :
								  S2S_EXPR_SCALAR);
	s2s_mapping_expr_check_resolution(s2s_field_names[f], expr);
	if (IsA(expr, Var))
		return psprintf("%s=%s", s2s_field_names[f],
						NameStr(TupleDescAttr(desc, ((Var *) expr)->varattno - 1)->attname));
	return psprintf("%s:expr=%s", s2s_field_names[f], s2s_mapping_expr_deparse(rel, expr));
}

/*
 * "s2s_track_<endpoint>": deterministic, so that running track_orders again finds and
 * replaces it. Endpoint names are short and tame (a CHECK on s2s.endpoints), but a name
 * too long for a trigger name is shortened with a hash of the whole name, so two long
 * endpoint names never share a trigger.
 */
static char *
trigger_name(const char *endpoint)
{
	size_t		len = strlen(endpoint);
	uint32		h = 2166136261u;	/* FNV-1a: stable across platforms */
	size_t		i;

	if (strlen(TRIGGER_PREFIX) + len < NAMEDATALEN)
		return psprintf(TRIGGER_PREFIX "%s", endpoint);
	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char) endpoint[i]) * 16777619u;
	return psprintf(TRIGGER_PREFIX "%.*s_%08x",
					(int) (NAMEDATALEN - 1 - strlen(TRIGGER_PREFIX) - 9), endpoint, h);
}

/*
 * Before any lock on the table: the rights CREATE TRIGGER (the TRIGGER privilege on the
 * table, EXECUTE on s2s.enqueue_conversion) and DROP TRIGGER (ownership of the table)
 * will check, so that a caller without them gets 42501 without waiting for the lock.
 * track_orders drops the triggers that already track the endpoint on this table: it
 * needs ownership only when there is one (found in pg_trigger, without a lock).
 */
static void
check_privileges(Oid relid, const char *endpoint, bool creating)
{
	Oid			user = GetUserId();
	char		relkind = get_rel_relkind(relid);
	AclResult	aclresult;
	bool		dropping;

	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	dropping = !creating || s2s_find_tracking_trigger(relid, endpoint, NULL, NULL);
	if (creating)
	{
		aclresult = pg_class_aclcheck(relid, user, ACL_TRIGGER);
		if (aclresult != ACLCHECK_OK)
			aclcheck_error(aclresult, get_relkind_objtype(relkind), get_rel_name(relid));
		aclresult = s2s_proc_aclcheck(s2s_enqueue_function_oid(), user, ACL_EXECUTE);
		if (aclresult != ACLCHECK_OK)
			aclcheck_error(aclresult, OBJECT_FUNCTION, "s2s.enqueue_conversion");
	}
	if (dropping && !s2s_class_ownercheck(relid, user))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(relkind), get_rel_name(relid));
}

static Relation
open_orders(Oid relid, LOCKMODE lock)
{
	Relation	rel = try_table_open(relid, lock);

	/* dropped while we waited for the lock */
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
				 errdetail("Only tables and partitioned tables can be tracked.")));
	return rel;
}

/* The tracking triggers (made by track_orders or by hand) of rel for endpoint. */
static List *
tracking_triggers(Relation rel, const char *endpoint)
{
	Oid			fn = s2s_enqueue_function_oid();
	char	   *want = psprintf("endpoint=%s", endpoint);
	List	   *names = NIL;
	int			i;
	int			j;

	if (rel->trigdesc == NULL)
		return NIL;
	for (i = 0; i < rel->trigdesc->numtriggers; i++)
	{
		Trigger    *tg = &rel->trigdesc->triggers[i];

		if (tg->tgfoid != fn || tg->tgisclone)
			continue;
		for (j = 0; j < tg->tgnargs; j++)
			if (strcmp(tg->tgargs[j], want) == 0)
			{
				names = lappend(names, pstrdup(tg->tgname));
				break;
			}
	}
	return names;
}

static bool
has_trigger_named(Relation rel, const char *name)
{
	int			i;

	if (rel->trigdesc == NULL)
		return false;
	for (i = 0; i < rel->trigdesc->numtriggers; i++)
		if (strcmp(rel->trigdesc->triggers[i].tgname, name) == 0)
			return true;
	return false;
}

static char *
qualified_name(Relation rel)
{
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
}

static void
run_ddl(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != SPI_OK_UTILITY)
		elog(ERROR, "\"%s\" failed: %s", sql, SPI_result_code_string(rc));
}

static char *
required_text(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what)));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

Datum
s2s_track_orders(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *endpoint;
	List	   *args = NIL;
	char	  **argv;
	int			nargs;
	int			i;
	int			f;
	Relation	rel;
	S2SOrderTrigger check;
	char	   *tgname;
	char	   *relname;
	List	   *old;
	ListCell   *lc;
	StringInfoData sql;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("orders must not be NULL")));
	relid = PG_GETARG_OID(0);
	endpoint = required_text(fcinfo, 1, "endpoint");
	(void) required_text(fcinfo, 2, "order_id");

	check_privileges(relid, endpoint, true);
	/* the lock CREATE TRIGGER takes: two track_orders on one table run one after the other */
	rel = open_orders(relid, ShareRowExclusiveLock);

	/* the trigger's arguments, in a fixed order */
	args = lappend(args, psprintf("endpoint=%s", endpoint));
	for (f = 0; f < S2S_NFIELDS; f++)
		if (ARG_GIVEN(field_argno((S2SField) f)))
			args = lappend(args, mapping_argument(rel, (S2SField) f,
												  text_to_cstring(PG_GETARG_TEXT_PP(field_argno((S2SField) f)))));
	if (ARG_GIVEN(ARG_PAYMENT_MAP))
		args = lappend(args, psprintf("payment_map=%s",
									  DatumGetCString(DirectFunctionCall1(jsonb_out,
																		  PG_GETARG_DATUM(ARG_PAYMENT_MAP)))));
	if (ARG_GIVEN(ARG_VALIDATED))
	{
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(ARG_VALIDATED), TEXTOID, -1, false,
						  TYPALIGN_INT, &elems, &nulls, &n);
		if (n == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("validated_statuses must not be empty"),
					 errhint("List the statuses in which an order counts as validated, such as ARRAY['paid'].")));
		for (i = 0; i < n; i++)
		{
			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("validated_statuses must not contain NULL")));
			args = lappend(args, psprintf("validated_status=%s", TextDatumGetCString(elems[i])));
		}
	}
	nargs = list_length(args);
	argv = palloc(sizeof(char *) * nargs);
	i = 0;
	foreach(lc, args)
		argv[i++] = lfirst(lc);

	/* the endpoint stays as checked until commit (see the header) */
	s2s_endpoint_lock(endpoint, false);
	memset(&check, 0, sizeof(check));
	check.cxt = CurrentMemoryContext;
	s2s_order_trigger_build(&check, rel, NULL, nargs, argv);

	/* Affilae matches a conversion to its click partly by the shopper's IP (x-ae-d-ip) */
	if (check.kind == S2S_KIND_AFFILAE && !ARG_GIVEN(field_argno(S2S_F_CLIENT_IP)))
		ereport(NOTICE,
				(errmsg("endpoint \"%s\" is tracked without client_ip", endpoint),
				 errdetail("Affilae's postback carries the shopper's IP address in the x-ae-d-ip header."),
				 errhint("Give client_ip, the column (or expression) that keeps the shopper's IP address when the order is placed.")));

	/*
	 * An order validated after it is inserted, without order_time: the trigger records
	 * when it first saw the order with a click ID and judges its click IDs at that time
	 * (first_seen.c); an order inserted before tracking started is judged when validated.
	 */
	if (check.kind == S2S_KIND_AFFILAE && !ARG_GIVEN(field_argno(S2S_F_ORDER_TIME)) &&
		(ARG_GIVEN(field_argno(S2S_F_STATUS)) || ARG_GIVEN(field_argno(S2S_F_VALIDATED_WHEN))))
		ereport(NOTICE,
				(errmsg("endpoint \"%s\" is tracked without order_time", endpoint),
				 errdetail("The click IDs of an order validated after it was inserted are judged at the time the trigger first saw it with a click ID; those of an order inserted before this trigger existed, when it is validated."),
				 errhint("Give order_time, the column (or expression) that says when the order was placed: it covers the orders placed before tracking started too, and spares the trigger a write per order waiting for its validation.")));

	tgname = trigger_name(endpoint);
	relname = qualified_name(rel);
	old = tracking_triggers(rel, endpoint);
	if (has_trigger_named(rel, tgname))
	{
		bool		ours = false;

		foreach(lc, old)
			ours |= strcmp(lfirst(lc), tgname) == 0;
		if (!ours)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("trigger \"%s\" on table \"%s\" already exists and does not track endpoint \"%s\"",
							tgname, RelationGetRelationName(rel), endpoint),
					 errhint("Rename or drop that trigger first.")));
	}

	/*
	 * With a status column the trigger fires on every UPDATE, not UPDATE OF the status
	 * column: PostgreSQL fires the latter only when the statement's SET list names the
	 * column, and a shop's own BEFORE trigger (paid_at filled in, status set to 'paid')
	 * changes it without the statement naming it. The trigger compares the old and new
	 * status itself, first on their stored bytes, so an UPDATE that leaves the status
	 * alone costs little. No WHEN clause: an INSERT OR UPDATE trigger's cannot read OLD,
	 * and one that names the column would forbid changing its type while it is tracked.
	 */
	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TRIGGER %s AFTER INSERT%s ON %s FOR EACH ROW",
					 quote_identifier(tgname),
					 check.f[S2S_F_STATUS].attnum != InvalidAttrNumber ||
					 check.f[S2S_F_VALIDATED_WHEN].expr != NULL ? " OR UPDATE" : "",
					 relname);
	appendStringInfoString(&sql, " EXECUTE FUNCTION s2s.enqueue_conversion(");
	for (i = 0; i < nargs; i++)
		appendStringInfo(&sql, "%s%s", i ? ", " : "", quote_literal_cstr(argv[i]));
	appendStringInfoChar(&sql, ')');

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, old)
		run_ddl(psprintf("DROP TRIGGER %s ON %s", quote_identifier(lfirst(lc)), relname));
	run_ddl(sql.data);
	SPI_finish();

	table_close(rel, NoLock);
	PG_RETURN_TEXT_P(cstring_to_text(tgname));
}

Datum
s2s_untrack_orders(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *endpoint;
	Relation	rel;
	char	   *relname;
	List	   *old;
	ListCell   *lc;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("orders must not be NULL")));
	relid = PG_GETARG_OID(0);
	endpoint = required_text(fcinfo, 1, "endpoint");

	check_privileges(relid, endpoint, false);
	rel = open_orders(relid, ShareRowExclusiveLock);
	relname = qualified_name(rel);
	old = tracking_triggers(rel, endpoint);
	if (old == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("table \"%s\" is not tracked for endpoint \"%s\"",
						RelationGetRelationName(rel), endpoint),
				 errhint("s2s.track_orders starts tracking; the triggers that call s2s.enqueue_conversion are listed in pg_trigger.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, old)
		run_ddl(psprintf("DROP TRIGGER %s ON %s", quote_identifier(lfirst(lc)), relname));
	SPI_finish();

	table_close(rel, NoLock);
	PG_RETURN_VOID();
}
