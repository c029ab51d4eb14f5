/*
 * render.c
 *		Endpoint kind + delivery parameters -> the exact HTTP request (pure).
 *
 * s2s.preview() and the delivery worker both call s2s_render_request(), so what an
 * administrator previews is byte for byte what is sent (apart from the masked secret).
 *
 * Rules, one place for all of them:
 *	- every query or form value is percent-encoded: only RFC 3986 unreserved characters
 *	  (A-Z a-z 0-9 - . _ ~) are kept, every other byte (UTF-8 included) becomes %XX;
 *	- an absent (NULL or empty) optional parameter is omitted, except Affilae's "payment", which
 *	  is always sent (empty when unknown), as Affilae documents it;
 *	- header values (user agent, referer) cannot be percent-encoded, so control characters
 *	  (CR and LF among them) are replaced by spaces: no header can be injected;
 *	- the Swaarm tracking domain may end with slashes; they are dropped before the path;
 *	- amounts go out as the networks show them: with the currency's ISO 4217 minor unit,
 *	  never rounded (amount.c); an IPv4-mapped IPv6 client address (::ffff:192.0.2.1), what
 *	  a dual-stack server sees of an IPv4 shopper, goes out as the IPv4 address it is.
 *
 * Nothing here touches the catalog, the network or ereport: problems are returned as
 * messages that never contain the secret.
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "amount.h"
#include "render.h"

static const char hexdigits[] = "0123456789ABCDEF";

static inline bool
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Appends value percent-encoded (RFC 3986: everything but unreserved characters). */
void
s2s_append_percent_encoded(StringInfo buf, const char *value)
{
	const unsigned char *p;

	for (p = (const unsigned char *) value; *p; p++)
	{
		if (is_unreserved(*p))
			appendStringInfoChar(buf, (char) *p);
		else
		{
			appendStringInfoChar(buf, '%');
			appendStringInfoChar(buf, hexdigits[*p >> 4]);
			appendStringInfoChar(buf, hexdigits[*p & 0x0F]);
		}
	}
}

/*
 * A query string or form body under construction: "name=value" pairs joined by '&'.
 * The secret is appended through param_secret() so that masking happens in one place;
 * the mask is written as is (not encoded) so that preview shows "********".
 */
typedef struct ParamList
{
	StringInfo	buf;
	bool		first;
} ParamList;

static void
param_sep(ParamList *pl, const char *name)
{
	if (!pl->first)
		appendStringInfoChar(pl->buf, '&');
	pl->first = false;
	appendStringInfoString(pl->buf, name);
	appendStringInfoChar(pl->buf, '=');
}

/* name=value, or nothing when value is NULL or empty */
static void
param_opt(ParamList *pl, const char *name, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return;
	param_sep(pl, name);
	s2s_append_percent_encoded(pl->buf, value);
}

/* name=value, name= when value is NULL */
static void
param_always(ParamList *pl, const char *name, const char *value)
{
	param_sep(pl, name);
	if (value != NULL)
		s2s_append_percent_encoded(pl->buf, value);
}

static void
param_secret(ParamList *pl, const char *name, const char *secret, bool mask)
{
	param_sep(pl, name);
	if (mask)
		appendStringInfoString(pl->buf, S2S_SECRET_MASK);
	else
		s2s_append_percent_encoded(pl->buf, secret);
}

/* A header value with every control character replaced by a space. */
static char *
header_value(const char *value)
{
	char	   *copy = pstrdup(value);
	char	   *p;

	for (p = copy; *p; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c < 0x20 || c == 0x7F)
			*p = ' ';
	}
	return copy;
}

static void
add_header(S2SRequest *out, const char *name, char *value)
{
	Assert(out->nheaders < S2S_MAX_HEADERS);
	out->header_names[out->nheaders] = name;
	out->header_values[out->nheaders] = value;
	out->nheaders++;
}

static inline bool
missing(const char *value)
{
	return value == NULL || value[0] == '\0';
}

/* An amount as the networks show it in currency (amount.c); NULL stays NULL. */
static const char *
amount_text(const char *amount, const char *currency)
{
	char	   *out;

	if (amount == NULL)
		return NULL;
	out = palloc(S2S_AMOUNT_BUFSIZE(strlen(amount)));
	s2s_amount_format(amount, currency, out);
	return out;
}

