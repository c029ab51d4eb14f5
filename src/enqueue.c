/*
 * enqueue.c
 *		s2s.enqueue_conversion: the trigger on the shop's orders table that enqueues one
 *		conversion per (endpoint, order) into s2s.deliveries, in the order's transaction.
 *
 * Rules (README and doc/orders.md):
 *	- an order counts when it is inserted validated or an UPDATE makes it validated (its
 *	  status moves into the validated statuses, whatever set it: the trigger fires on
 *	  every UPDATE, see track_orders.c; without a status column: on INSERT only);
 *	- one delivery per (endpoint, order): dedupe_key 'order:' || order id and
 *	  INSERT ... ON CONFLICT DO NOTHING, so status flips and concurrent validations of the
 *	  same order leave one row; a rolled-back order leaves nothing (same transaction); an
 *	  UPDATE looks the key up before writing (delivery_insert.c), so an order validated
 *	  again writes nothing;
 *	- bad tracking data never raises: nothing to attribute (no click ID, no Swaarm user
 *	  ID) enqueues nothing; invalid or expired click IDs, a NULL or negative amount, a
 *	  malformed currency or a missing mandatory Swaarm field enqueue a 'skipped' delivery
 *	  whose last_error says why (the rules are delivery_check.c's, which s2s.retry applies
 *	  again); the raw click IDs and a bad currency are kept, cut between characters;
 *	  an unparsable client IP is stored as NULL;
 *	- a broken trigger definition (unparsable arguments, a column missing after ALTER
 *	  TABLE) raises; an endpoint deleted or given another kind behind the endpoints
 *	  guards (which refuse both while a trigger tracks it) never does: a WARNING, or a
 *	  'skipped' delivery that says why.
 *
 * Speed: the trigger's arguments are parsed and resolved (attribute numbers, output
 * functions, enum OIDs, the endpoint's kind and currency) once per trigger and backend,
 * and kept until a relcache invalidation of the orders table (any ALTER TABLE, CREATE or
 * DROP TRIGGER), of s2s.deliveries, or of s2s.endpoints (sent by a statement trigger on
 * that table, see 50_orders.sql) says they may be stale; a configuration with expression
 * mappings is also built again when any function changes (they may call it). A row then
 * costs its column reads, a shared lock on the endpoint's name (endpoint_lock.c: it stands
 * for a foreign key) and one execution of the prepared insert statement
 * (delivery_insert.c).
 *
 * Privileges: the trigger runs as whoever writes the order (the shop's app role), who
 * needs no right on schema s2s. The endpoint lookup and the insert run as the owner of
 * s2s.deliveries (SetUserIdAndSecContext, with SECURITY_RESTRICTED_OPERATION); the plans
 * (the lookup and the insert statement) are prepared
 * under search_path pg_catalog, pg_temp with schema-qualified names only.
 */
#include "postgres.h"

#include <sys/socket.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/heap.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inet.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/syscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/jsonb.h"

#include "click.h"
#include "delivery_check.h"
#include "delivery_insert.h"
#include "endpoint_lock.h"
#include "enqueue.h"
#include "extension_objects.h"
#include "first_seen.h"
#include "kept_plan.h"
#include "settings.h"
#include "shared.h"

PG_FUNCTION_INFO_V1(s2s_enqueue_conversion);
PG_FUNCTION_INFO_V1(s2s_endpoints_changed);

/* Longest order ID tracked: the dedupe key must fit a btree index entry with room. */
#define S2S_ORDER_ID_MAX 512

/* Backend-local caches, all reset by relcache_callback. */
static HTAB *trigger_cache = NULL;
static SPIPlanPtr insert_plan = NULL;
static bool insert_plan_stale = false;
static SPIPlanPtr endpoint_plan = NULL;
static SPIPlanPtr probe_plan = NULL;

static void
relcache_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS seq;
	S2SOrderTrigger *t;
	bool		all;

	if (trigger_cache == NULL)
		return;
	all = s2s_extension_relation(relid);
	if (all)
	{
		/*
		 * The extension may have been dropped and created again (extension_objects.c
		 * looks its objects up again): freed at its next use, never while it may be
		 * running.
		 */
		insert_plan_stale = true;
	}
	hash_seq_init(&seq, trigger_cache);
	while ((t = hash_seq_search(&seq)) != NULL)
		if (all || t->relid == relid)
			t->valid = false;
}

/*
 * A function changed (CREATE OR REPLACE, ALTER FUNCTION, DROP, GRANT): the expression
 * mappings compiled in this backend may call it, have inlined its body or folded its
 * result, and were checked against its volatility. The configurations with expressions
 * are built again at their next row, as a new backend would build them. Functions change
 * seldom; which one changed is not worth tracking.
 */
static void
proc_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS seq;
	S2SOrderTrigger *t;
	int			f;

	if (trigger_cache == NULL)
		return;
	hash_seq_init(&seq, trigger_cache);
	while ((t = hash_seq_search(&seq)) != NULL)
		for (f = 0; f < S2S_NFIELDS; f++)
			if (t->f[f].expr != NULL)
			{
				t->valid = false;
				break;
			}
}

static void
init_cache(void)
{
	HASHCTL		ctl;

	if (trigger_cache != NULL)
		return;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(S2SOrderTrigger);
	ctl.hcxt = CacheMemoryContext;
	trigger_cache = hash_create("s2s_tracking order triggers", 16, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, proc_callback, (Datum) 0);
}

/* The trigger cache, and the extension's objects (extension_objects.c). */
static void
lookup_extension_objects(void)
{
	init_cache();
	s2s_lookup_extension_objects();
}

/* Switches to the owner of s2s.deliveries; returns what to restore. */
static void
become_owner(Oid *save_user, int *save_sec)
{
	Oid			owner = s2s_deliveries_owner(); /* an invalidation may have reset it */

	GetUserIdAndSecContext(save_user, save_sec);
	SetUserIdAndSecContext(owner,
						   *save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

/*
 * Looks the endpoint up (as the owner: the app role may not read s2s.endpoints).
 * Returns false when it does not exist. Caller has connected SPI.
 */
static bool
lookup_endpoint(const char *name, S2SEndpointKind *kind, char **currency, bool *sendable,
				int64 *window_s, MemoryContext cxt)
{
	Oid			save_user;
	int			save_sec;
	Datum		arg = CStringGetTextDatum(name);
	bool		found = false;
	int			rc;

	lookup_extension_objects();
	/* parsing needs USAGE on schema s2s too: prepare as the owner as well */
	become_owner(&save_user, &save_sec);
	if (endpoint_plan == NULL)
	{
		Oid			types[1] = {TEXTOID};

		endpoint_plan = s2s_prepare_kept("SELECT kind::pg_catalog.text, currency,"
									 "       enabled AND paused_at IS NULL,"
									 /* read so that a library newer than the installed
									  * table (before ALTER EXTENSION UPDATE) works */
									 "       EXTRACT(epoch FROM (pg_catalog.to_jsonb(e)"
									 "         OPERATOR(pg_catalog.->>) 'attribution_window')"
									 "         ::pg_catalog.interval)::pg_catalog.int8"
									 "  FROM s2s.endpoints e"
									 " WHERE name OPERATOR(pg_catalog.=) $1",
									 1, types);
	}
	/*
	 * With a fresh snapshot, as a foreign key's check would look: a trigger that waited
	 * for the endpoint's lock (endpoint_lock.c) sees a deletion that just committed.
	 */
	rc = SPI_execute_snapshot(endpoint_plan, &arg, NULL, GetLatestSnapshot(), InvalidSnapshot,
							  true, false, 1);
	SetUserIdAndSecContext(save_user, save_sec);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "endpoint lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		char	   *k = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		char	   *c = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		bool		isnull;

		if (k == NULL || !s2s_endpoint_kind_parse(k, kind))
			elog(ERROR, "endpoint \"%s\" has an unknown kind \"%s\"", name, k ? k : "");

		/* no currency of its own: NULL, never an implied one (delivery_check.c) */
		*currency = c ? MemoryContextStrdup(cxt, c) : NULL;
		*sendable = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											   3, &isnull)) && !isnull;
		*window_s = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
												4, &isnull));
		if (isnull)
			*window_s = 0;
		found = true;
	}
	return found;
}

