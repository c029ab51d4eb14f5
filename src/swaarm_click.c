/*
 * swaarm_click.c
 *		s2s.swaarm_click(endpoint, ip, user_agent): asks Swaarm for a click ID when a
 *		landing page was reached without clkid.
 *
 * GET <tracking domain>/click?no_redirect=true&user_ip=..&user_ua=..&s2stoken=.. answers
 * {"id": "..."} (swaarm_answer.c reads the ID). The call is synchronous, on the same HTTP
 * client and settings as the worker (http.c: https only unless s2s_tracking.allow_http,
 * certificate verification, no redirects, no address outside s2s_tracking.allowed_networks
 * that netcheck.c refuses, connect and total timeouts, body capped), and the backend waits
 * on the client's descriptor and its latch, so that a cancel or statement_timeout
 * interrupts it at once. The function is SECURITY DEFINER: the app role calls it without
 * being able to read the token, and the token never appears in an error message.
 *
 * The client is kept between calls of one backend (keep-alive: a landing page does not pay
 * a TLS handshake per visitor) and destroyed on any error, so that no transfer outlives
 * the call that started it.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "click.h"
#include "http.h"
#include "redact.h"
#include "redact_copy.h"
#include "render.h"
#include "settings.h"
#include "swaarm_answer.h"

PG_FUNCTION_INFO_V1(s2s_swaarm_click);

#define CLICK_MAX_RESPONSE 16384

static HttpClient *click_client = NULL;

/* The result being read: static, so that the error path can release it after longjmp. */
static HttpResult click_result;
static bool click_result_held = false;

typedef struct ClickEndpoint
{
	char	   *caller;			/* the role calling, as s2s.track_event knows it */
	bool		allowed;		/* the caller may use the endpoint (its event_roles) */
	bool		administrator;	/* the caller may use any endpoint (told what exists) */
	char	   *kind;
	char	   *url;
	bool		enabled;
	char	   *secret;
	long		timeout_ms;		/* the endpoint's request_timeout, or 0 */
} ClickEndpoint;

/*
 * Reads the endpoint, and whether the caller may use it: the same rule as s2s.track_event
 * (s2s_private.may_track_event over the endpoint's event_roles), the caller being the role
 * set with SET ROLE, else the session's login role (current_user is this SECURITY DEFINER
 * function's owner). Returns whether the endpoint exists.
 */
static bool
load_endpoint(const char *name, ClickEndpoint *ep)
{
	MemoryContext callercxt = CurrentMemoryContext;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};
	bool		found = false;
	bool		isnull;
	int			rc;

	SPI_connect();
	rc = SPI_execute_with_args(
		"WITH c AS (SELECT (CASE WHEN pg_catalog.current_setting('role') OPERATOR(pg_catalog.=) 'none'"
		"                        THEN session_user"
		"                        ELSE pg_catalog.current_setting('role') END)::pg_catalog.name AS caller)"
		"SELECT c.caller::pg_catalog.text, s2s_private.may_track_event(NULL, c.caller),"
		"       e.name IS NOT NULL, s2s_private.may_track_event(e.event_roles, c.caller),"
		"       e.kind::pg_catalog.text, e.url, e.enabled, s.secret,"
		"       (pg_catalog.date_part('epoch', e.request_timeout) OPERATOR(pg_catalog.*) 1000::pg_catalog.float8)::pg_catalog.int8"
		"  FROM c"
		"  LEFT JOIN s2s.endpoints e ON e.name OPERATOR(pg_catalog.=) $1"
		"  LEFT JOIN s2s_private.endpoint_secrets s ON s.endpoint OPERATOR(pg_catalog.=) e.name",
		1, argtypes, values, NULL, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "reading endpoint failed: %s", SPI_result_code_string(rc));
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *v;
		Datum		d;

		ep->caller = MemoryContextStrdup(callercxt, SPI_getvalue(tup, desc, 1));
		ep->administrator = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull)) && !isnull;
		found = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		ep->allowed = found && DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull)) && !isnull;
		if (found)
		{
			ep->kind = MemoryContextStrdup(callercxt, SPI_getvalue(tup, desc, 5));
			ep->url = MemoryContextStrdup(callercxt, SPI_getvalue(tup, desc, 6));
			ep->enabled = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
			v = SPI_getvalue(tup, desc, 8);
			ep->secret = v ? MemoryContextStrdup(callercxt, v) : NULL;
			d = SPI_getbinval(tup, desc, 9, &isnull);
			ep->timeout_ms = isnull ? 0 : (long) Min(DatumGetInt64(d), (int64) INT_MAX);
		}
	}
	SPI_finish();
	return found;
}

