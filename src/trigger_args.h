/*
 * trigger_args.h
 *		The arguments of the orders trigger (s2s.enqueue_conversion) and the rules that
 *		say which of them each endpoint kind needs (pure).
 *
 * s2s.track_orders writes one trigger argument per setting, "key=value":
 *		endpoint=NAME					the s2s.endpoints row (always first)
 *		order_id=COLUMN					a column of the orders table, its name verbatim
 *		amount:expr=EXPRESSION			an SQL expression over the row (mapping_expr.c),
 *										in its deparsed form
 *		payment_map={"card":"online"}	jsonb text: the shop's payment values to Affilae's
 *		event_id='purchase'				a constant: the value is an SQL string literal
 *		validated_status=paid			one argument per validated status
 * The key ends at the first '='; everything after it is the value, so a column name may
 * contain any character (quotes, '=', ';' ...). A value that starts and ends with a
 * single quote is a constant (inner '' stands for one quote); constants are accepted only
 * for the free-text fields (s2s_field_allows_constant).
 *
 * Nothing here reads the catalog: the caller resolves the column names against the
 * relation and reports the returned messages (full sentences) with ereport.
 */
#ifndef S2S_TRIGGER_ARGS_H
#define S2S_TRIGGER_ARGS_H

/* The order's fields, in the order of s2s.track_orders's arguments. */
typedef enum S2SField
{
	S2S_F_ORDER_ID = 0,
	S2S_F_AMOUNT,
	S2S_F_CURRENCY,
	S2S_F_CLICK_IDS,
	S2S_F_CUSTOMER,
	S2S_F_PAYMENT,
	S2S_F_VOUCHER,
	S2S_F_CV,
	S2S_F_CLIENT_IP,
	S2S_F_USER_AGENT,
	S2S_F_REFERER,
	S2S_F_STATUS,
	S2S_F_USER_ID,
	S2S_F_EVENT_ID,
	S2S_F_ORDER_TIME,			/* when the order was placed: timestamptz */
	S2S_F_VALIDATED_WHEN,		/* boolean gate, besides status */
	S2S_NFIELDS
} S2SField;

/* The kinds of s2s.endpoints (enum s2s.endpoint_kind). */
typedef enum S2SEndpointKind
{
	S2S_KIND_AFFILAE,
	S2S_KIND_SWAARM_POSTBACK,
	S2S_KIND_SWAARM_S2SEVENT
} S2SEndpointKind;

typedef struct S2SFieldArg
{
	const char *column;			/* column name, or NULL */
	const char *constant;		/* constant value (unquoted), or NULL */
	const char *expr;			/* SQL expression over the row, or NULL */
} S2SFieldArg;

typedef struct S2STriggerArgs
{
	const char *endpoint;
	S2SFieldArg fields[S2S_NFIELDS];
	int			nvalidated;
	const char **validated;		/* the validated statuses, nvalidated of them */
	const char *payment_map;	/* jsonb text, or NULL */
} S2STriggerArgs;

/* The values payment_map may map to (Affilae's payment parameter). */
extern bool s2s_payment_value_is_valid(const char *v);

/* "order_id", "amount", ...: the key of each field (and track_orders's argument name). */
extern const char *const s2s_field_names[S2S_NFIELDS];

/* Whether a field may be a constant instead of a column. */
extern bool s2s_field_allows_constant(S2SField f);

/*
 * Parses the trigger's arguments into *out (pointing into args and palloc'd copies).
 * Returns NULL when they are well-formed, else a palloc'd sentence saying what is wrong:
 * no or repeated endpoint, unknown or repeated key, empty value, constant where a column
 * is required, status without validated statuses or the reverse.
 */
extern char *s2s_trigger_args_parse(int nargs, char **args, S2STriggerArgs *out);

/* "affilae" etc. to the kind; false when unknown. */
extern bool s2s_endpoint_kind_parse(const char *name, S2SEndpointKind *kind);
extern const char *s2s_endpoint_kind_name(S2SEndpointKind kind);

/*
 * Whether the fields fit an endpoint of this kind: what each kind requires (affilae:
 * order_id, click_ids: amount only for a sale; swaarm_postback: order_id, user_id, event_id;
 * swaarm_s2sevent: those and client_ip, user_agent) and what it would silently ignore
 * (refused, so that a mapping never looks effective when it is not). NULL when they fit,
 * else a palloc'd sentence.
 */
extern char *s2s_trigger_args_check_kind(const S2STriggerArgs *a, S2SEndpointKind kind);

#endif							/* S2S_TRIGGER_ARGS_H */