/*
 * Reports a configuration that cannot work. From the trigger, the message says which
 * trigger it is and how to repair it: the table or endpoint changed after track_orders.
 */
static void
config_error(const char *trigname, Relation rel, int sqlstate, const char *msg,
			 const char *detail)
{
	if (trigname == NULL)
		ereport(ERROR,
				(errcode(sqlstate),
				 errmsg_internal("%s", msg),
				 detail ? errdetail_internal("%s", detail) : 0));
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg("s2s_tracking trigger \"%s\" on table \"%s\" is misconfigured: %s",
					trigname, RelationGetRelationName(rel), msg),
			 detail ? errdetail_internal("%s", detail) : 0,
			 errhint("Run s2s.track_orders again to reconfigure tracking of this table, or s2s.untrack_orders to stop it.")));
}

static bool
is_text_type(Oid t)
{
	return t == TEXTOID || t == VARCHAROID;
}

/* Chooses how a column of type typid serves field f; false when it cannot. */
static bool
classify(S2SField f, Oid typid, S2SFieldInfo *fi, MemoryContext cxt)
{
	Oid			base = getBaseType(typid);
	Oid			elem = get_element_type(base);
	char		typtype = get_typtype(base);

	/* the fields with a type of their own */
	switch (f)
	{
		case S2S_F_AMOUNT:
			fi->how = base == NUMERICOID ? S2S_HOW_NUMERIC :
				base == INT2OID ? S2S_HOW_INT2 :
				base == INT4OID ? S2S_HOW_INT4 :
				base == INT8OID ? S2S_HOW_INT8 :
				base == CASHOID ? S2S_HOW_MONEY : S2S_HOW_NONE;
			return fi->how != S2S_HOW_NONE;
		case S2S_F_CLIENT_IP:
			if (base == INETOID || base == CIDROID)
				fi->how = S2S_HOW_INET;
			else if (is_text_type(base))
				fi->how = S2S_HOW_TEXT;
			else if (base == BPCHAROID)
				fi->how = S2S_HOW_BPCHAR;
			return fi->how != S2S_HOW_NONE;
		case S2S_F_STATUS:
			if (typtype == TYPTYPE_ENUM)
				fi->how = S2S_HOW_ENUM;
			else if (is_text_type(base))
				fi->how = S2S_HOW_TEXT;
			else if (base == BPCHAROID)
				fi->how = S2S_HOW_BPCHAR;
			return fi->how != S2S_HOW_NONE;
		case S2S_F_CURRENCY:
			if (is_text_type(base))
				fi->how = S2S_HOW_TEXT;
			else if (base == BPCHAROID)
				fi->how = S2S_HOW_BPCHAR;
			return fi->how != S2S_HOW_NONE;
		case S2S_F_ORDER_TIME:
			if (base == TIMESTAMPTZOID)
				fi->how = S2S_HOW_TIMESTAMPTZ;
			return fi->how != S2S_HOW_NONE;
		case S2S_F_VALIDATED_WHEN:
			if (base == BOOLOID)
				fi->how = S2S_HOW_BOOL;
			return fi->how != S2S_HOW_NONE;
		case S2S_F_CLICK_IDS:
		case S2S_F_VOUCHER:
			if (OidIsValid(elem) && is_text_type(getBaseType(elem)))
			{
				fi->how = S2S_HOW_TEXT_ARRAY;
				fi->elemtype = elem;
				get_typlenbyvalalign(elem, &fi->elmlen, &fi->elmbyval, &fi->elmalign);
				return true;
			}
			if (f == S2S_F_CLICK_IDS)
			{
				if (is_text_type(base))
					fi->how = S2S_HOW_TEXT;
				else if (base == BPCHAROID)
					fi->how = S2S_HOW_BPCHAR;
				return fi->how != S2S_HOW_NONE;
			}
			break;
		default:
			break;
	}

	/* free text: text types directly, any other plain scalar through its output */
	if (is_text_type(base))
		fi->how = S2S_HOW_TEXT;
	else if (base == BPCHAROID)
		fi->how = S2S_HOW_BPCHAR;
	else if (!OidIsValid(elem) && (typtype == TYPTYPE_BASE || typtype == TYPTYPE_ENUM))
	{
		Oid			outfn;
		bool		varlena;

		getTypeOutputInfo(typid, &outfn, &varlena);
		fmgr_info_cxt(outfn, &fi->out, cxt);
		fi->how = S2S_HOW_OUTPUT;
	}
	return fi->how != S2S_HOW_NONE;
}

static const char *
expected_types(S2SField f)
{
	switch (f)
	{
		case S2S_F_AMOUNT:
			return "of type numeric, smallint, integer, bigint or money (never a floating-point type: amounts must be exact)";
		case S2S_F_CLIENT_IP:
			return "of type inet, cidr, text, varchar or char";
		case S2S_F_STATUS:
			return "of type text, varchar, char or an enum";
		case S2S_F_CURRENCY:
			return "of type text, varchar or char";
		case S2S_F_ORDER_TIME:
			return "of type timestamptz, timestamp or date";
		case S2S_F_VALIDATED_WHEN:
			return "of type boolean";
		case S2S_F_CLICK_IDS:
			return "of type text, varchar or char ('-'-joined), or text[] or varchar[]";
		case S2S_F_VOUCHER:
			return "a scalar, or of type text[] or varchar[] (joined with ';')";
		default:
			return "a scalar (not an array or a composite)";
	}
}

static AttrNumber
find_column(TupleDesc desc, const char *name, Oid *typid)
{
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
		{
			*typid = att->atttypid;
			return att->attnum;
		}
	}
	return InvalidAttrNumber;
}

static char *
rtrim_blanks(char *s)
{
	size_t		n = strlen(s);

	while (n > 0 && s[n - 1] == ' ')
		s[--n] = '\0';
	return s;
}

/*
 * Whether a column mapping is served through an expression: order_time of type
 * timestamp or date (converted to timestamptz) and validated_when (read as a boolean).
 */
static bool
needs_expression(S2SField f, TupleDesc desc, const char *col)
{
	Oid			typid;

	if (f == S2S_F_VALIDATED_WHEN)
		return true;
	if (f != S2S_F_ORDER_TIME || find_column(desc, col, &typid) == InvalidAttrNumber)
		return false;
	typid = getBaseType(typid);
	return typid == TIMESTAMPOID || typid == DATEOID;
}