/*
 * The client's address as the networks expect it: an IPv4-mapped IPv6 address
 * ("::ffff:192.0.2.1", any case, as host(inet) prints it) is the IPv4 address it carries;
 * anything else as it is.
 */
static const char *
client_ip_text(const char *ip)
{
	const char *v4;

	if (ip == NULL || pg_strncasecmp(ip, "::ffff:", 7) != 0)
		return ip;
	v4 = ip + 7;
	/* only the dotted form: "::ffff:1:2" is not a mapped address */
	if (strspn(v4, "0123456789.") != strlen(v4) || strchr(v4, '.') == NULL)
		return ip;
	return v4;
}

/*
 * The Swaarm tracking domain followed by path ("/postback"), trailing slashes of the
 * domain dropped. The domain may not carry a query or fragment (the endpoints trigger
 * refuses them; checked again here because the worker must never build a wrong URL).
 */
static const char *
swaarm_base(StringInfo url, const char *domain, const char *path)
{
	int			len = strlen(domain);

	if (strpbrk(domain, "?#") != NULL)
		return "the Swaarm tracking domain must not contain a query or a fragment";
	while (len > 0 && domain[len - 1] == '/')
		len--;
	if (len == 0)
		return "the endpoint has no URL";
	appendBinaryStringInfo(url, domain, len);
	appendStringInfoString(url, path);
	return NULL;
}

static const char *
render_affilae(const S2SEndpointConf *ep, const S2SDeliveryData *d, bool mask,
			   S2SRequest *out)
{
	StringInfoData url;
	ParamList	pl;
	int			len;

	if (missing(ep->url))
		return "the endpoint has no URL";
	if (strchr(ep->url, '#') != NULL)
		return "the Affilae postback URL must not contain a fragment";
	if (missing(ep->secret))
		return "the endpoint has no conversion key (secret)";
	if (missing(d->conversion_id))
		return "the conversion has no id";
	if (missing(d->currency))
		return "the conversion has no currency";
	if (missing(d->click_ids))
		return "the conversion has no click ID";

	/* Respect a query already in the URL: add to it rather than start a second one. */
	initStringInfo(&url);
	appendStringInfoString(&url, ep->url);
	len = strlen(ep->url);
	if (strchr(ep->url, '?') == NULL)
		appendStringInfoChar(&url, '?');
	else if (ep->url[len - 1] != '?' && ep->url[len - 1] != '&')
		appendStringInfoChar(&url, '&');

	pl.buf = &url;
	pl.first = true;
	param_secret(&pl, "key", ep->secret, mask);
	param_always(&pl, "id", d->conversion_id);
	param_opt(&pl, "amount", amount_text(d->amount, d->currency));
	param_always(&pl, "currency", d->currency);
	param_always(&pl, "payment", d->payment);
	param_opt(&pl, "customer", d->customer);
	param_opt(&pl, "cv", d->cv);
	param_opt(&pl, "voucher", d->voucher);
	param_always(&pl, "cids", d->click_ids);

	out->method = "GET";
	out->url = url.data;
	if (!missing(d->client_ip))
		add_header(out, "x-ae-d-ip", header_value(client_ip_text(d->client_ip)));
	if (!missing(d->user_agent))
		add_header(out, "x-ae-d-ua", header_value(d->user_agent));
	if (!missing(d->referer))
		add_header(out, "Referer", header_value(d->referer));
	return NULL;
}

/*
 * Swaarm's postback. GET and POST alike carry the parameters in the query string, as
 * Swaarm's own POST example does (with the Authorization header): a POST has no body.
 */
