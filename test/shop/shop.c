/*
 * shop.c
 *		The demo shop: a tiny web shop whose app layer uses s2s_tracking the way a real one
 *		would (landing page, checkout, order administration, app events).
 *
 *	 shop --port PORT --conninfo 'host=... port=... dbname=... user=...' [--bind ADDRESS]
 *
 *	 GET  /                    landing page; ?aecid=... (Affilae) and ?clkid=... (Swaarm) are
 *	                           recorded (s2s.record_click) and kept in first-party cookies
 *	                           (s2s.cookie_merge, s2s.set_cookie_header)
 *	 GET  /checkout            the checkout form, with the click IDs the visitor carries
 *	 POST /checkout            places an order (status 'pending') with the cookie's click IDs,
 *	                           the client's IP, user agent and referer; 303 to /orders/ID
 *	 GET  /orders/ID           the order, with the administrator's buttons
 *	 POST /orders/ID/validate  administrator: validates; the orders trigger enqueues the
 *	                           conversion in the same transaction (see schema.sql)
 *	 POST /orders/ID/cancel    administrator: cancels a pending order; nothing is ever sent
 *	 POST /app/events          Swaarm app events (register, purchase) via s2s.track_event;
 *	                           JSON when the client asks for it, HTML otherwise
 *	 GET  /healthz             "ok" once the database answers
 *
 * Why C with libmicrohttpd and libpq: the extension is C built with gcc from Debian
 * packages, and libmicrohttpd-dev and libpq-dev are two more Debian packages; the demo thus
 * needs no language runtime, framework or package registry beyond what the build already
 * uses, and it starts in milliseconds. Every query goes through PQexecParams, so no value a
 * visitor sends is ever part of SQL text. The shop serves one request at a time on one
 * database connection (libmicrohttpd's internal polling thread): plenty for a demo and for
 * tests, and it keeps the code free of locks. The administrator's actions are not
 * authenticated: this shop listens on loopback only and exists to show the tracking flow.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libpq-fe.h>
#include <microhttpd.h>

/* The endpoints created by schema.sql. */
#define SWAARM_ENDPOINT "swaarm"

/* Bounds on what a visitor may send us. */
#define MAX_BODY		(64 * 1024)
#define MAX_FIELDS		16
#define MAX_FIELD_LEN	4096

/* ---------------------------------------------------------------- strings */

/* A growable, always NUL-terminated string; allocation failure ends the process. */
typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Buf;

static void
buf_reserve(Buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	while (b->len + extra + 1 > b->cap)
		b->cap = b->cap ? b->cap * 2 : 256;
	b->data = realloc(b->data, b->cap);
	if (b->data == NULL)
	{
		fprintf(stderr, "shop: out of memory\n");
		abort();
	}
}

static void
buf_putn(Buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void
buf_puts(Buf *b, const char *s)
{
	buf_putn(b, s, strlen(s));
}

static void buf_printf(Buf *b, const char *fmt,...) __attribute__((format(printf, 2, 3)));

static void
buf_printf(Buf *b, const char *fmt,...)
{
	va_list		ap;
	char		small[256];
	int			n;

	/* Most pieces are short: one pass; a longer one is formatted again into place. */
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t) n < sizeof small)
	{
		buf_putn(b, small, (size_t) n);
		return;
	}
	buf_reserve(b, (size_t) n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t) n;
}

/* Text into HTML (element content and quoted attribute values alike). */
static void
buf_html(Buf *b, const char *s)
{
	for (; s && *s; s++)
	{
		switch (*s)
		{
			case '&':
				buf_puts(b, "&amp;");
				break;
			case '<':
				buf_puts(b, "&lt;");
				break;
			case '>':
				buf_puts(b, "&gt;");
				break;
			case '"':
				buf_puts(b, "&quot;");
				break;
			case '\'':
				buf_puts(b, "&#39;");
				break;
			default:
				buf_putn(b, s, 1);
		}
	}
}

/* Text into JSON string content. */
static void
buf_json(Buf *b, const char *s)
{
	for (; s && *s; s++)
	{
		unsigned char ch = (unsigned char) *s;

		if (ch == '"' || ch == '\\')
			buf_printf(b, "\\%c", ch);
		else if (ch < 0x20)
			buf_printf(b, "\\u%04x", ch);
		else
			buf_putn(b, s, 1);
	}
}