/* Checks and compiles field f's expression (mapping_expr.c) into t->f[f]. */
static void
build_expression(S2SOrderTrigger *t, Relation rel, const char *trigname, S2SField f,
				 const char *text)
{
	S2SFieldInfo *fi = &t->f[f];
	Node	   *expr;
	Oid			typid;

	expr = s2s_mapping_expr_check(rel, s2s_field_names[f], text,
								  f == S2S_F_VALIDATED_WHEN ? S2S_EXPR_BOOLEAN :
								  f == S2S_F_ORDER_TIME ? S2S_EXPR_TIMESTAMPTZ :
								  S2S_EXPR_SCALAR);
	typid = exprType(expr);
	if (f == S2S_F_STATUS || !classify(f, typid, fi, t->cxt))
		config_error(trigname, rel, ERRCODE_DATATYPE_MISMATCH,
					 psprintf("the expression given as %s has type %s", s2s_field_names[f],
							  format_type_be(typid)),
					 psprintf("The %s mapping must be %s.", s2s_field_names[f],
							  expected_types(f)));
	fi->expr = s2s_mapping_expr_compile(rel, expr);
	pull_varattnos(expr, 1, &fi->expr_attrs);
	if (f != S2S_F_VALIDATED_WHEN)
		t->has_exprs = true;
}

/*
 * payment_map (jsonb text): an object whose values are Affilae's payment values. Kept as
 * two arrays: a shop has a handful of payment methods.
 */
static void
build_payment_map(S2SOrderTrigger *t, Relation rel, const char *trigname, const char *text)
{
	Jsonb	   *jb;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	int			cap;

	t->npayment_map = 0;
	if (text == NULL)
		return;
	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		config_error(trigname, rel, ERRCODE_INVALID_PARAMETER_VALUE,
					 "payment_map is not a JSON object",
					 "It maps the shop's payment values to online, bankwire or other, such as {\"card\": \"online\", \"sepa\": \"bankwire\"}.");
	cap = Max(JB_ROOT_COUNT(jb), 1);
	t->payment_from = palloc0(sizeof(char *) * cap);
	t->payment_to = palloc0(sizeof(char *) * cap);
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
		{
			char	   *to = v.type == jbvString ?
				pnstrdup(v.val.string.val, v.val.string.len) : NULL;

			if (to == NULL || !s2s_payment_value_is_valid(to))
				config_error(trigname, rel, ERRCODE_INVALID_PARAMETER_VALUE,
							 psprintf("payment_map maps \"%s\" to something other than online, bankwire or other", key),
							 "Affilae's payment parameter is online, bankwire or other.");
			t->payment_from[t->npayment_map] = key;
			t->payment_to[t->npayment_map] = to;
			t->npayment_map++;
		}
	}
}

void
s2s_order_trigger_build(S2SOrderTrigger *t, Relation rel, const char *trigname,
						int nargs, char **args)
{
	MemoryContext old = MemoryContextSwitchTo(t->cxt);
	TupleDesc	desc = RelationGetDescr(rel);
	S2STriggerArgs a;
	char	   *problem;
	int			f;
	int			i;
	bool		found;

	problem = s2s_trigger_args_parse(nargs, args, &a);
	if (problem)
		config_error(trigname, rel, ERRCODE_INVALID_PARAMETER_VALUE,
					 "invalid tracking arguments", problem);
	t->endpoint = pstrdup(a.endpoint);
	t->has_exprs = false;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	found = lookup_endpoint(a.endpoint, &t->kind, &t->endpoint_currency, &t->endpoint_sendable,
							&t->window_s, t->cxt);
	SPI_finish();
	MemoryContextSwitchTo(t->cxt);
	t->endpoint_missing = false;
	t->kind_problem = NULL;
	if (!found && trigname == NULL)
		config_error(trigname, rel, ERRCODE_UNDEFINED_OBJECT,
					 psprintf("endpoint \"%s\" does not exist", a.endpoint),
					 "Endpoints are the rows of s2s.endpoints.");
	t->endpoint_missing = !found;

	problem = found ? s2s_trigger_args_check_kind(&a, t->kind) : NULL;
	if (problem && trigname == NULL)
		config_error(trigname, rel, ERRCODE_INVALID_PARAMETER_VALUE,
					 psprintf("the columns given do not fit endpoint \"%s\"", a.endpoint),
					 problem);
	if (problem)
		t->kind_problem = psprintf("The tracking trigger \"%s\" does not fit endpoint \"%s\" any more: %s Run s2s.track_orders again for this table.",
								   trigname, a.endpoint, problem);

	for (f = 0; f < S2S_NFIELDS; f++)
	{
		S2SFieldInfo *fi = &t->f[f];
		const char *col = a.fields[f].column;
		Oid			typid;

		memset(fi, 0, sizeof(*fi));
		if (a.fields[f].constant)
		{
			fi->how = S2S_HOW_CONSTANT;
			fi->constant = pstrdup(a.fields[f].constant);
			if (f == S2S_F_CURRENCY && !s2s_currency_is_valid(fi->constant))
				config_error(trigname, rel, ERRCODE_INVALID_PARAMETER_VALUE,
							 psprintf("currency \"%s\" is not an ISO 4217 code", fi->constant),
							 "A currency is three capital letters, such as EUR.");
			continue;
		}
		if (a.fields[f].expr != NULL || (col != NULL && needs_expression((S2SField) f, desc, col)))
		{
			build_expression(t, rel, trigname, (S2SField) f,
							 a.fields[f].expr ? a.fields[f].expr : quote_identifier(col));
			continue;
		}
		if (col == NULL)
			continue;
		fi->attnum = find_column(desc, col, &typid);
		if (fi->attnum == InvalidAttrNumber)
			config_error(trigname, rel, ERRCODE_UNDEFINED_COLUMN,
						 psprintf("column \"%s\" of relation \"%s\" does not exist",
								  col, RelationGetRelationName(rel)),
						 SystemAttributeByName(col) != NULL ?
						 psprintf("It was given as %s; system columns cannot be used.",
								  s2s_field_names[f]) :
						 psprintf("It was given as %s.", s2s_field_names[f]));
		if (!classify((S2SField) f, typid, fi, t->cxt))
			config_error(trigname, rel, ERRCODE_DATATYPE_MISMATCH,
						 psprintf("column \"%s\" given as %s has type %s", col,
								  s2s_field_names[f], format_type_be(typid)),
						 psprintf("The %s column must be %s.", s2s_field_names[f],
								  expected_types((S2SField) f)));
	}

	build_payment_map(t, rel, trigname, a.payment_map);

	/*
	 * An order that may be validated after its insert, on a tracking without order_time:
	 * the trigger records when it first sees it with a click ID (first_seen.c).
	 */
	t->first_seen = found && t->kind == S2S_KIND_AFFILAE && t->kind_problem == NULL &&
		t->f[S2S_F_ORDER_TIME].attnum == InvalidAttrNumber &&
		t->f[S2S_F_ORDER_TIME].expr == NULL &&
		(t->f[S2S_F_STATUS].attnum != InvalidAttrNumber ||
		 t->f[S2S_F_VALIDATED_WHEN].expr != NULL) &&
		s2s_first_seen_installed();

	/* validated statuses, in the form the status column is compared in */
	t->nvalidated = a.nvalidated;
	t->validated = palloc0(sizeof(char *) * Max(a.nvalidated, 1));
	t->validated_oids = palloc0(sizeof(Oid) * Max(a.nvalidated, 1));
	for (i = 0; i < a.nvalidated; i++)
	{
		/* char(n) values are compared without their trailing blanks, on both sides */
		t->validated[i] = pstrdup(a.validated[i]);
		if (t->f[S2S_F_STATUS].how == S2S_HOW_BPCHAR)
			rtrim_blanks(t->validated[i]);
		if (t->f[S2S_F_STATUS].how == S2S_HOW_ENUM)
		{
			Oid			enumtype = getBaseType(TupleDescAttr(desc, t->f[S2S_F_STATUS].attnum - 1)->atttypid);
			HeapTuple	tup = SearchSysCache2(ENUMTYPOIDNAME, ObjectIdGetDatum(enumtype),
											  CStringGetDatum(a.validated[i]));

			if (!HeapTupleIsValid(tup))
				config_error(trigname, rel, ERRCODE_INVALID_PARAMETER_VALUE,
							 psprintf("validated status \"%s\" is not a value of type %s",
									  a.validated[i], format_type_be(enumtype)),
							 NULL);
			t->validated_oids[i] = ((Form_pg_enum) GETSTRUCT(tup))->oid;
			ReleaseSysCache(tup);
		}
	}
	MemoryContextSwitchTo(old);
}

