/*
 * swaarm_click.c
 *		s2s.swaarm_click(endpoint, ip, user_agent): asks Swaarm for a click ID when a
 *		landing page was reached without clkid.
 *
 * GET <tracking domain>/click?no_redirect=true&user_ip=..&user_ua=..&s2stoken=.. answers
 * {"id": "..."}. The call is synchronous, on the same HTTP client and settings as the
 * worker (http.c: https only unless s2s_tracking.allow_http, certificate verification,
 * no redirects, no address outside s2s_tracking.allowed_networks that netcheck.c refuses,
 * connect and total timeouts, body capped), and the backend waits on the
 * client's descriptor and its latch, so that a cancel or statement_timeout interrupts
 * it at once. The function is SECURITY DEFINER: the app role calls it without being able
 * to read the token, and the token never appears in an error message.
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

PG_FUNCTION_INFO_V1(s2s_swaarm_click);

#define CLICK_MAX_RESPONSE 16384
#define CLICK_MAX_ID_LEN 256
#define JSON_MAX_DEPTH 64

static HttpClient *click_client = NULL;

/* The result being read: static, so that the error path can release it after longjmp. */
static HttpResult click_result;
static bool click_result_held = false;

/* ---- the answer: {"id": "..."} (pure) ---- */

typedef struct JsonCursor
{
	const char *p;
	const char *end;
} JsonCursor;