static void
buf_urlencode(Buf *b, const char *s)
{
	for (; s && *s; s++)
	{
		unsigned char ch = (unsigned char) *s;

		if (isalnum(ch) || strchr("-._~", ch))
			buf_putn(b, s, 1);
		else
			buf_printf(b, "%%%02X", ch);
	}
}

static char *
xstrdup(const char *s)
{
	char	   *d = strdup(s ? s : "");

	if (d == NULL)
		abort();
	return d;
}

static bool
empty(const char *s)
{
	return s == NULL || *s == '\0';
}

/* ---------------------------------------------------------------- database */

static const char *conninfo;
static PGconn *db;

static bool
db_connected(void)
{
	if (db == NULL)
		db = PQconnectdb(conninfo);
	else if (PQstatus(db) != CONNECTION_OK)
		PQreset(db);
	if (PQstatus(db) != CONNECTION_OK)
	{
		fprintf(stderr, "shop: cannot connect to the database: %s", PQerrorMessage(db));
		return false;
	}
	return true;
}

/*
 * Runs one parameterised statement (NULL entries are SQL NULLs). Returns NULL only when
 * the database cannot be reached; a statement that failed returns its error result. A
 * connection lost between two requests (server restart) is reopened and the statement
 * tried once more.
 */
static PGresult *
db_exec(const char *sql, int nparams, const char *const *params)
{
	for (int attempt = 0; attempt < 2; attempt++)
	{
		PGresult   *res;

		if (!db_connected())
			return NULL;
		res = PQexecParams(db, sql, nparams, NULL, params, NULL, NULL, 0);
		if (PQstatus(db) == CONNECTION_OK || attempt == 1)
			return res;
		PQclear(res);
	}
	return NULL;
}

static bool
db_ok(const PGresult *res)
{
	return res && (PQresultStatus(res) == PGRES_TUPLES_OK ||
				   PQresultStatus(res) == PGRES_COMMAND_OK);
}

static const char *
db_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return s ? s : "08006";
}

static const char *
db_message(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	return s ? s : "the database cannot be reached";
}

/* ---------------------------------------------------------------- requests */

typedef struct Field
{
	char	   *name;
	Buf			value;
} Field;

/* Per-request state: the form fields of a POST, gathered as the body arrives. */
typedef struct Request
{
	struct MHD_PostProcessor *pp;
	Field		fields[MAX_FIELDS];
	int			nfields;
	size_t		body_bytes;
	bool		too_large;
} Request;

static enum MHD_Result
post_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
		   const char *content_type, const char *transfer_encoding, const char *data,
		   uint64_t off, size_t size)
{
	Request    *req = cls;
	Field	   *f = NULL;

	(void) kind;
	(void) filename;
	(void) content_type;
	(void) transfer_encoding;

	/* A value larger than the post processor's buffer arrives in pieces. */
	if (off > 0 && req->nfields > 0 && strcmp(req->fields[req->nfields - 1].name, key) == 0)
		f = &req->fields[req->nfields - 1];
	else if (req->nfields < MAX_FIELDS)
	{
		f = &req->fields[req->nfields++];
		f->name = xstrdup(key);
		f->value = (Buf) {0};
		buf_puts(&f->value, "");
	}
	else
	{
		req->too_large = true;
		return MHD_NO;
	}
	if (f->value.len + size > MAX_FIELD_LEN)
	{
		req->too_large = true;
		return MHD_NO;
	}
	buf_putn(&f->value, data, size);
	return MHD_YES;
}

static const char *
form(const Request *req, const char *name)
{
	for (int i = 0; i < req->nfields; i++)
		if (strcmp(req->fields[i].name, name) == 0)
			return req->fields[i].value.data;
	return NULL;
}

static void
request_free(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	Request    *req = *con_cls;

	(void) cls;
	(void) c;
	(void) toe;
	if (req == NULL)
		return;
	if (req->pp)
		MHD_destroy_post_processor(req->pp);
	for (int i = 0; i < req->nfields; i++)
	{
		free(req->fields[i].name);
		free(req->fields[i].value.data);
	}
	free(req);
	*con_cls = NULL;
}