/*
 * Whether a cached configuration serves this row as it is. Compiling an expression checks
 * the current user's EXECUTE right on each function it calls (and inlines or folds only
 * what that user may run): one compiled for another user (a SET ROLE, a SECURITY DEFINER
 * function writing the order) is compiled again.
 */
static bool
usable(S2SOrderTrigger *t, TriggerData *td)
{
	int			f;

	if (!t->valid || !t->complete || t->relid != RelationGetRelid(td->tg_relation))
		return false;
	if (t->built_as == GetUserId())
		return true;
	for (f = 0; f < S2S_NFIELDS; f++)
		if (t->f[f].expr != NULL)
			return false;
	return true;
}

/* The configuration of the firing trigger: cached, built on first use or when stale. */
static S2SOrderTrigger *
get_order_trigger(TriggerData *td)
{
	Trigger    *tg = td->tg_trigger;
	Oid			relid = RelationGetRelid(td->tg_relation);
	S2SOrderTrigger *t;
	bool		found;

	lookup_extension_objects();
	t = hash_search(trigger_cache, &tg->tgoid, HASH_ENTER, &found);
	if (found && usable(t, td))
		return t;
	if (found && t->cxt)
		MemoryContextDelete(t->cxt);
	t->cxt = AllocSetContextCreate(CacheMemoryContext, "s2s_tracking order trigger",
								   ALLOCSET_SMALL_SIZES);
	t->relid = relid;
	t->built_as = GetUserId();
	/* an invalidation that arrives while building clears valid: rebuilt next row */
	t->valid = true;
	t->complete = false;
	s2s_order_trigger_build(t, td->tg_relation, tg->tgname, tg->tgnargs, tg->tgargs);
	t->complete = true;
	return t;
}

/* Whether the firing trigger's configuration is cached and usable as it is. */
static bool
order_trigger_cached(TriggerData *td)
{
	S2SOrderTrigger *t;

	lookup_extension_objects();
	t = hash_search(trigger_cache, &td->tg_trigger->tgoid, HASH_FIND, NULL);
	return t != NULL && usable(t, td);
}

/* Whether an UPDATE left column attnum as it was: the same stored bytes, or NULL twice. */
static bool
column_unchanged(TriggerData *td, TupleDesc desc, AttrNumber attnum)
{
	Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);
	bool		oldnull;
	bool		newnull;
	Datum		oldval = heap_getattr(td->tg_trigtuple, attnum, desc, &oldnull);
	Datum		newval = heap_getattr(td->tg_newtuple, attnum, desc, &newnull);

	if (oldnull || newnull)
		return oldnull && newnull;
	return datumIsEqual(oldval, newval, att->attbyval, att->attlen);
}

/*
 * For an UPDATE when the configuration must be built (again): whether the UPDATE leaves
 * the status alone, judged from the trigger's arguments and the stored values only. Such
 * an UPDATE cannot validate the order, and a shop's every edit of an order must not fail
 * because the configuration became unusable meanwhile (a mapped column dropped, an
 * endpoint gone). False when unsure: the configuration is then built.
 */
static bool
update_leaves_status(TriggerData *td)
{
	Trigger    *tg = td->tg_trigger;
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	S2STriggerArgs a;
	AttrNumber	attnum;
	Oid			typid;

	if (s2s_trigger_args_parse(tg->tgnargs, tg->tgargs, &a) != NULL)
		return false;
	if (a.fields[S2S_F_VALIDATED_WHEN].column != NULL ||
		a.fields[S2S_F_VALIDATED_WHEN].expr != NULL)
		return false;			/* validated_when may change with any column */
	if (a.fields[S2S_F_STATUS].column == NULL)
		return true;			/* without a status column, only an INSERT counts */

	/* new click IDs on an order not validated are recorded (first_seen.c) */
	if (a.fields[S2S_F_ORDER_TIME].column == NULL && a.fields[S2S_F_ORDER_TIME].expr == NULL)
	{
		if (a.fields[S2S_F_CLICK_IDS].expr != NULL)
			return false;
		if (a.fields[S2S_F_CLICK_IDS].column != NULL)
		{
			attnum = find_column(desc, a.fields[S2S_F_CLICK_IDS].column, &typid);
			if (attnum != InvalidAttrNumber && !column_unchanged(td, desc, attnum))
				return false;
		}
	}

	attnum = find_column(desc, a.fields[S2S_F_STATUS].column, &typid);
	if (attnum == InvalidAttrNumber)
		return false;
	return column_unchanged(td, desc, attnum);
}

/*
 * A field's value for this row: its column's, or its expression's as evaluated for the
 * row (evaluate_expressions). The caller has checked that the field is configured.
 */
static inline Datum
field_datum(S2SFieldInfo *fi, HeapTuple tup, TupleDesc desc, bool *isnull)
{
	if (fi->expr != NULL)
	{
		*isnull = fi->isnull;
		return fi->value;
	}
	return heap_getattr(tup, fi->attnum, desc, isnull);
}

static inline bool
field_given(S2SFieldInfo *fi)
{
	return fi->attnum != InvalidAttrNumber || fi->expr != NULL;
}

/* Text of a field for this row; NULL when NULL or not configured. */
static char *
field_text(S2SFieldInfo *fi, HeapTuple tup, TupleDesc desc, char sep)
{
	Datum		d;
	bool		isnull;

	if (fi->how == S2S_HOW_CONSTANT)
		return (char *) fi->constant;
	if (!field_given(fi))
		return NULL;
	d = field_datum(fi, tup, desc, &isnull);
	if (isnull)
		return NULL;
	switch (fi->how)
	{
		case S2S_HOW_TEXT:
			return TextDatumGetCString(d);
		case S2S_HOW_BPCHAR:
			return rtrim_blanks(TextDatumGetCString(d));
		case S2S_HOW_TEXT_ARRAY:
			{
				ArrayType  *arr = DatumGetArrayTypeP(d);
				Datum	   *elems;
				bool	   *nulls;
				int			n;
				int			i;
				StringInfoData buf;

				deconstruct_array(arr, fi->elemtype, fi->elmlen, fi->elmbyval, fi->elmalign,
								  &elems, &nulls, &n);
				initStringInfo(&buf);
				for (i = 0; i < n; i++)
				{
					if (nulls[i])
						continue;
					if (buf.len > 0)
						appendStringInfoChar(&buf, sep);
					appendStringInfoString(&buf, TextDatumGetCString(elems[i]));
				}
				return buf.data;
			}
		case S2S_HOW_OUTPUT:
			return OutputFunctionCall(&fi->out, d);
		default:
			elog(ERROR, "unexpected value kind %d", (int) fi->how);
	}
	return NULL;
}

