/*
 * delivery_read.h
 *		One delivery as the worker and s2s.preview() read it: the SQL select list that
 *		fetches it, and the mapping of a result row onto the render.h structures.
 *
 * Both the worker's claim (in its RETURNING clause) and s2s.preview() use
 * S2S_DELIVERY_SELECT_LIST and s2s_read_delivery_from_tuple(), so there is one way of turning a
 * row of s2s.deliveries into a request. The list refers to three aliases, which the
 * statement must define:
 *		d	s2s.deliveries
 *		e	s2s.endpoints						(e.name = d.endpoint)
 *		s	s2s_private.endpoint_secrets		(LEFT JOIN, s.endpoint = e.name)
 * e.g.	UPDATE s2s.deliveries d SET ... FROM s2s.endpoints e
 *			LEFT JOIN s2s_private.endpoint_secrets s ON s.endpoint = e.name
 *		 WHERE e.name = d.endpoint AND ... RETURNING S2S_DELIVERY_SELECT_LIST
 * Every output column is named s2s_*, so a statement may add its own columns after it.
 */
#ifndef S2S_DELIVERY_READ_H
#define S2S_DELIVERY_READ_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"

#include "render.h"

/*
 * Text columns carry their value's text form: amounts are numeric's output ("123.45",
 * exact, never through a float; render.c shapes them for the currency); the client IP is
 * host(inet), without a netmask. The currency is the delivery's, else the endpoint's (NULL
 * when neither has one: no implied currency). Every function and type is
 * schema-qualified and every operator exact (the worker runs this; see queue.c);
 * EXTRACT(... FROM ...) is pg_catalog.extract by the grammar.
 */
#define S2S_DELIVERY_SELECT_LIST \
	"d.id AS s2s_id, " \
	"d.endpoint AS s2s_endpoint, " \
	"d.kind::pg_catalog.text AS s2s_delivery_kind, " \
	"d.attempts AS s2s_attempts, " \
	"d.first_attempt_at AS s2s_first_attempt_at, " \
	"d.created_at AS s2s_created_at, " \
	"e.kind::pg_catalog.text AS s2s_endpoint_kind, " \
	"e.url AS s2s_url, " \
	"s.secret AS s2s_secret, " \
	"e.http_method AS s2s_http_method, " \
	"e.token_in_query AS s2s_token_in_query, " \
	"e.refused_pattern AS s2s_refused_pattern, " \
	"e.max_concurrency AS s2s_max_concurrency, " \
	"(extract(epoch FROM e.request_timeout) OPERATOR(pg_catalog.*) 1000::pg_catalog.numeric)" \
	"::pg_catalog.int8 AS s2s_request_timeout_ms, " \
	"extract(epoch FROM e.retry_window)::pg_catalog.int8 AS s2s_retry_window_s, " \
	"d.conversion_id AS s2s_conversion_id, " \
	"d.amount::pg_catalog.text AS s2s_amount, " \
	"coalesce(d.currency, e.currency) AS s2s_currency, " \
	"d.payment AS s2s_payment, " \
	"d.customer AS s2s_customer, " \
	"d.cv AS s2s_cv, " \
	"d.voucher AS s2s_voucher, " \
	"d.click_ids AS s2s_click_ids, " \
	"d.user_id AS s2s_user_id, " \
	"d.event_id AS s2s_event_id, " \
	"d.event_value AS s2s_event_value, " \
	"d.aggregated_event_value::pg_catalog.text AS s2s_aggregated_event_value, " \
	"pg_catalog.host(d.client_ip) AS s2s_client_ip, " \
	"d.user_agent AS s2s_user_agent, " \
	"d.referer AS s2s_referer"

/*
 * Attribute numbers of the select list's columns in one result TupleDesc. Resolve them
 * once (s2s_read_columns_init) per prepared statement / TupleDesc, not per row.
 */
typedef struct S2SReadColumns
{
	int			id;
	int			endpoint;
	int			delivery_kind;
	int			attempts;
	int			first_attempt_at;
	int			created_at;
	int			endpoint_kind;
	int			url;
	int			secret;
	int			http_method;
	int			token_in_query;
	int			refused_pattern;
	int			max_concurrency;
	int			request_timeout_ms;
	int			retry_window_s;
	int			conversion_id;
	int			amount;
	int			currency;
	int			payment;
	int			customer;
	int			cv;
	int			voucher;
	int			click_ids;
	int			user_id;
	int			event_id;
	int			event_value;
	int			aggregated_event_value;
	int			client_ip;
	int			user_agent;
	int			referer;
} S2SReadColumns;

/* One delivery row, ready for s2s_render_request(). Strings are palloc'd copies. */
typedef struct S2SReadDelivery
{
	int64		id;
	char	   *endpoint;		/* endpoint name */
	bool		is_event;		/* kind 'event' (else 'conversion') */
	int32		attempts;		/* attempts made before this one */
	bool		has_first_attempt;
	TimestampTz first_attempt_at;
	TimestampTz created_at;
	int32		max_concurrency;	/* endpoint override; 0 = the setting */
	int64		request_timeout_ms; /* endpoint override; 0 = the setting */
	int64		retry_window_s; /* endpoint override; -1 = the setting */
	char	   *refused_pattern;	/* endpoint's refused_pattern (refused.c); NULL: none */
	S2SEndpointConf endpoint_conf;
	S2SDeliveryData data;
} S2SReadDelivery;

/*
 * Resolves the attribute numbers of S2S_DELIVERY_SELECT_LIST's columns in tupdesc and
 * checks their types; ereports ERROR if the statement does not return them all.
 */
extern void s2s_read_columns_init(S2SReadColumns *cols, TupleDesc tupdesc);

/*
 * Fills *out from one result row. An endpoint kind that is not one of the three known
 * ones ereports ERROR (the enum makes that impossible short of a catalog change).
 */
extern void s2s_read_delivery_from_tuple(const S2SReadColumns *cols, TupleDesc tupdesc,
									HeapTuple tuple, S2SReadDelivery *out);

#endif							/* S2S_DELIVERY_READ_H */