/* What every handler needs to know about the visitor. */
typedef struct Visitor
{
	struct MHD_Connection *conn;
	const Request *req;
	char		ipbuf[INET6_ADDRSTRLEN];
	const char *ip;				/* NULL when unknown: the inet cast refuses '' */
	const char *user_agent;
	const char *referer;
	const char *aecid_cookie;	/* Affilae click IDs, '-'-joined */
	const char *clkid_cookie;	/* the Swaarm click ID */
} Visitor;

/* The reply under construction: a page, its status and its extra headers. */
typedef struct Reply
{
	unsigned	status;
	const char *content_type;
	Buf			body;
	int			nheaders;
	char	   *hname[8];
	char	   *hvalue[8];
} Reply;

static void
reply_header(Reply *r, const char *name, const char *value)
{
	if (r->nheaders >= 8)
		return;
	r->hname[r->nheaders] = xstrdup(name);
	r->hvalue[r->nheaders] = xstrdup(value);
	r->nheaders++;
}

static void
page_start(Reply *r, const char *title)
{
	buf_puts(&r->body, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
	buf_html(&r->body, title);
	buf_puts(&r->body, " - demo shop</title></head>\n<body>\n<header><a href=\"/\">Demo shop</a> | "
			 "<a id=\"to-checkout\" href=\"/checkout\">Checkout</a></header>\n<h1>");
	buf_html(&r->body, title);
	buf_puts(&r->body, "</h1>\n");
}

static void
page_end(Reply *r)
{
	buf_puts(&r->body, "</body></html>\n");
}

static void
notice(Reply *r, const char *cls, const char *text, const char *detail)
{
	buf_printf(&r->body, "<p class=\"notice %s\">", cls);
	buf_html(&r->body, text);
	if (detail)
	{
		buf_puts(&r->body, " <em>");
		buf_html(&r->body, detail);
		buf_puts(&r->body, "</em>");
	}
	buf_puts(&r->body, "</p>\n");
}

static void
error_page(Reply *r, unsigned status, const char *title, const char *detail)
{
	r->status = status;
	r->body.len = 0;
	page_start(r, title);
	notice(r, "error", title, detail);
	page_end(r);
}

/* The visitor's tracked click IDs, as the server sees them (HttpOnly: scripts cannot). */
static void
show_clicks(Reply *r, const char *aecid_cookie, const char *clkid_cookie)
{
	const char *p[1] = {aecid_cookie};
	PGresult   *res = db_exec("SELECT unnest(s2s.click_ids($1))", 1, p);

	buf_puts(&r->body, "<h2>Your tracked clicks</h2>\n<ul id=\"clicks\">\n");
	if (db_ok(res))
		for (int i = 0; i < PQntuples(res); i++)
		{
			buf_puts(&r->body, "<li class=\"aecid\">");
			buf_html(&r->body, PQgetvalue(res, i, 0));
			buf_puts(&r->body, "</li>\n");
		}
	PQclear(res);
	if (!empty(clkid_cookie))
	{
		buf_puts(&r->body, "<li class=\"clkid\">");
		buf_html(&r->body, clkid_cookie);
		buf_puts(&r->body, "</li>\n");
	}
	buf_puts(&r->body, "</ul>\n");
}

/* ---------------------------------------------------------------- pages */

static enum MHD_Result
collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	Buf		   *q = cls;

	(void) kind;
	buf_puts(q, q->len ? "&" : "?");
	buf_urlencode(q, key);
	if (value)
	{
		buf_puts(q, "=");
		buf_urlencode(q, value);
	}
	return MHD_YES;
}

/*
 * GET /: the landing page an affiliate or ad links to. A click ID that the extension
 * refuses (malformed, expired) leaves the visitor's cookie as it was and only shows a
 * notice: tracking never breaks the shop.
 */