static bool
status_validated(S2SOrderTrigger *t, HeapTuple tup, TupleDesc desc)
{
	S2SFieldInfo *fi = &t->f[S2S_F_STATUS];
	int			i;

	if (fi->how == S2S_HOW_ENUM)
	{
		bool		isnull;
		Oid			v = DatumGetObjectId(heap_getattr(tup, fi->attnum, desc, &isnull));

		if (isnull)
			return false;
		for (i = 0; i < t->nvalidated; i++)
			if (t->validated_oids[i] == v)
				return true;
	}
	else
	{
		char	   *v = field_text(fi, tup, desc, 0);

		if (v == NULL)
			return false;
		for (i = 0; i < t->nvalidated; i++)
			if (strcmp(t->validated[i], v) == 0)
				return true;
	}
	return false;
}

/* The amount as numeric (exact, never through a float); *isnull when NULL. */
static Datum
field_amount(S2SFieldInfo *fi, HeapTuple tup, TupleDesc desc, bool *isnull)
{
	Datum		d;

	*isnull = true;
	if (!field_given(fi))
		return (Datum) 0;
	d = field_datum(fi, tup, desc, isnull);
	if (*isnull)
		return (Datum) 0;
	switch (fi->how)
	{
		case S2S_HOW_NUMERIC:
			return d;
		case S2S_HOW_INT2:
			return NumericGetDatum(int64_to_numeric(DatumGetInt16(d)));
		case S2S_HOW_INT4:
			return NumericGetDatum(int64_to_numeric(DatumGetInt32(d)));
		case S2S_HOW_INT8:
			return NumericGetDatum(int64_to_numeric(DatumGetInt64(d)));
		case S2S_HOW_MONEY:
			return DirectFunctionCall1(cash_numeric, d);
		default:
			elog(ERROR, "unexpected amount kind %d", (int) fi->how);
	}
	return (Datum) 0;
}

/*
 * The client IP; NULL when NULL or not an IP address. PostgreSQL 15 has no error-free
 * input function, so the text is checked with the parser inet_in itself uses (same
 * family choice and bit limits) before inet_in is called: a bad IP never raises.
 */
static Datum
field_ip(S2SFieldInfo *fi, HeapTuple tup, TupleDesc desc, bool *isnull)
{
	char	   *s;
	char	   *end;
	int			family;
	int			bits;
	unsigned char addr[16];

	*isnull = true;
	if (!field_given(fi))
		return (Datum) 0;
	if (fi->how == S2S_HOW_INET)
		return field_datum(fi, tup, desc, isnull);
	s = field_text(fi, tup, desc, 0);
	if (s == NULL)
		return (Datum) 0;
	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if (*s == '\0' || end - s > 64)
		return (Datum) 0;
	family = strchr(s, ':') ? PGSQL_AF_INET6 : PGSQL_AF_INET;
	bits = pg_inet_net_pton(family, s, addr, -1);
	if (bits < 0 || bits > (family == PGSQL_AF_INET6 ? 128 : 32))
		return (Datum) 0;
	*isnull = false;
	return DirectFunctionCall1(inet_in, CStringGetDatum(s));
}

/* The values of the delivery row the trigger writes (delivery_insert.c's columns). */
typedef struct NewDeliveryRow
{
	Datum		values[S2S_DC_COUNT];
	bool		isnull[S2S_DC_COUNT];
	const char *skip_reason;	/* first problem found, NULL when sendable */
} NewDeliveryRow;

static void
set_text(NewDeliveryRow *d, int c, const char *s)
{
	if (s == NULL)
		return;
	d->values[c] = CStringGetTextDatum(s);
	d->isnull[c] = false;
}

/*
 * The delivery row, through the prepared statement. Returns whether a row was inserted.
 * With probe (an UPDATE validating an order that may be enqueued already), the delivery
 * is first looked for with a fresh snapshot, so that finding it writes nothing: no dead
 * tuple, no identity value spent.
 */
static bool
insert_delivery_statement(NewDeliveryRow *d, bool probe)
{
	char		nulls[S2S_DC_COUNT];
	bool		inserted;
	int			rc;
	int			c;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (probe)
	{
		Datum		key[2] = {d->values[S2S_DC_ENDPOINT], d->values[S2S_DC_DEDUPE_KEY]};

		if (probe_plan == NULL)
		{
			Oid			types[2] = {TEXTOID, TEXTOID};

			probe_plan = s2s_prepare_kept("SELECT FROM s2s.deliveries"
									  " WHERE endpoint OPERATOR(pg_catalog.=) $1"
									  "   AND dedupe_key OPERATOR(pg_catalog.=) $2",
									  2, types);
		}
		rc = SPI_execute_snapshot(probe_plan, key, NULL, GetLatestSnapshot(),
								  InvalidSnapshot, true, false, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "delivery lookup failed: %s", SPI_result_code_string(rc));
		if (SPI_processed > 0)
		{
			SPI_finish();
			return false;
		}
	}
	/* s2s.deliveries changed (its columns, say): the statement is written again */
	if (insert_plan != NULL && insert_plan_stale)
	{
		SPI_freeplan(insert_plan);
		insert_plan = NULL;
	}
	insert_plan_stale = false;
	if (insert_plan == NULL)
	{
		Oid			types[S2S_DC_COUNT];

		for (c = 0; c < S2S_DC_COUNT; c++)
			types[c] = s2s_delivery_column_type((S2SInsertColumn) c);
		lookup_extension_objects();
		insert_plan = s2s_prepare_kept(s2s_delivery_insert_statement(s2s_deliveries_relid()),
								   S2S_DC_COUNT, types);
	}
	for (c = 0; c < S2S_DC_COUNT; c++)
		nulls[c] = d->isnull[c] ? 'n' : ' ';
	rc = SPI_execute_plan(insert_plan, d->values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "insert into s2s.deliveries failed: %s", SPI_result_code_string(rc));
	inserted = SPI_processed > 0;
	SPI_finish();
	return inserted;
}

static void
insert_delivery(NewDeliveryRow *d, bool wake, bool probe)
{
	Oid			save_user;
	int			save_sec;
	bool		inserted;

	set_text(d, S2S_DC_KIND, "conversion");
	if (d->skip_reason)
	{
		set_text(d, S2S_DC_STATUS, "skipped");
		set_text(d, S2S_DC_LAST_ERROR, d->skip_reason);
		d->values[S2S_DC_FINISHED_AT] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		d->isnull[S2S_DC_FINISHED_AT] = false;
	}
	else
		set_text(d, S2S_DC_STATUS, "pending");

	become_owner(&save_user, &save_sec);
	inserted = insert_delivery_statement(d, probe);
	SetUserIdAndSecContext(save_user, save_sec);

	/*
	 * Wake the worker only when it can send: a disabled or paused endpoint's deliveries
	 * wait, and enabling or resuming it wakes the worker (30_endpoints.sql).
	 */
	if (inserted && d->skip_reason == NULL && wake)
		s2s_wake_at_commit();
}

/* The endpoint of a firing trigger does not exist: say so, and let the order through. */
static void
warn_endpoint_missing(TriggerData *td, S2SOrderTrigger *t, const char *order_id)
{
	ereport(WARNING,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("order \"%s\" was not reported: endpoint \"%s\" does not exist",
					order_id, t->endpoint),
			 errdetail("Trigger \"%s\" on table \"%s\" sends orders to that endpoint.",
					   td->tg_trigger->tgname, RelationGetRelationName(td->tg_relation)),
			 errhint("Create the endpoint again, or stop tracking with s2s.untrack_orders.")));
}

/*
 * validated_when for this row: true only when it evaluates to true. A data exception
 * while evaluating it counts as not true, with a WARNING: the order goes through.
 */