static void
json_ws(JsonCursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int
hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * A JSON string at c->p. With out, its value is appended when it is printable ASCII
 * (escapes decoded) and *ascii tells whether it was; without, it is only checked.
 */
static bool
json_string(JsonCursor *c, StringInfo out, bool *ascii)
{
	if (ascii)
		*ascii = true;
	if (c->p >= c->end || *c->p != '"')
		return false;
	c->p++;
	while (c->p < c->end)
	{
		unsigned char ch = (unsigned char) *c->p++;
		int			code;

		if (ch == '"')
			return true;
		if (ch < 0x20)
			return false;
		if (ch != '\\')
		{
			code = ch;
		}
		else
		{
			if (c->p >= c->end)
				return false;
			ch = (unsigned char) *c->p++;
			switch (ch)
			{
				case '"':
				case '\\':
				case '/':
					code = ch;
					break;
				case 'b':
					code = '\b';
					break;
				case 'f':
					code = '\f';
					break;
				case 'n':
					code = '\n';
					break;
				case 'r':
					code = '\r';
					break;
				case 't':
					code = '\t';
					break;
				case 'u':
					code = 0;
					if (c->end - c->p < 4)
						return false;
					for (int i = 0; i < 4; i++)
					{
						int			h = hex_value(c->p[i]);

						if (h < 0)
							return false;
						code = code * 16 + h;
					}
					c->p += 4;
					break;
				default:
					return false;
			}
		}
		if (code < 0x21 || code > 0x7e)
		{
			if (ascii)
				*ascii = false;
		}
		else if (out)
			appendStringInfoChar(out, (char) code);
	}
	return false;
}

/* A JSON number; its text is appended to out when it is a plain non-negative integer. */
static bool
json_number(JsonCursor *c, StringInfo out, bool *integer)
{
	const char *start = c->p;

	if (c->p < c->end && *c->p == '-')
		c->p++;
	if (c->p >= c->end || !isdigit((unsigned char) *c->p))
		return false;
	while (c->p < c->end && isdigit((unsigned char) *c->p))
		c->p++;
	*integer = (*start != '-');
	if (c->p < c->end && *c->p == '.')
	{
		*integer = false;
		c->p++;
		if (c->p >= c->end || !isdigit((unsigned char) *c->p))
			return false;
		while (c->p < c->end && isdigit((unsigned char) *c->p))
			c->p++;
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E'))
	{
		*integer = false;
		c->p++;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (c->p >= c->end || !isdigit((unsigned char) *c->p))
			return false;
		while (c->p < c->end && isdigit((unsigned char) *c->p))
			c->p++;
	}
	if (*integer && out)
		appendBinaryStringInfo(out, start, c->p - start);
	return true;
}

static bool
json_literal(JsonCursor *c, const char *lit)
{
	size_t		n = strlen(lit);

	if ((size_t) (c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
		return false;
	c->p += n;
	return true;
}

static bool json_skip_value(JsonCursor *c, int depth);

/* An object or array after its opening bracket, up to and including the closing one. */
static bool
json_skip_container(JsonCursor *c, char close, int depth)
{
	json_ws(c);
	if (c->p < c->end && *c->p == close)
	{
		c->p++;
		return true;
	}
	for (;;)
	{
		if (close == '}')
		{
			if (!json_string(c, NULL, NULL))
				return false;
			json_ws(c);
			if (c->p >= c->end || *c->p++ != ':')
				return false;
		}
		if (!json_skip_value(c, depth + 1))
			return false;
		json_ws(c);
		if (c->p >= c->end)
			return false;
		if (*c->p == ',')
		{
			c->p++;
			json_ws(c);
			continue;
		}
		if (*c->p == close)
		{
			c->p++;
			return true;
		}
		return false;
	}
}

static bool
json_skip_value(JsonCursor *c, int depth)
{
	bool		integer;

	if (depth > JSON_MAX_DEPTH)
		return false;
	json_ws(c);
	if (c->p >= c->end)
		return false;
	switch (*c->p)
	{
		case '"':
			return json_string(c, NULL, NULL);
		case '{':
			c->p++;
			return json_skip_container(c, '}', depth);
		case '[':
			c->p++;
			return json_skip_container(c, ']', depth);
		case 't':
			return json_literal(c, "true");
		case 'f':
			return json_literal(c, "false");
		case 'n':
			return json_literal(c, "null");
		default:
			return json_number(c, NULL, &integer);
	}
}

/*
 * The click ID in Swaarm's answer: the top-level "id" member of a JSON object, a string of
 * printable ASCII or a non-negative integer, at most CLICK_MAX_ID_LEN bytes. NULL when the
 * body is not such an object (the last "id" wins if there are several).
 */
static char *
json_click_id(const char *body, size_t len)
{
	JsonCursor	c = {body, body + len};
	StringInfoData key;
	char	   *id = NULL;

	initStringInfo(&key);
	json_ws(&c);
	if (c.p >= c.end || *c.p != '{')
		return NULL;
	c.p++;
	json_ws(&c);
	if (c.p < c.end && *c.p == '}')
		c.p++;
	else
	{
		for (;;)
		{
			bool		ascii;

			resetStringInfo(&key);
			if (!json_string(&c, &key, &ascii))
				return NULL;
			json_ws(&c);
			if (c.p >= c.end || *c.p++ != ':')
				return NULL;
			json_ws(&c);
			if (ascii && strcmp(key.data, "id") == 0)
			{
				StringInfoData val;
				bool		ok_value;

				initStringInfo(&val);
				if (c.p < c.end && *c.p == '"')
				{
					ok_value = json_string(&c, &val, &ascii);
					if (!ok_value)
						return NULL;
					ok_value = ascii;
				}
				else if (c.p < c.end && (*c.p == '-' || isdigit((unsigned char) *c.p)))
				{
					if (!json_number(&c, &val, &ok_value))
						return NULL;
				}
				else
				{
					if (!json_skip_value(&c, 1))
						return NULL;
					ok_value = false;
				}
				id = (ok_value && val.len > 0 && val.len <= CLICK_MAX_ID_LEN) ? val.data : NULL;
			}
			else if (!json_skip_value(&c, 1))
				return NULL;
			json_ws(&c);
			if (c.p >= c.end)
				return NULL;
			if (*c.p == ',')
			{
				c.p++;
				json_ws(&c);
				continue;
			}
			if (*c.p++ != '}')
				return NULL;
			break;
		}
	}
	json_ws(&c);
	return c.p == c.end ? id : NULL;
}

/* ---- the request ---- */

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

Datum
s2s_swaarm_click(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *ip;
	char	   *ua;
	ClickEndpoint ep;
	StringInfoData url;
	StringInfoData token_enc;
	HttpClientOptions opt;
	NetPolicy	policy;
	HttpRequest req;
	char		errbuf[256];
	long		status = 0;
	HttpErrorKind kind = HTTP_ERROR_NONE;
	char		error[256];
	char	   *body = NULL;
	size_t		body_len = 0;
	bool		body_cut = false;
	char	   *id;
	char	   *problem;
	size_t		ulen;

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

	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ip = TextDatumGetCString(DirectFunctionCall1(network_host, PG_GETARG_DATUM(1)));
	ua = text_to_cstring(PG_GETARG_TEXT_PP(2));

	/*
	 * Permission first, with the same answer for an endpoint that does not exist, so that a
	 * caller who may not use an endpoint learns nothing about it (as s2s.track_event).
	 */
	memset(&ep, 0, sizeof(ep));
	if (!load_endpoint(name, &ep) && ep.administrator)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("endpoint \"%s\" does not exist", name)));
	if (!ep.allowed)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to request click IDs from endpoint \"%s\"", name),
				 errdetail("Role \"%s\" is not allowed by the event_roles of an endpoint of that name, if there is one.",
						   ep.caller),
				 errhint("An administrator adds the role to the endpoint's event_roles in s2s.endpoints.")));
	if (strcmp(ep.kind, "swaarm_postback") != 0 && strcmp(ep.kind, "swaarm_s2sevent") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("endpoint \"%s\" is not a Swaarm endpoint", name),
				 errdetail("Its kind is %s; click IDs are requested from swaarm_postback or swaarm_s2sevent endpoints.",
						   ep.kind)));
	if (!ep.enabled)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("endpoint \"%s\" is disabled", name),
				 errhint("Set enabled = true in s2s.endpoints to use it.")));
	if (ep.secret == NULL || ep.secret[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("endpoint \"%s\" has no token", name),
				 errdetail("Swaarm's click request is authenticated by the endpoint's S2S token (s2stoken)."),
				 errhint("Set the secret column of the endpoint in s2s.endpoints.")));

	/* <tracking domain>/click?no_redirect=true&user_ip=..&user_ua=..&s2stoken=.. */
	ulen = strlen(ep.url);
	while (ulen > 0 && ep.url[ulen - 1] == '/')
		ulen--;
	initStringInfo(&url);
	appendBinaryStringInfo(&url, ep.url, ulen);
	appendStringInfoString(&url, "/click?no_redirect=true&user_ip=");
	s2s_append_percent_encoded(&url, ip);
	appendStringInfoString(&url, "&user_ua=");
	s2s_append_percent_encoded(&url, ua);
	appendStringInfoString(&url, "&s2stoken=");
	initStringInfo(&token_enc);
	s2s_append_percent_encoded(&token_enc, ep.secret);
	appendStringInfoString(&url, token_enc.data);

	memset(&opt, 0, sizeof(opt));
	opt.max_connections = 4;
	opt.max_host_connections = 4;
	opt.connect_timeout_ms = s2s_connect_timeout_ms;
	opt.total_timeout_ms = ep.timeout_ms > 0 ? ep.timeout_ms : s2s_request_timeout_ms;
	opt.max_response_bytes = CLICK_MAX_RESPONSE;
	opt.allow_http = s2s_allow_http;
	policy = s2s_network_policy();
	opt.allowed_networks = policy.allowed;
	opt.n_allowed_networks = policy.n_allowed;
	opt.allow_link_local = policy.allow_link_local;
	opt.user_agent = "s2s_tracking/" S2S_VERSION;

	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = url.data;

	PG_TRY();
	{
		TimestampTz deadline;

		if (click_client == NULL)
		{
			click_client = http_client_create(&opt, errbuf, sizeof(errbuf));
			if (click_client == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("could not create the HTTP client: %s", errbuf)));
		}
		else
			http_client_set_options(click_client, &opt);

		if (!http_submit(click_client, &req, errbuf, sizeof(errbuf)))
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not request a click ID from endpoint \"%s\": %s", name, errbuf)));

		/* libcurl enforces the timeouts; this only guards against a stuck client */
		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											   (int64) opt.connect_timeout_ms +
											   opt.total_timeout_ms + 5000);
		for (;;)
		{
			long		timeout;
			int			rc;

			CHECK_FOR_INTERRUPTS();
			http_process(click_client);
			if (http_next_result(click_client, &click_result))
			{
				click_result_held = true;
				break;
			}
			if (GetCurrentTimestamp() > deadline)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("click request to endpoint \"%s\" did not finish in time", name)));
			timeout = http_timeout_ms(click_client);
			if (timeout < 0 || timeout > 1000)
				timeout = 1000;
			rc = WaitLatchOrSocket(MyLatch,
								   WL_LATCH_SET | WL_SOCKET_READABLE | WL_TIMEOUT |
								   WL_EXIT_ON_PM_DEATH,
								   http_wait_fd(click_client), timeout, PG_WAIT_EXTENSION);
			if (rc & WL_LATCH_SET)
				ResetLatch(MyLatch);
		}

		status = click_result.http_status;
		kind = click_result.error_kind;
		strlcpy(error, click_result.error, sizeof(error));
		body_len = click_result.body_len;
		body_cut = click_result.body_truncated;
		body = pnstrdup(click_result.body ? click_result.body : "", body_len);
		http_result_release(&click_result);
		click_result_held = false;
	}
	PG_CATCH();
	{
		if (click_result_held)
			http_result_release(&click_result);
		click_result_held = false;
		http_client_destroy(click_client);
		click_client = NULL;
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (kind != HTTP_ERROR_NONE && (status < 200 || status > 299))
	{
		/* no answer: keep no half-used connection state for the next call either */
		http_client_destroy(click_client);
		click_client = NULL;
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("click request to endpoint \"%s\" failed: %s", name,
						kind == HTTP_ERROR_TIMEOUT ? "timeout" :
						kind == HTTP_ERROR_TLS ? "TLS error" :
						kind == HTTP_ERROR_REFUSED ? "request refused" : "network error"),
				 errdetail("%s.", s2s_redact_copy(error, ep.secret)),
				 kind == HTTP_ERROR_REFUSED ?
				 errhint("Endpoint URLs must use https unless s2s_tracking.allow_http is on, and reach only public addresses unless s2s_tracking.allowed_networks lists theirs.") : 0));
	}
	if (status < 200 || status > 299)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("click request to endpoint \"%s\" was answered HTTP %ld", name, status),
				 errdetail("The response began: %s",
						   body_excerpt(body, body_len, ep.secret, body_cut))));

	id = json_click_id(body, body_len);
	if (id == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("endpoint \"%s\" answered the click request without a click ID", name),
				 errdetail("Expected a JSON object with an \"id\"; the response began: %s",
						   body_excerpt(body, body_len, ep.secret, body_cut))));

	/* the one rule for Swaarm click IDs: what this returns, record_click accepts */
	problem = s2s_swaarm_check(id, strlen(id));
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("endpoint \"%s\" answered the click request with an invalid click ID", name),
				 errdetail("%s", problem)));

	/* the token leaves no copy behind in this backend's memory */
	explicit_bzero(ep.secret, strlen(ep.secret));
	explicit_bzero(token_enc.data, token_enc.len);
	explicit_bzero(url.data, url.len);

	PG_RETURN_TEXT_P(cstring_to_text(id));
}