static void
landing(Visitor *v, Reply *r, const char *url)
{
	const char *aecid = MHD_lookup_connection_value(v->conn, MHD_GET_ARGUMENT_KIND, "aecid");
	const char *clkid = MHD_lookup_connection_value(v->conn, MHD_GET_ARGUMENT_KIND, "clkid");
	const char *host = MHD_lookup_connection_value(v->conn, MHD_HEADER_KIND, "Host");
	const char *aecid_now = v->aecid_cookie;
	const char *clkid_now = v->clkid_cookie;
	char	   *merged = NULL;
	char	   *clkid_kept = NULL;
	Buf			landing_url = {0};
	Buf			query = {0};
	Buf			notices = {0};
	Reply		scratch = {0};

	MHD_get_connection_values(v->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &query);
	buf_printf(&landing_url, "http://%s%s%s", host ? host : "localhost", url,
			   query.data ? query.data : "");

	if (aecid)
	{
		const char *p[5] = {aecid, v->ip, v->user_agent, v->referer, landing_url.data};
		PGresult   *res = db_exec("SELECT s2s.record_click($1, $2::inet, $3, $4, $5, 'affilae')", 5, p);

		if (db_ok(res))
		{
			const char *q[2] = {v->aecid_cookie, aecid};
			PGresult   *res2 = db_exec("SELECT v, s2s.set_cookie_header(v, 'aecid') "
									   "FROM s2s.cookie_merge(coalesce($1, ''), $2) AS v", 2, q);

			if (db_ok(res2) && PQntuples(res2) == 1 && !PQgetisnull(res2, 0, 1))
			{
				merged = xstrdup(PQgetvalue(res2, 0, 0));
				reply_header(r, MHD_HTTP_HEADER_SET_COOKIE, PQgetvalue(res2, 0, 1));
				aecid_now = merged;
			}
			else
				fprintf(stderr, "shop: cookie_merge failed: %s\n", db_message(res2));
			PQclear(res2);
		}
		else
		{
			/* 22023 is the extension's "this click ID is not valid" */
			bool		refused = strcmp(db_sqlstate(res), "22023") == 0;

			notice(&scratch, "invalid-click",
				   refused ? "This affiliate link's click ID was not accepted; your visit "
				   "is not attributed, and shopping works as usual."
				   : "Your visit could not be attributed (tracking is unavailable).",
				   db_message(res));
			buf_puts(&notices, scratch.body.data);
			scratch.body.len = 0;
			if (!refused)
				fprintf(stderr, "shop: record_click failed: %s\n", db_message(res));
		}
		PQclear(res);
	}

	if (clkid)
	{
		const char *p[5] = {clkid, v->ip, v->user_agent, v->referer, landing_url.data};
		PGresult   *res = db_exec("SELECT s2s.record_click($1, $2::inet, $3, $4, $5, 'swaarm')", 5, p);

		if (db_ok(res))
		{
			const char *q[1] = {clkid};
			PGresult   *res2 = db_exec("SELECT s2s.set_cookie_header($1, 'clkid')", 1, q);

			if (db_ok(res2) && PQntuples(res2) == 1 && !PQgetisnull(res2, 0, 0))
			{
				reply_header(r, MHD_HTTP_HEADER_SET_COOKIE, PQgetvalue(res2, 0, 0));
				clkid_kept = xstrdup(clkid);
				clkid_now = clkid_kept;
			}
			PQclear(res2);
		}
		else
		{
			notice(&scratch, "invalid-click",
				   "This app campaign's click ID was not accepted; your visit is not attributed.",
				   db_message(res));
			buf_puts(&notices, scratch.body.data);
			scratch.body.len = 0;
		}
		PQclear(res);
	}

	page_start(r, "Welcome");
	if (notices.data)
		buf_puts(&r->body, notices.data);
	buf_puts(&r->body, "<p>Fine things at fair prices. <a id=\"go-checkout\" href=\"/checkout\">"
			 "Go to checkout</a>.</p>\n");
	show_clicks(r, aecid_now, clkid_now);
	if (!empty(clkid_now))
		buf_puts(&r->body,
				 "<h2>In the app</h2>\n"
				 "<form id=\"register\" method=\"post\" action=\"/app/events\">"
				 "<input type=\"hidden\" name=\"event\" value=\"register\">"
				 "<button type=\"submit\">Create my account</button></form>\n"
				 "<form id=\"purchase\" method=\"post\" action=\"/app/events\">"
				 "<input type=\"hidden\" name=\"event\" value=\"purchase\">"
				 "<label>Coins pack, EUR <input name=\"amount\" value=\"4.99\"></label> "
				 "<label>Transaction <input name=\"txn\" value=\"\"></label> "
				 "<button type=\"submit\">Buy in the app</button></form>\n");
	page_end(r);

	free(merged);
	free(clkid_kept);
	free(landing_url.data);
	free(query.data);
	free(notices.data);
	free(scratch.body.data);
}