static bool
when_true(S2SOrderTrigger *t, TriggerData *td, HeapTuple tup)
{
	S2SFieldInfo *fi = &t->f[S2S_F_VALIDATED_WHEN];
	Datum		v;
	bool		isnull;
	int			failed;
	char	   *problem;

	problem = s2s_mapping_expr_eval(&fi->expr, 1, tup, &v, &isnull, &failed, false);
	if (problem != NULL)
	{
		ereport(WARNING,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("validated_when of trigger \"%s\" on table \"%s\" could not be evaluated: %s",
						td->tg_trigger->tgname, RelationGetRelationName(td->tg_relation),
						problem),
				 errdetail("The order counts as not validated for endpoint \"%s\".",
						   t->endpoint)));
		return false;
	}
	return !isnull && DatumGetBool(v);
}

/* Whether the row is validated: its status is a validated one and validated_when holds. */
static bool
order_validated(S2SOrderTrigger *t, TriggerData *td, HeapTuple tup, TupleDesc desc)
{
	if (t->f[S2S_F_STATUS].attnum != InvalidAttrNumber && !status_validated(t, tup, desc))
		return false;
	return t->f[S2S_F_VALIDATED_WHEN].expr == NULL || when_true(t, td, tup);
}

/*
 * Evaluates every expression mapping but validated_when for the row (with key_only, those
 * of order_id and click_ids only, and any error but a cancel is returned: the order is
 * not validated, and tracking does not fail it), under one subtransaction
 * (mapping_expr.c). NULL when all could be; else the reason a delivery is skipped for,
 * and *failed the field that raised.
 */
static char *
evaluate_expressions(S2SOrderTrigger *t, HeapTuple tup, bool key_only, int *failed)
{
	S2SMappingExpr *exprs[S2S_NFIELDS];
	Datum		values[S2S_NFIELDS];
	bool		isnull[S2S_NFIELDS];
	char	   *problem;
	int			f;

	for (f = 0; f < S2S_NFIELDS; f++)
		exprs[f] = f == S2S_F_VALIDATED_WHEN ||
			(key_only && f != S2S_F_ORDER_ID && f != S2S_F_CLICK_IDS) ? NULL : t->f[f].expr;
	/* key_only (an order not validated yet): no error of the shop's code fails it now */
	problem = s2s_mapping_expr_eval(exprs, S2S_NFIELDS, tup, values, isnull, failed,
									key_only);
	for (f = 0; f < S2S_NFIELDS; f++)
		if (exprs[f] != NULL)
		{
			t->f[f].value = values[f];
			t->f[f].isnull = isnull[f];
		}
	if (problem == NULL)
		return NULL;
	return psprintf("The %s mapping could not be evaluated for this order: %s",
					s2s_field_names[*failed], problem);
}

/*
 * payment_map applied: a mapped value becomes Affilae's, any other becomes "other"; a
 * blank value stays as it is (Affilae: empty when payment does not apply).
 */
static char *
map_payment(S2SOrderTrigger *t, char *value)
{
	const char *c;
	int			i;

	for (c = value; *c == ' '; c++)
		;
	if (*c == '\0')
		return value;
	for (i = 0; i < t->npayment_map; i++)
		if (strcmp(t->payment_from[i], value) == 0)
			return t->payment_to[i];
	return "other";
}

/*
 * Whether an UPDATE moved the status into a validated one. The trigger fires on every
 * UPDATE of the row (a shop's own BEFORE trigger may set the status without the
 * statement naming it), so the common case, a status left as it was, is decided on the
 * stored values alone: no conversion to text, no comparison with the validated list.
 */
static bool
update_validates(S2SOrderTrigger *t, TriggerData *td, TupleDesc desc)
{
	S2SFieldInfo *fi = &t->f[S2S_F_STATUS];
	Form_pg_attribute att;
	bool		oldnull;
	bool		newnull;
	Datum		oldval;
	Datum		newval;

	/* validated_when may change with any column: both rows are judged in full */
	if (t->f[S2S_F_VALIDATED_WHEN].expr != NULL)
		return order_validated(t, td, td->tg_newtuple, desc) &&
			!order_validated(t, td, td->tg_trigtuple, desc);
	att = TupleDescAttr(desc, fi->attnum - 1);
	oldval = heap_getattr(td->tg_trigtuple, fi->attnum, desc, &oldnull);
	newval = heap_getattr(td->tg_newtuple, fi->attnum, desc, &newnull);
	if (newnull)
		return false;
	/* equal bytes, equal status (unequal bytes may still be one status: checked below) */
	if (!oldnull && datumIsEqual(oldval, newval, att->attbyval, att->attlen))
		return false;
	return status_validated(t, td->tg_newtuple, desc) &&
		!status_validated(t, td->tg_trigtuple, desc);
}

/*
 * Whether an UPDATE changed the order's click IDs: the stored bytes of their column, or of
 * the columns their expression reads.
 */
static bool
click_ids_changed(S2SOrderTrigger *t, TriggerData *td, TupleDesc desc)
{
	S2SFieldInfo *fi = &t->f[S2S_F_CLICK_IDS];
	int			member = -1;

	if (fi->expr == NULL)
		return fi->attnum != InvalidAttrNumber && !column_unchanged(td, desc, fi->attnum);
	while ((member = bms_next_member(fi->expr_attrs, member)) >= 0)
		if (!column_unchanged(td, desc, member + FirstLowInvalidHeapAttributeNumber))
			return true;
	return false;
}

/*
 * An order not validated (yet) that carries a click ID: records when the trigger first
 * saw it (first_seen.c), so that its click IDs are judged at that time when it is
 * validated. An UPDATE records only when it changed the click IDs, and then replaces the
 * time recorded: the new click IDs were first seen now, and judged at the old time a click
 * made since would look to come from the future (beyond click_max_skew). An insert keeps a
 * row already there (the same order inserted twice). An order ID or click IDs that
 * cannot be read record nothing: the order is then judged when it is validated.
 */
static void
note_first_seen(S2SOrderTrigger *t, TriggerData *td, TupleDesc desc, bool is_update)
{
	HeapTuple	tup = is_update ? td->tg_newtuple : td->tg_trigtuple;
	char	   *click_ids;
	char	   *order_id;
	int			failed;
	Oid			save_user;
	int			save_sec;

	if (is_update && (!click_ids_changed(t, td, desc) || order_validated(t, td, tup, desc)))
		return;
	if (t->has_exprs && evaluate_expressions(t, tup, true, &failed) != NULL)
		return;
	click_ids = field_text(&t->f[S2S_F_CLICK_IDS], tup, desc, '-');
	if (click_ids == NULL || click_ids[0] == '\0')
		return;
	order_id = field_text(&t->f[S2S_F_ORDER_ID], tup, desc, 0);
	if (order_id == NULL || order_id[0] == '\0' || strlen(order_id) > S2S_ORDER_ID_MAX)
		return;
	become_owner(&save_user, &save_sec);
	s2s_first_seen_record(t->endpoint, order_id, GetCurrentStatementStartTimestamp(),
						  is_update);
	SetUserIdAndSecContext(save_user, save_sec);
}

/* s as a new string of at most max bytes, cut on a character boundary. */
static char *
clip(const char *s, int max)
{
	int			len = strlen(s);

	if (len <= max)
		return pstrdup(s);
	return pnstrdup(s, pg_mbcliplen(s, len, max));
}