/*
 * The start of a response body for an error detail: printable, short, the token masked
 * in every form (redact.h) before anything is cut, so no part of it shows. "cut": the
 * client kept only the start of the body.
 */
static char *
body_excerpt(const char *body, size_t len, const char *secret, bool cut)
{
	StringInfoData s;
	char	   *masked;

	if (len == 0)
		return pstrdup("(empty)");
	masked = palloc(len);
	(void) s2s_redact(body, len, masked, &secret, 1, cut);
	initStringInfo(&s);
	for (size_t i = 0; i < len && i < 200; i++)
		appendStringInfoChar(&s, (masked[i] >= 0x20 && masked[i] < 0x7f) ? masked[i] : ' ');
	if (len > 200)
		appendStringInfoString(&s, "...");
	pfree(masked);
	return s.data;
}

/* The visitor's arguments, checked. */
typedef struct ClickArgs
{
	char	   *name;			/* the endpoint */
	char	   *ip;				/* host(ip): no netmask */
	char	   *ua;
} ClickArgs;

/* What the HTTP exchange left, copied out of the client's result. */
typedef struct ClickAnswer
{
	long		status;
	HttpErrorKind kind;
	char		error[256];
	char	   *body;
	size_t		body_len;
	bool		body_cut;		/* the client kept only the start of the body */
} ClickAnswer;

static void
read_arguments(FunctionCallInfo fcinfo, ClickArgs *args)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("endpoint must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("ip must not be null"),
				 errdetail("Swaarm's click request requires the visitor's IP address (user_ip).")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("user_agent must not be null"),
				 errdetail("Swaarm's click request requires the visitor's user agent (user_ua)."),
				 errhint("Pass an empty string when the visitor sent no User-Agent header.")));

	args->name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	args->ip = TextDatumGetCString(DirectFunctionCall1(network_host, PG_GETARG_DATUM(1)));
	args->ua = text_to_cstring(PG_GETARG_TEXT_PP(2));
}

/*
 * The endpoint, when the caller may use it and it can answer a click request. Permission
 * first, with the same answer for an endpoint that does not exist, so that a caller who
 * may not use an endpoint learns nothing about it (as s2s.track_event).
 */
static void
load_usable_endpoint(const char *name, ClickEndpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	if (!load_endpoint(name, ep) && ep->administrator)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("endpoint \"%s\" does not exist", name)));
	if (!ep->allowed)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to request click IDs from endpoint \"%s\"", name),
				 errdetail("Role \"%s\" is not allowed by the event_roles of an endpoint of that name, if there is one.",
						   ep->caller),
				 errhint("An administrator adds the role to the endpoint's event_roles in s2s.endpoints.")));
	if (strcmp(ep->kind, "swaarm_postback") != 0 && strcmp(ep->kind, "swaarm_s2sevent") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("endpoint \"%s\" is not a Swaarm endpoint", name),
				 errdetail("Its kind is %s; click IDs are requested from swaarm_postback or swaarm_s2sevent endpoints.",
						   ep->kind)));
	if (!ep->enabled)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("endpoint \"%s\" is disabled", name),
				 errhint("Set enabled = true in s2s.endpoints to use it.")));
	if (ep->secret == NULL || ep->secret[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("endpoint \"%s\" has no token", name),
				 errdetail("Swaarm's click request is authenticated by the endpoint's S2S token (s2stoken)."),
				 errhint("Set the secret column of the endpoint in s2s.endpoints.")));
}