/* GET /checkout */
static void
checkout_form(Visitor *v, Reply *r)
{
	page_start(r, "Checkout");
	show_clicks(r, v->aecid_cookie, v->clkid_cookie);
	buf_puts(&r->body,
			 "<form id=\"checkout\" method=\"post\" action=\"/checkout\">\n"
			 "<label>Amount excluding tax, EUR <input name=\"amount\" value=\"49.90\"></label><br>\n"
			 "<label>Customer <input name=\"customer\" value=\"\"></label><br>\n"
			 "<label>Voucher <input name=\"voucher\" value=\"\"></label><br>\n"
			 "<label>Payment <select name=\"payment\"><option>online</option>"
			 "<option>bankwire</option><option>other</option></select></label><br>\n"
			 "<button id=\"place-order\" type=\"submit\">Place order</button>\n</form>\n");
	page_end(r);
}

/*
 * POST /checkout: the order row carries the visitor's click IDs (only the valid ones,
 * '-'-joined as in the cookie) and request context; the orders trigger does the rest
 * when the order is validated.
 */
static void
checkout_place(Visitor *v, Reply *r)
{
	const char *p[9] = {
		form(v->req, "amount"), form(v->req, "customer"), form(v->req, "payment"),
		form(v->req, "voucher"), v->aecid_cookie, v->clkid_cookie,
		v->ip, v->user_agent, v->referer
	};
	PGresult   *res;
	Buf			loc = {0};

	if (empty(p[0]))
	{
		error_page(r, MHD_HTTP_BAD_REQUEST, "The amount is missing", NULL);
		return;
	}
	res = db_exec("INSERT INTO shop.orders (amount, customer, payment, voucher, aecid, clkid, "
				  "                         client_ip, user_agent, referer) "
				  "VALUES ($1::numeric, NULLIF($2, ''), coalesce(NULLIF($3, ''), 'online'), "
				  "        NULLIF($4, ''), "
				  "        NULLIF(array_to_string(s2s.click_ids(coalesce($5, '')), '-'), ''), "
				  "        CASE WHEN s2s.is_valid_click_id($6, 'swaarm') THEN $6 END, "
				  "        $7::inet, $8, $9) "
				  "RETURNING id", 9, p);
	if (!db_ok(res))
	{
		const char *state = db_sqlstate(res);

		/* data exceptions (class 22) and check violations are the visitor's input */
		if (strncmp(state, "22", 2) == 0 || strcmp(state, "23514") == 0)
			error_page(r, MHD_HTTP_BAD_REQUEST, "The order was not accepted", db_message(res));
		else
			error_page(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "The order could not be placed",
					   db_message(res));
		PQclear(res);
		return;
	}
	buf_printf(&loc, "/orders/%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	r->status = MHD_HTTP_SEE_OTHER;
	reply_header(r, MHD_HTTP_HEADER_LOCATION, loc.data);
	page_start(r, "Order placed");
	buf_puts(&r->body, "<p><a href=\"");
	buf_html(&r->body, loc.data);
	buf_puts(&r->body, "\">Your order</a></p>\n");
	page_end(r);
	free(loc.data);
}

/* GET /orders/ID */
static void
order_page(Reply *r, const char *id)
{
	const char *p[1] = {id};
	PGresult   *res = db_exec("SELECT id, amount, currency, status, coalesce(aecid, ''), "
							  "       coalesce(clkid, ''), coalesce(customer, '') "
							  "FROM shop.orders WHERE id = $1::bigint", 1, p);

	if (!db_ok(res) || PQntuples(res) == 0)
	{
		error_page(r, db_ok(res) ? MHD_HTTP_NOT_FOUND : MHD_HTTP_INTERNAL_SERVER_ERROR,
				   "No such order", db_ok(res) ? NULL : db_message(res));
		PQclear(res);
		return;
	}
	page_start(r, "Your order");
	buf_puts(&r->body, "<dl id=\"order\">\n<dt>Order</dt><dd id=\"order-id\">");
	buf_html(&r->body, PQgetvalue(res, 0, 0));
	buf_puts(&r->body, "</dd>\n<dt>Amount</dt><dd id=\"order-amount\">");
	buf_html(&r->body, PQgetvalue(res, 0, 1));
	buf_puts(&r->body, " ");
	buf_html(&r->body, PQgetvalue(res, 0, 2));
	buf_puts(&r->body, "</dd>\n<dt>Status</dt><dd id=\"order-status\">");
	buf_html(&r->body, PQgetvalue(res, 0, 3));
	buf_puts(&r->body, "</dd>\n<dt>Affilae click IDs</dt><dd id=\"order-aecid\">");
	buf_html(&r->body, PQgetvalue(res, 0, 4));
	buf_puts(&r->body, "</dd>\n<dt>Swaarm click ID</dt><dd id=\"order-clkid\">");
	buf_html(&r->body, PQgetvalue(res, 0, 5));
	buf_puts(&r->body, "</dd>\n</dl>\n");
	if (strcmp(PQgetvalue(res, 0, 3), "pending") == 0)
	{
		buf_puts(&r->body, "<h2>Administration</h2>\n");
		buf_printf(&r->body, "<form id=\"validate\" method=\"post\" action=\"/orders/%s/validate\">"
				   "<button type=\"submit\">Validate (payment received)</button></form>\n",
				   PQgetvalue(res, 0, 0));
		buf_printf(&r->body, "<form id=\"cancel\" method=\"post\" action=\"/orders/%s/cancel\">"
				   "<button type=\"submit\">Cancel</button></form>\n",
				   PQgetvalue(res, 0, 0));
	}
	page_end(r);
	PQclear(res);
}

/*
 * POST /orders/ID/validate and /orders/ID/cancel: only a pending order changes. The
 * UPDATE fires the orders trigger, which enqueues the conversion on validation, in this
 * same transaction.
 */
static void
order_action(Reply *r, const char *id, bool validate)
{
	const char *p[2] = {id, validate ? "validated" : "cancelled"};
	PGresult   *res = db_exec("UPDATE shop.orders SET status = $2 "
							  "WHERE id = $1::bigint AND status = 'pending' RETURNING id", 2, p);
	Buf			loc = {0};

	if (!db_ok(res))
	{
		error_page(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "The order could not be changed",
				   db_message(res));
		PQclear(res);
		return;
	}
	if (PQntuples(res) == 0)
	{
		PQclear(res);
		res = db_exec("SELECT status FROM shop.orders WHERE id = $1::bigint", 1, p);
		if (db_ok(res) && PQntuples(res) == 1)
			error_page(r, MHD_HTTP_CONFLICT, "Only a pending order can change",
					   PQgetvalue(res, 0, 0));
		else
			error_page(r, MHD_HTTP_NOT_FOUND, "No such order", NULL);
		PQclear(res);
		return;
	}
	PQclear(res);
	buf_printf(&loc, "/orders/%s", id);
	r->status = MHD_HTTP_SEE_OTHER;
	reply_header(r, MHD_HTTP_HEADER_LOCATION, loc.data);
	page_start(r, validate ? "Order validated" : "Order cancelled");
	page_end(r);
	free(loc.data);
}

/* An error for the app API: JSON when the client asked for it, a page otherwise. */
static void
app_error(Reply *r, bool json, unsigned status, const char *title, const char *detail)
{
	error_page(r, status, title, detail);
	if (!json)
		return;
	r->body.len = 0;
	r->content_type = "application/json";
	buf_puts(&r->body, "{\"error\": \"");
	buf_json(&r->body, title);
	buf_puts(&r->body, "\", \"detail\": \"");
	buf_json(&r->body, detail);
	buf_puts(&r->body, "\"}\n");
}

/*
 * POST /app/events: what a mobile app's backend does for Swaarm. The user is the Swaarm
 * click ID the visitor landed with (cookie "clkid") unless the form names one. A
 * registration is sent once per user; a purchase once per transaction ID.
 */
static void
app_event(Visitor *v, Reply *r)
{
	const char *accept = MHD_lookup_connection_value(v->conn, MHD_HEADER_KIND, "Accept");
	bool		json = accept && strstr(accept, "application/json");
	const char *user = form(v->req, "user_id");
	const char *event = form(v->req, "event");
	const char *amount = form(v->req, "amount");
	const char *txn = form(v->req, "txn");
	Buf			dedupe = {0};
	PGresult   *res;

	if (empty(user))
		user = v->clkid_cookie;
	if (empty(user))
	{
		app_error(r, json, MHD_HTTP_BAD_REQUEST, "No Swaarm user",
				   "Land with ?clkid=... first, or give user_id.");
		goto out;
	}
	if (empty(event) || (strcmp(event, "register") != 0 && strcmp(event, "purchase") != 0))
	{
		app_error(r, json, MHD_HTTP_BAD_REQUEST, "Unknown app event", "Use register or purchase.");
		goto out;
	}
	if (strcmp(event, "register") == 0)
	{
		buf_puts(&dedupe, "register:");
		buf_puts(&dedupe, user);
		amount = NULL;
	}
	else if (!empty(txn))
	{
		buf_puts(&dedupe, "purchase:");
		buf_puts(&dedupe, txn);
	}

	{
		const char *p[7] = {
			user, event, v->ip, v->user_agent, empty(amount) ? NULL : amount,
			empty(amount) ? NULL : "EUR", dedupe.data
		};

		res = db_exec("SELECT s2s.track_event('" SWAARM_ENDPOINT "', $1, $2, $3::inet, $4, "
					  "sale_amount => $5::numeric, currency => $6, dedupe_key => $7)", 7, p);
	}
	if (!db_ok(res))
	{
		bool		bad = strncmp(db_sqlstate(res), "22", 2) == 0;

		app_error(r, json, bad ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "The event was not recorded", db_message(res));
	}
	else
	{
		const char *id = PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0);

		r->status = MHD_HTTP_ACCEPTED;
		page_start(r, "Thank you");
		buf_puts(&r->body, "<p id=\"event\" data-delivery=\"");
		buf_html(&r->body, id);
		buf_puts(&r->body, "\">");
		buf_html(&r->body, event);
		buf_puts(&r->body, " recorded for ");
		buf_html(&r->body, user);
		buf_puts(&r->body, "</p>\n<p><a href=\"/\">Back</a></p>\n");
		page_end(r);
		if (json)
		{
			r->body.len = 0;
			r->content_type = "application/json";
			/* a bigint's digits, or null */
			buf_printf(&r->body, "{\"delivery_id\": %s, \"user_id\": \"", *id ? id : "null");
			buf_json(&r->body, user);
			buf_puts(&r->body, "\", \"event_id\": \"");
			buf_json(&r->body, event);
			buf_puts(&r->body, "\"}\n");
		}
	}
	PQclear(res);
out:
	free(dedupe.data);
}