/* The trigger is fired as track_orders creates it: AFTER INSERT OR UPDATE FOR EACH ROW. */
static void
check_trigger_protocol(FunctionCallInfo fcinfo)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("s2s.enqueue_conversion() must be called as a trigger")));
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("s2s.enqueue_conversion() must be fired AFTER INSERT OR UPDATE FOR EACH ROW"),
				 errhint("Create the trigger with s2s.track_orders.")));
}

/* Is the order validated by this very change? */
static bool
validated_by_this_change(S2SOrderTrigger *t, TriggerData *td, HeapTuple tup, TupleDesc desc,
						 bool is_update)
{
	if (t->f[S2S_F_STATUS].attnum != InvalidAttrNumber || t->f[S2S_F_VALIDATED_WHEN].expr != NULL)
	{
		if (is_update ? !update_validates(t, td, desc) : !order_validated(t, td, tup, desc))
			return false;
	}
	else if (is_update)
		return false;
	return true;
}

/*
 * The row's expression mappings, evaluated once. One that raises on this row's data
 * skips the delivery with the reason (*expr_problem); without an order ID nothing can be
 * recorded: returns false.
 */
static bool
evaluate_row_expressions(S2SOrderTrigger *t, HeapTuple tup, char **expr_problem)
{
	int			failed = -1;

	if (t->has_exprs)
	{
		*expr_problem = evaluate_expressions(t, tup, false, &failed);
		if (*expr_problem != NULL && failed == S2S_F_ORDER_ID)
		{
			ereport(WARNING,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("order was not reported to endpoint \"%s\"", t->endpoint),
					 errdetail_internal("%s", *expr_problem)));
			return false;
		}
	}
	return true;
}

/* The order's ID, or NULL when the order cannot be tracked. */
static char *
tracked_order_id(S2SOrderTrigger *t, HeapTuple tup, TupleDesc desc)
{
	char	   *order_id;

	/* Without an order ID there is no dedupe key: nothing can be reported once. */
	order_id = field_text(&t->f[S2S_F_ORDER_ID], tup, desc, 0);
	if (order_id == NULL || order_id[0] == '\0')
		return NULL;
	/* a key this long would not fit the unique index: say so, but never fail the order */
	if (strlen(order_id) > S2S_ORDER_ID_MAX)
	{
		ereport(WARNING,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("order ID longer than %d bytes is not tracked", S2S_ORDER_ID_MAX),
				 errdetail("No delivery was enqueued to endpoint \"%s\" for this order.",
						   t->endpoint)));
		return NULL;
	}
	return order_id;
}

/* A delivery row with nothing set but its endpoint and keys, and the facts to judge. */
static void
start_delivery(S2SOrderTrigger *t, const char *order_id, NewDeliveryRow *d,
			   S2SDeliveryFacts *facts)
{
	int			i;

	memset(d, 0, sizeof(*d));
	for (i = 0; i < S2S_DC_COUNT; i++)
		d->isnull[i] = true;
	memset(facts, 0, sizeof(*facts));
	facts->kind = t->kind;
	facts->judged_at_s = (int64) timestamptz_to_time_t(GetCurrentStatementStartTimestamp());
	/* the endpoint's window (the program's session duration), else the setting */
	facts->click_ttl_s = t->window_s > 0 ? t->window_s : s2s_click_ttl_s;
	facts->click_max_skew_s = s2s_click_max_skew_s;
	facts->cookie_max_ids = s2s_cookie_max_ids;
	set_text(d, S2S_DC_ENDPOINT, t->endpoint);
	set_text(d, S2S_DC_DEDUPE_KEY, psprintf("order:%s", order_id));
	set_text(d, S2S_DC_CONVERSION_ID, order_id);
}

/*
 * attribution first: an order nobody referred is not a problem, just not ours (a
 * trigger that no longer fits its endpoint's kind records its problem below). Returns
 * false when there is nothing to attribute.
 */
static bool
attribute_order(S2SOrderTrigger *t, HeapTuple tup, TupleDesc desc, const char *expr_problem,
				NewDeliveryRow *d, S2SDeliveryFacts *facts, char **raw_click_ids)
{
	char	   *s;

	if (t->kind_problem)
		;
	else if (t->kind == S2S_KIND_AFFILAE)
	{
		*raw_click_ids = field_text(&t->f[S2S_F_CLICK_IDS], tup, desc, '-');
		if ((*raw_click_ids == NULL || (*raw_click_ids)[0] == '\0') && expr_problem == NULL)
			return false;
		facts->click_ids = *raw_click_ids;
	}
	else
	{
		s = field_text(&t->f[S2S_F_USER_ID], tup, desc, 0);
		if ((s == NULL || s[0] == '\0') && expr_problem == NULL)
			return false;
		set_text(d, S2S_DC_USER_ID, s);
		facts->user_id = s;
		s = field_text(&t->f[S2S_F_EVENT_ID], tup, desc, 0);
		set_text(d, S2S_DC_EVENT_ID, s);
		facts->event_id = s;
	}
	return true;
}

/*
 * The click's age is measured at the time the order was placed (order_time), never at
 * validation; without it, at the time the trigger first saw the order, not validated,
 * with a click ID (first_seen.c, whose row goes now that the conversion is enqueued or
 * skipped); else now: the order is validated as it is inserted, or was inserted before
 * tracking started (doc/orders.md).
 */
static void
read_order_time(S2SOrderTrigger *t, HeapTuple tup, TupleDesc desc, const char *order_id,
				bool is_update, NewDeliveryRow *d, S2SDeliveryFacts *facts)
{
	bool		isnull;

	if (field_given(&t->f[S2S_F_ORDER_TIME]))
	{
		Datum		placed = field_datum(&t->f[S2S_F_ORDER_TIME], tup, desc, &isnull);

		if (!isnull)
		{
			facts->judged_at_s = (int64) timestamptz_to_time_t(DatumGetTimestampTz(placed));
			d->values[S2S_DC_ORDERED_AT] = placed;
			d->isnull[S2S_DC_ORDERED_AT] = false;
		}
	}
	else if (is_update && t->first_seen)
	{
		TimestampTz seen;
		bool		found;
		Oid			save_user;
		int			save_sec;

		become_owner(&save_user, &save_sec);
		found = s2s_first_seen_take(t->endpoint, order_id, &seen);
		SetUserIdAndSecContext(save_user, save_sec);
		if (found)
		{
			facts->judged_at_s = (int64) timestamptz_to_time_t(seen);
			d->values[S2S_DC_ORDERED_AT] = TimestampTzGetDatum(seen);
			d->isnull[S2S_DC_ORDERED_AT] = false;
		}
	}
}

/* amount: mandatory for an Affilae sale (a mapping without one sends leads) */
static void
read_amount(S2SOrderTrigger *t, HeapTuple tup, TupleDesc desc, NewDeliveryRow *d,
			S2SDeliveryFacts *facts)
{
	Datum		amount;
	bool		isnull;

	facts->amount_required = t->kind == S2S_KIND_AFFILAE && field_given(&t->f[S2S_F_AMOUNT]);
	amount = field_amount(&t->f[S2S_F_AMOUNT], tup, desc, &isnull);
	if (!isnull)
	{
		facts->has_amount = true;
		facts->amount = DatumGetNumeric(amount);
		d->values[S2S_DC_AMOUNT] = amount;
		d->isnull[S2S_DC_AMOUNT] = false;
	}
}

/*
 * currency: the order's (upper-cased), else the endpoint's. A bad one is kept, cut to
 * whole characters, so that the reason shows it and s2s.retry refuses it as well
 * (never the endpoint's currency in its place: an order in US$ is not one in EUR).
 * Neither: NULL, and the delivery is skipped with the reason (delivery_check.c).
 */