static const char *
render_swaarm_postback(const S2SEndpointConf *ep, const S2SDeliveryData *d, bool mask,
					   S2SRequest *out)
{
	StringInfoData url;
	ParamList	pl;
	const char *err;

	if (missing(ep->url))
		return "the endpoint has no URL";
	if (missing(ep->secret))
		return "the endpoint has no s2s token (secret)";
	if (missing(d->user_id))
		return "the event has no user_id";
	if (missing(d->event_id))
		return "the event has no event_id";
	/* a sale_amount always travels with its currency: Swaarm implies none */
	if (!missing(d->amount) && missing(d->currency))
		return "the event has a sale_amount but no currency";

	initStringInfo(&url);
	if ((err = swaarm_base(&url, ep->url, "/postback?")) != NULL)
		return err;
	pl.buf = &url;
	pl.first = true;
	/* the token: first in the query, or (by default) the Authorization header */
	if (ep->token_in_query)
		param_secret(&pl, "s2s_token", ep->secret, mask);
	else
		add_header(out, "Authorization",
				   mask ? pstrdup(S2S_SECRET_MASK) : header_value(ep->secret));
	param_always(&pl, "user_id", d->user_id);
	param_always(&pl, "event_id", d->event_id);
	param_opt(&pl, "ip_address", client_ip_text(d->client_ip));
	param_opt(&pl, "user_agent", d->user_agent);
	if (!missing(d->amount))
	{
		param_opt(&pl, "sale_amount", amount_text(d->amount, d->currency));
		param_opt(&pl, "sale_amount_currency", d->currency);
	}
	param_opt(&pl, "aggregated_event_value", d->aggregated_event_value);
	param_opt(&pl, "event_value", d->event_value);

	out->method = (ep->http_method != NULL && strcmp(ep->http_method, "POST") == 0) ?
		"POST" : "GET";
	out->url = url.data;
	return NULL;
}

/*
 * Swaarm's attribution event. An empty event_id is the document's attribution-only call
 * ("...&event_id=&user_ip=..."): sent as it is; a missing (NULL) one is refused.
 */
static const char *
render_swaarm_s2sevent(const S2SEndpointConf *ep, const S2SDeliveryData *d, bool mask,
					   S2SRequest *out)
{
	StringInfoData url;
	ParamList	pl;
	const char *err;

	if (missing(ep->url))
		return "the endpoint has no URL";
	if (missing(ep->secret))
		return "the endpoint has no s2s token (secret)";
	if (missing(d->user_id))
		return "the event has no user_id";
	if (d->event_id == NULL)
		return "the event has no event_id";
	if (missing(d->client_ip))
		return "the event has no user_ip (client IP), which s2sevent requires";
	if (missing(d->user_agent))
		return "the event has no user_ua (user agent), which s2sevent requires";

	initStringInfo(&url);
	if ((err = swaarm_base(&url, ep->url, "/s2sevent?")) != NULL)
		return err;
	pl.buf = &url;
	pl.first = true;
	param_secret(&pl, "token", ep->secret, mask);
	param_always(&pl, "user_id", d->user_id);
	param_always(&pl, "event_id", d->event_id);
	param_always(&pl, "user_ip", client_ip_text(d->client_ip));
	param_always(&pl, "user_ua", d->user_agent);

	out->method = "GET";
	out->url = url.data;
	return NULL;
}

const char *
s2s_render_request(const S2SEndpointConf *endpoint, const S2SDeliveryData *data,
				   bool mask_secrets, S2SRequest *out)
{
	memset(out, 0, sizeof(*out));
	switch (endpoint->kind)
	{
		case S2S_KIND_AFFILAE:
			return render_affilae(endpoint, data, mask_secrets, out);
		case S2S_KIND_SWAARM_POSTBACK:
			return render_swaarm_postback(endpoint, data, mask_secrets, out);
		case S2S_KIND_SWAARM_S2SEVENT:
			return render_swaarm_s2sevent(endpoint, data, mask_secrets, out);
	}
	return "unknown endpoint kind";
}

bool
s2s_parse_endpoint_kind(const char *name, S2SEndpointKind *kind)
{
	if (strcmp(name, "affilae") == 0)
		*kind = S2S_KIND_AFFILAE;
	else if (strcmp(name, "swaarm_postback") == 0)
		*kind = S2S_KIND_SWAARM_POSTBACK;
	else if (strcmp(name, "swaarm_s2sevent") == 0)
		*kind = S2S_KIND_SWAARM_S2SEVENT;
	else
		return false;
	return true;
}