/* ---------------------------------------------------------------- routing */

/* "/orders/123/validate" -> id "123", action "validate"; false when it is not one. */
static bool
parse_order_url(const char *url, char *id, size_t idsize, const char **action)
{
	const char *p = url + strlen("/orders/");
	size_t		n = strspn(p, "0123456789");

	if (strncmp(url, "/orders/", 8) != 0 || n == 0 || n >= idsize || n > 18)
		return false;
	memcpy(id, p, n);
	id[n] = '\0';
	p += n;
	if (*p == '\0')
		*action = "";
	else if (*p == '/')
		*action = p + 1;
	else
		return false;
	return true;
}

static void
route(Visitor *v, Reply *r, const char *url, const char *method)
{
	bool		get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	bool		post = strcmp(method, "POST") == 0;
	char		id[32];
	const char *action;

	if (v->req->too_large)
		error_page(r, MHD_HTTP_CONTENT_TOO_LARGE, "Request too large", NULL);
	else if (strcmp(url, "/") == 0 && get)
		landing(v, r, url);
	else if (strcmp(url, "/healthz") == 0 && get)
	{
		PGresult   *res = db_exec("SELECT 1", 0, NULL);

		r->content_type = "text/plain";
		r->status = db_ok(res) ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
		buf_puts(&r->body, db_ok(res) ? "ok\n" : "database unavailable\n");
		PQclear(res);
	}
	else if (strcmp(url, "/checkout") == 0 && get)
		checkout_form(v, r);
	else if (strcmp(url, "/checkout") == 0 && post)
		checkout_place(v, r);
	else if (strcmp(url, "/app/events") == 0 && post)
		app_event(v, r);
	else if (parse_order_url(url, id, sizeof id, &action))
	{
		if (*action == '\0' && get)
			order_page(r, id);
		else if (strcmp(action, "validate") == 0 && post)
			order_action(r, id, true);
		else if (strcmp(action, "cancel") == 0 && post)
			order_action(r, id, false);
		else
			error_page(r, MHD_HTTP_NOT_FOUND, "Not found", NULL);
	}
	else
		error_page(r, MHD_HTTP_NOT_FOUND, "Not found", NULL);
}