/*
 * <tracking domain>/click?no_redirect=true&user_ip=..&user_ua=..&s2stoken=.., the
 * domain's trailing slashes dropped. The caller clears it once sent: it holds the token.
 */
static StringInfo
click_url(const ClickEndpoint *ep, const ClickArgs *args)
{
	StringInfo	url = makeStringInfo();
	StringInfoData token_enc;
	size_t		ulen = strlen(ep->url);

	while (ulen > 0 && ep->url[ulen - 1] == '/')
		ulen--;
	appendBinaryStringInfo(url, ep->url, ulen);
	appendStringInfoString(url, "/click?no_redirect=true&user_ip=");
	s2s_append_percent_encoded(url, args->ip);
	appendStringInfoString(url, "&user_ua=");
	s2s_append_percent_encoded(url, args->ua);
	appendStringInfoString(url, "&s2stoken=");
	initStringInfo(&token_enc);
	s2s_append_percent_encoded(&token_enc, ep->secret);
	appendStringInfoString(url, token_enc.data);
	explicit_bzero(token_enc.data, token_enc.len);
	return url;
}

/* The worker's transport rules and settings, the endpoint's own timeout first. */
static void
client_options(const ClickEndpoint *ep, HttpClientOptions *opt)
{
	NetPolicy	policy = s2s_network_policy();

	memset(opt, 0, sizeof(*opt));
	opt->max_connections = 4;
	opt->max_host_connections = 4;
	opt->connect_timeout_ms = s2s_connect_timeout_ms;
	opt->total_timeout_ms = ep->timeout_ms > 0 ? ep->timeout_ms : s2s_request_timeout_ms;
	opt->max_response_bytes = CLICK_MAX_RESPONSE;
	opt->allow_http = s2s_allow_http;
	opt->allowed_networks = policy.allowed;
	opt->n_allowed_networks = policy.n_allowed;
	opt->allow_link_local = policy.allow_link_local;
	opt->user_agent = "s2s_tracking/" S2S_VERSION;
}

/*
 * Sends the request on the backend's client (made on first use) and waits for its result
 * on the client's descriptor and the latch, so that a cancel or statement_timeout
 * interrupts at once. On any error the client is destroyed: no transfer outlives the call.
 */