static void
read_currency(S2SOrderTrigger *t, HeapTuple tup, TupleDesc desc, NewDeliveryRow *d,
			  S2SDeliveryFacts *facts)
{
	char	   *s;

	if (t->kind != S2S_KIND_SWAARM_S2SEVENT)
	{
		const char *currency = t->endpoint_currency;

		s = field_text(&t->f[S2S_F_CURRENCY], tup, desc, 0);
		if (s != NULL)
		{
			char	   *c;

			while (*s == ' ')
				s++;
			s = rtrim_blanks(s);
			for (c = s; *c; c++)
				if (*c >= 'a' && *c <= 'z')
					*c -= 'a' - 'A';
			if (s[0] != '\0')
				currency = s2s_currency_is_valid(s) ? s : clip(s, S2S_RAW_CURRENCY_MAX);
		}
		set_text(d, S2S_DC_CURRENCY, currency);
		facts->currency = currency;
	}
}

/* The fields sent as they are: customer, payment, voucher, cv, user agent, referer, IP. */
static void
read_other_fields(S2SOrderTrigger *t, HeapTuple tup, TupleDesc desc, NewDeliveryRow *d,
				  S2SDeliveryFacts *facts)
{
	char	   *s;
	bool		isnull;

	set_text(d, S2S_DC_CUSTOMER, field_text(&t->f[S2S_F_CUSTOMER], tup, desc, 0));
	s = field_text(&t->f[S2S_F_PAYMENT], tup, desc, 0);
	if (s != NULL && t->npayment_map > 0)
		s = map_payment(t, s);
	set_text(d, S2S_DC_PAYMENT, s);
	set_text(d, S2S_DC_VOUCHER, field_text(&t->f[S2S_F_VOUCHER], tup, desc, ';'));
	set_text(d, S2S_DC_CV, field_text(&t->f[S2S_F_CV], tup, desc, 0));
	facts->user_agent = field_text(&t->f[S2S_F_USER_AGENT], tup, desc, 0);
	set_text(d, S2S_DC_USER_AGENT, facts->user_agent);
	set_text(d, S2S_DC_REFERER, field_text(&t->f[S2S_F_REFERER], tup, desc, 0));
	d->values[S2S_DC_CLIENT_IP] = field_ip(&t->f[S2S_F_CLIENT_IP], tup, desc, &isnull);
	d->isnull[S2S_DC_CLIENT_IP] = isnull;
	facts->has_client_ip = !isnull;
}

/* the rules s2s.retry applies again (delivery_check.c) */
static void
judge_delivery(S2SOrderTrigger *t, const char *expr_problem, const char *raw_click_ids,
			   NewDeliveryRow *d, S2SDeliveryFacts *facts)
{
	char	   *click_ids;

	d->skip_reason = s2s_delivery_problem(facts, &click_ids);
	if (expr_problem)
		d->skip_reason = expr_problem;
	/* a copy: hold_endpoint may free t's memory when it builds the configuration again */
	if (t->kind_problem)
		d->skip_reason = pstrdup(t->kind_problem);
	if (t->kind == S2S_KIND_AFFILAE && raw_click_ids != NULL)
	{
		/*
		 * Valid click IDs are stored normalised; without any, the raw value is kept (its
		 * first 1 KB, whole characters) so that the reason can be checked.
		 */
		if (click_ids == NULL)
			click_ids = clip(raw_click_ids, S2S_RAW_CLICK_IDS_MAX);
		set_text(d, S2S_DC_CLICK_IDS, click_ids);
	}
}

/*
 * Hold the endpoint against deletion and renaming until commit (endpoint_lock.c). A
 * wait for a transaction that changed it ends with the invalidation that transaction
 * sent: the configuration is built again (*t), and an endpoint gone or of another kind
 * (possible only behind the guards) is reported as above, never raised. Returns false
 * when the endpoint is gone.
 */
static bool
hold_endpoint(TriggerData *td, S2SOrderTrigger **t, const char *order_id, NewDeliveryRow *d)
{
	s2s_endpoint_lock((*t)->endpoint, false);
	if (!(*t)->valid)
	{
		*t = get_order_trigger(td);
		if ((*t)->endpoint_missing)
		{
			warn_endpoint_missing(td, *t, order_id);
			return false;
		}
		if ((*t)->kind_problem)
			d->skip_reason = pstrdup((*t)->kind_problem);
	}
	return true;
}

/*
 * The orders trigger: one step after another, each of which may end with nothing
 * enqueued (the order does not count, or cannot be tracked: never an error).
 */
Datum
s2s_enqueue_conversion(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	S2SOrderTrigger *t;
	HeapTuple	tup;
	TupleDesc	desc;
	NewDeliveryRow	d;
	S2SDeliveryFacts facts;
	char	   *order_id;
	char	   *raw_click_ids = NULL;
	char	   *expr_problem = NULL;
	bool		is_update;

	check_trigger_protocol(fcinfo);

	is_update = TRIGGER_FIRED_BY_UPDATE(td->tg_event);
	if (is_update && !order_trigger_cached(td) && update_leaves_status(td))
		return PointerGetDatum(NULL);
	t = get_order_trigger(td);
	tup = is_update ? td->tg_newtuple : td->tg_trigtuple;
	desc = RelationGetDescr(td->tg_relation);

	if (!validated_by_this_change(t, td, tup, desc, is_update))
	{
		if (t->first_seen)
			note_first_seen(t, td, desc, is_update);
		return PointerGetDatum(NULL);
	}
	if (!evaluate_row_expressions(t, tup, &expr_problem))
		return PointerGetDatum(NULL);
	order_id = tracked_order_id(t, tup, desc);
	if (order_id == NULL)
		return PointerGetDatum(NULL);

	/*
	 * The endpoint is gone or of a kind the trigger's columns do not fit. The endpoints
	 * guards refuse both changes while a trigger tracks the endpoint, but a restore in
	 * another order or a change made with the guards disabled can still leave it so: the
	 * order goes through all the same, with a WARNING when there is no endpoint to record
	 * a delivery for, and with a skipped delivery that says why when there is one.
	 */
	if (t->endpoint_missing)
	{
		warn_endpoint_missing(td, t, order_id);
		return PointerGetDatum(NULL);
	}

	start_delivery(t, order_id, &d, &facts);
	if (!attribute_order(t, tup, desc, expr_problem, &d, &facts, &raw_click_ids))
		return PointerGetDatum(NULL);
	read_order_time(t, tup, desc, order_id, is_update, &d, &facts);
	read_amount(t, tup, desc, &d, &facts);
	read_currency(t, tup, desc, &d, &facts);
	read_other_fields(t, tup, desc, &d, &facts);
	judge_delivery(t, expr_problem, raw_click_ids, &d, &facts);
	if (!hold_endpoint(td, &t, order_id, &d))
		return PointerGetDatum(NULL);

	/*
	 * An UPDATE that validates the order may validate it again (paid, cancelled, paid): the
	 * delivery is then looked for before anything is written.
	 */
	insert_delivery(&d, t->endpoint_sendable, is_update);
	return PointerGetDatum(NULL);
}

/*
 * Statement trigger on s2s.endpoints: a change there (kind, currency, a removed or
 * renamed endpoint) must reach the configuration every backend cached. A relcache
 * invalidation is transactional: other backends see it when the change commits, this
 * one at its next command.
 */
Datum
s2s_endpoints_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("s2s_endpoints_changed() must be called as a trigger")));
	CacheInvalidateRelcache(td->tg_relation);
	return PointerGetDatum(NULL);
}