static void
client_ip(struct MHD_Connection *c, char *out, size_t size)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	out[0] = '\0';
	if (ci == NULL || ci->client_addr == NULL)
		return;
	if (ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *) ci->client_addr)->sin_addr, out, size);
	else if (ci->client_addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) ci->client_addr)->sin6_addr, out, size);
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
	   const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	Request    *req = *con_cls;
	Visitor		v = {0};
	Reply		r = {0};
	struct MHD_Response *resp;
	enum MHD_Result ret;

	(void) cls;
	(void) version;

	/* First call: headers only. Then the body, piece by piece. Then the reply. */
	if (req == NULL)
	{
		req = calloc(1, sizeof *req);
		if (req == NULL)
			return MHD_NO;
		if (strcmp(method, "POST") == 0)
			req->pp = MHD_create_post_processor(c, 4096, post_field, req);
		*con_cls = req;
		return MHD_YES;
	}
	if (*upload_size > 0)
	{
		req->body_bytes += *upload_size;
		if (req->body_bytes > MAX_BODY)
			req->too_large = true;
		else if (req->pp && !req->too_large)
			MHD_post_process(req->pp, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}

	v.conn = c;
	v.req = req;
	client_ip(c, v.ipbuf, sizeof v.ipbuf);
	v.ip = v.ipbuf[0] ? v.ipbuf : NULL;
	v.user_agent = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_USER_AGENT);
	v.referer = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_REFERER);
	v.aecid_cookie = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "aecid");
	v.clkid_cookie = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "clkid");

	r.status = MHD_HTTP_OK;
	r.content_type = "text/html; charset=utf-8";
	route(&v, &r, url, method);

	resp = MHD_create_response_from_buffer(r.body.len, r.body.data ? r.body.data : xstrdup(""),
										   MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type);
	/* Pages that carry a Set-Cookie or per-visitor content must never be cached. */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	for (int i = 0; i < r.nheaders; i++)
	{
		MHD_add_response_header(resp, r.hname[i], r.hvalue[i]);
		free(r.hname[i]);
		free(r.hvalue[i]);
	}
	ret = MHD_queue_response(c, r.status, resp);
	MHD_destroy_response(resp);
	fprintf(stderr, "shop: %s %s -> %u\n", method, url, r.status);
	return ret;
}