static void
exchange(const char *name, const HttpClientOptions *opt, const char *url, ClickAnswer *answer)
{
	HttpRequest req;
	char		errbuf[256];

	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = url;

	PG_TRY();
	{
		TimestampTz deadline;

		if (click_client == NULL)
		{
			click_client = s2s_http_client_create(opt, errbuf, sizeof(errbuf));
			if (click_client == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("could not create the HTTP client: %s", errbuf)));
		}
		else
			s2s_http_client_set_options(click_client, opt);

		if (!s2s_http_submit(click_client, &req, errbuf, sizeof(errbuf)))
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not request a click ID from endpoint \"%s\": %s", name, errbuf)));

		/* the client enforces the timeouts (http.c); this only guards against a stuck client */
		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											   (int64) opt->connect_timeout_ms +
											   opt->total_timeout_ms + 5000);
		for (;;)
		{
			long		timeout;
			int			rc;

			CHECK_FOR_INTERRUPTS();
			s2s_http_process(click_client);
			if (s2s_http_next_result(click_client, &click_result))
			{
				click_result_held = true;
				break;
			}
			if (GetCurrentTimestamp() > deadline)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("click request to endpoint \"%s\" did not finish in time", name)));
			timeout = s2s_http_timeout_ms(click_client);
			if (timeout < 0 || timeout > 1000)
				timeout = 1000;
			rc = WaitLatchOrSocket(MyLatch,
								   WL_LATCH_SET | WL_SOCKET_READABLE | WL_TIMEOUT |
								   WL_EXIT_ON_PM_DEATH,
								   s2s_http_wait_fd(click_client), timeout, PG_WAIT_EXTENSION);
			if (rc & WL_LATCH_SET)
				ResetLatch(MyLatch);
		}

		answer->status = click_result.http_status;
		answer->kind = click_result.error_kind;
		strlcpy(answer->error, click_result.error, sizeof(answer->error));
		answer->body_len = click_result.body_len;
		answer->body_cut = click_result.body_truncated;
		/* every byte as received: a NUL in the body must not shorten the copy */
		answer->body = palloc(answer->body_len + 1);
		if (answer->body_len > 0)
			memcpy(answer->body, click_result.body, answer->body_len);
		answer->body[answer->body_len] = '\0';
		s2s_http_result_release(&click_result);
		click_result_held = false;
	}
	PG_CATCH();
	{
		if (click_result_held)
			s2s_http_result_release(&click_result);
		click_result_held = false;
		s2s_http_client_destroy(click_client);
		click_client = NULL;
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/* An error unless the exchange ended with a 2xx answer. */
static void
check_answered(const char *name, const ClickEndpoint *ep, const ClickAnswer *answer)
{
	if (answer->kind != HTTP_ERROR_NONE && (answer->status < 200 || answer->status > 299))
	{
		/* no answer: keep no half-used connection state for the next call either */
		s2s_http_client_destroy(click_client);
		click_client = NULL;
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("click request to endpoint \"%s\" failed: %s", name,
						answer->kind == HTTP_ERROR_TIMEOUT ? "timeout" :
						answer->kind == HTTP_ERROR_TLS ? "TLS error" :
						answer->kind == HTTP_ERROR_REFUSED ? "request refused" : "network error"),
				 errdetail("%s.", s2s_redact_copy(answer->error, ep->secret)),
				 answer->kind == HTTP_ERROR_REFUSED ?
				 errhint("Endpoint URLs must use https unless s2s_tracking.allow_http is on, and reach only public addresses unless s2s_tracking.allowed_networks lists theirs.") : 0));
	}
	if (answer->status < 200 || answer->status > 299)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("click request to endpoint \"%s\" was answered HTTP %ld", name,
						answer->status),
				 errdetail("The response began: %s",
						   body_excerpt(answer->body, answer->body_len, ep->secret,
										answer->body_cut))));
}

/* The click ID of a 2xx answer (swaarm_answer.h), or an error saying what is wrong. */
static char *
answer_click_id(const char *name, const ClickEndpoint *ep, const ClickAnswer *answer)
{
	char	   *id = s2s_swaarm_answer_id(answer->body, answer->body_len);
	char	   *problem;

	if (id == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("endpoint \"%s\" answered the click request without a click ID", name),
				 errdetail("Expected a JSON object with an \"id\"; the response began: %s",
						   body_excerpt(answer->body, answer->body_len, ep->secret,
										answer->body_cut))));

	/* the one rule for Swaarm click IDs: what this returns, record_click accepts */
	problem = s2s_swaarm_check(id, strlen(id));
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("endpoint \"%s\" answered the click request with an invalid click ID", name),
				 errdetail("%s", problem)));
	return id;
}

Datum
s2s_swaarm_click(PG_FUNCTION_ARGS)
{
	ClickArgs	args;
	ClickEndpoint ep;
	HttpClientOptions opt;
	StringInfo	url;
	ClickAnswer answer;
	char	   *id;

	read_arguments(fcinfo, &args);
	load_usable_endpoint(args.name, &ep);
	url = click_url(&ep, &args);
	client_options(&ep, &opt);
	exchange(args.name, &opt, url->data, &answer);
	check_answered(args.name, &ep, &answer);
	id = answer_click_id(args.name, &ep, &answer);

	/* the token leaves no copy behind in this backend's memory */
	explicit_bzero(ep.secret, strlen(ep.secret));
	explicit_bzero(url->data, url->len);

	PG_RETURN_TEXT_P(cstring_to_text(id));
}