/* ---------------------------------------------------------------- main */

static void
usage(void)
{
	fprintf(stderr, "usage: shop --port PORT --conninfo CONNINFO [--bind ADDRESS]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *bind_addr = "127.0.0.1";
	long		port = 0;
	struct sockaddr_in addr = {0};
	struct MHD_Daemon *daemon;
	sigset_t	sigs;
	int			sig;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
			port = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--conninfo") == 0 && i + 1 < argc)
			conninfo = argv[++i];
		else if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc)
			bind_addr = argv[++i];
		else
			usage();
	}
	if (port <= 0 || port > 65535 || conninfo == NULL)
		usage();
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t) port);
	if (inet_pton(AF_INET, bind_addr, &addr.sin_addr) != 1)
	{
		fprintf(stderr, "shop: --bind wants an IPv4 address, not \"%s\"\n", bind_addr);
		return 2;
	}

	if (!db_connected())
		return 1;

	/*
	 * Block the stop signals before libmicrohttpd starts its thread (which inherits the
	 * mask), so that only sigwait() below ever sees them.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
							  (uint16_t) port, NULL, NULL, handle, NULL,
							  MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
							  MHD_OPTION_NOTIFY_COMPLETED, request_free, NULL,
							  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 30,
							  MHD_OPTION_END);
	if (daemon == NULL)
	{
		fprintf(stderr, "shop: cannot listen on %s:%ld\n", bind_addr, port);
		PQfinish(db);
		return 1;
	}
	printf("shop listening on http://%s:%ld\n", bind_addr, port);
	fflush(stdout);

	sigwait(&sigs, &sig);
	MHD_stop_daemon(daemon);
	PQfinish(db);
	fprintf(stderr, "shop: stopped by signal %d\n", sig);
	return 0;
}
