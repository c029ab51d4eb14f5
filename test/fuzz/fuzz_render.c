/*
 * fuzz_render.c
 *		libFuzzer target for src/render.c: percent-encoding and the HTTP request of each
 *		endpoint kind.
 *
 * Input: one flags byte (kind, mask, method, token placement), then NUL-separated fields:
 * the endpoint URL, the secret and the 15 delivery parameters. Checked properties:
 *  - percent-encoding emits only unreserved characters and %XX, and decodes back to the
 *    value exactly;
 *  - every header value is free of control characters (no header injection), the URL has
 *    no byte below 0x21 past the configured base (no request splitting);
 *  - with secrets masked, the request does not depend on the secret at all (rendering
 *    again with another secret gives the same bytes), so preview can never show it;
 *  - every query parameter we add decodes back to the delivery's value, except that an
 *    amount may differ from it only in trailing fractional zeros (the same number, in
 *    the currency's ISO 4217 minor unit: amount.c) and an IPv4-mapped IPv6 client
 *    address goes out as its IPv4 address;
 *  - a Swaarm POST has no body: its parameters are in the query, like a GET's.
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "amount.h"
#include "render.h"
#include "fuzz.h"

#define NFIELDS 17

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes percent-encoded text (as s2s_append_percent_encoded writes it); NULL if malformed. */
static char *
decode(const char *s, size_t len)
{
	char	   *out = palloc(len + 1);
	size_t		w = 0;

	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '%')
		{
			if (i + 2 >= len)
				return NULL;
			if (hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
				return NULL;
			out[w++] = (char) (hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		}
		else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
				 c == '-' || c == '.' || c == '_' || c == '~')
			out[w++] = (char) c;
		else
			return NULL;
	}
	out[w] = '\0';
	return out;
}

/* The value of name in a query string "a=1&b=2" (decoded), or NULL when absent. */
static char *
query_param(const char *query, const char *name)
{
	size_t		nlen = strlen(name);
	const char *p = query;

	while (p && *p)
	{
		const char *amp = strchr(p, '&');
		size_t		plen = amp ? (size_t) (amp - p) : strlen(p);

		if (plen > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=')
		{
			char	   *v = decode(p + nlen + 1, plen - nlen - 1);

			FUZZ_CHECK(v != NULL, "parameter %s is not percent-encoded", name);
			return v;
		}
		p = amp ? amp + 1 : NULL;
	}
	return NULL;
}

static bool
absent(const char *v)
{
	return v == NULL || v[0] == '\0';
}

/* Parameter name carries value: present and equal, or (optional) absent when value is. */
static void
check_param(const char *query, const char *name, const char *value, bool always)
{
	char	   *got = query_param(query, name);

	if (absent(value))
	{
		if (always)
			FUZZ_CHECK(got != NULL && got[0] == '\0', "%s should be present and empty", name);
		else
			FUZZ_CHECK(got == NULL, "%s should be absent", name);
	}
	else
		FUZZ_CHECK(got != NULL && strcmp(got, value) == 0, "%s: sent \"%s\", expected \"%s\"",
				   name, got ? got : "(absent)", value);
}

/* value without trailing fractional zeros (and a point left bare): "1.500" -> "1.5" */
static char *
number_core(const char *value)
{
	char	   *copy = pstrdup(value);
	char	   *point = strchr(copy, '.');
	size_t		len = strlen(copy);

	if (point == NULL)
		return copy;
	while (len > 0 && copy[len - 1] == '0' && copy + len - 1 > point)
		copy[--len] = '\0';
	if (copy + len - 1 == point)
		copy[--len] = '\0';
	return copy;
}

/*
 * The amount parameter: absent when the delivery has none, else what amount.c makes of
 * it, which differs from the value only in trailing fractional zeros.
 */
static void
check_amount(const char *query, const char *name, const char *amount, const char *currency)
{
	char	   *got = query_param(query, name);
	char	   *want;

	if (absent(amount))
	{
		FUZZ_CHECK(got == NULL, "%s should be absent", name);
		return;
	}
	want = palloc(S2S_AMOUNT_BUFSIZE(strlen(amount)));
	s2s_amount_format(amount, currency, want);
	FUZZ_CHECK(got != NULL && strcmp(got, want) == 0, "%s: sent \"%s\", expected \"%s\"",
			   name, got ? got : "(absent)", want);
	FUZZ_CHECK(strcmp(number_core(got), number_core(amount)) == 0 ||
			   strcmp(got, amount) == 0, "%s: \"%s\" is not the value \"%s\"", name, got, amount);
}

/* A client address parameter: the value, or the IPv4 address of an IPv4-mapped one. */
static void
check_ip(const char *query, const char *name, const char *ip, bool always)
{
	char	   *got = query_param(query, name);

	if (!absent(ip) && got != NULL && strcmp(got, ip) != 0)
	{
		FUZZ_CHECK(pg_strncasecmp(ip, "::ffff:", 7) == 0 && strcmp(got, ip + 7) == 0 &&
				   strchr(got, '.') != NULL && strspn(got, "0123456789.") == strlen(got),
				   "%s: sent \"%s\" for \"%s\"", name, got, ip);
		return;
	}
	check_param(query, name, ip, always);
}

static void
check_percent_encoding(const char *value)
{
	StringInfoData buf;
	char	   *back;

	initStringInfo(&buf);
	s2s_append_percent_encoded(&buf, value);
	back = decode(buf.data, buf.len);
	FUZZ_CHECK(back != NULL, "encoded form is not unreserved/%%XX only: %s", buf.data);
	FUZZ_CHECK(strcmp(back, value) == 0, "round trip changed the value");
	FUZZ_CHECK(buf.len <= 3 * (int) strlen(value), "encoded length");
}

static bool
same_request(const S2SRequest *a, const S2SRequest *b)
{
	if (strcmp(a->method, b->method) != 0 || strcmp(a->url, b->url) != 0 ||
		a->nheaders != b->nheaders || (a->body == NULL) != (b->body == NULL))
		return false;
	if (a->body && (a->body_len != b->body_len || memcmp(a->body, b->body, a->body_len) != 0))
		return false;
	for (int i = 0; i < a->nheaders; i++)
		if (strcmp(a->header_names[i], b->header_names[i]) != 0 ||
			strcmp(a->header_values[i], b->header_values[i]) != 0)
			return false;
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int			flags = (int) fuzz_take(&data, &size, 1);
	char	   *f[NFIELDS] = {0};
	int			n = fuzz_split(data, size, f, NFIELDS);
	S2SEndpointConf ep;
	S2SDeliveryData d;
	S2SRequest	req;
	const char *err;
	const char *query;

	for (int i = 0; i < n; i++)
		check_percent_encoding(f[i]);

	memset(&ep, 0, sizeof(ep));
	ep.kind = (S2SEndpointKind) ((flags & 3) % 3);
	ep.url = f[0] ? f[0] : "";
	ep.secret = f[1];
	ep.http_method = (flags & 8) ? "POST" : "GET";
	ep.token_in_query = (flags & 16) != 0;
	d.conversion_id = f[2];
	d.amount = f[3];
	d.currency = f[4];
	d.payment = f[5];
	d.customer = f[6];
	d.cv = f[7];
	d.voucher = f[8];
	d.click_ids = f[9];
	d.user_id = f[10];
	d.event_id = f[11];
	d.event_value = f[12];
	d.aggregated_event_value = f[13];
	d.client_ip = f[14];
	d.user_agent = f[15];
	d.referer = f[16];

	err = s2s_render_request(&ep, &d, (flags & 4) != 0, &req);
	if (err != NULL)
	{
		/* a refusal never depends on the secret's value (so it cannot quote it) */
		if (!absent(ep.secret))
		{
			S2SEndpointConf ep2 = ep;
			S2SRequest	other;
			const char *err2;

			ep2.secret = "a-completely-different-secret";
			err2 = s2s_render_request(&ep2, &d, (flags & 4) != 0, &other);
			FUZZ_CHECK(err2 != NULL && strcmp(err, err2) == 0, "error depends on the secret");
		}
		fuzz_reset();
		return 0;
	}

	FUZZ_CHECK(req.method != NULL && req.url != NULL, "incomplete request");
	FUZZ_CHECK(req.nheaders >= 0 && req.nheaders <= S2S_MAX_HEADERS, "nheaders %d", req.nheaders);
	for (int i = 0; i < req.nheaders; i++)
		for (const char *p = req.header_values[i]; *p; p++)
			FUZZ_CHECK((unsigned char) *p >= 0x20 && *p != 0x7f,
					   "control byte 0x%02x in header %s", (unsigned char) *p, req.header_names[i]);

	/* what we append to the configured URL is printable and has no space */
	{
		size_t		base = strlen(ep.url);

		if (ep.kind != S2S_KIND_AFFILAE)
			while (base > 0 && ep.url[base - 1] == '/')
				base--;
		FUZZ_CHECK(strncmp(req.url, ep.url, base) == 0, "URL does not start with the endpoint's");
		for (const char *p = req.url + base; *p; p++)
			FUZZ_CHECK((unsigned char) *p > 0x20 && (unsigned char) *p < 0x7f,
					   "byte 0x%02x in the URL we built", (unsigned char) *p);
		query = strrchr(req.url + base, '?');
		query = query ? query + 1 : "";
	}

	/* masked: the secret cannot influence what preview shows */
	if (flags & 4)
	{
		S2SRequest	other;
		S2SEndpointConf ep2 = ep;

		ep2.secret = "a-completely-different-secret";
		FUZZ_CHECK(s2s_render_request(&ep2, &d, true, &other) == NULL, "second render failed");
		FUZZ_CHECK(same_request(&req, &other), "masked request depends on the secret");
	}

	/* the parameters we send decode back to the delivery's values */
	if (ep.kind == S2S_KIND_AFFILAE && strchr(ep.url, '?') == NULL)
	{
		if (!(flags & 4))
			check_param(query, "key", ep.secret, true);
		check_param(query, "id", d.conversion_id, true);
		check_amount(query, "amount", d.amount, d.currency);
		check_param(query, "currency", d.currency, true);
		check_param(query, "payment", d.payment, true);
		check_param(query, "customer", d.customer, false);
		check_param(query, "cv", d.cv, false);
		check_param(query, "voucher", d.voucher, false);
		check_param(query, "cids", d.click_ids, true);
	}
	else if (ep.kind == S2S_KIND_SWAARM_S2SEVENT)
	{
		check_param(query, "user_id", d.user_id, true);
		check_param(query, "event_id", d.event_id, true);
		check_ip(query, "user_ip", d.client_ip, true);
		check_param(query, "user_ua", d.user_agent, true);
	}
	else if (ep.kind == S2S_KIND_SWAARM_POSTBACK)
	{
		const char *params = query;

		FUZZ_CHECK(req.body == NULL, "a Swaarm postback has no body");
		FUZZ_CHECK(strcmp(req.method, (flags & 8) ? "POST" : "GET") == 0, "method");
		check_param(params, "user_id", d.user_id, true);
		check_param(params, "event_id", d.event_id, true);
		check_ip(params, "ip_address", d.client_ip, false);
		check_param(params, "user_agent", d.user_agent, false);
		check_amount(params, "sale_amount", d.amount, d.currency);
		if (!absent(d.amount))
			check_param(params, "sale_amount_currency", d.currency, true);
		check_param(params, "event_value", d.event_value, false);
		check_param(params, "aggregated_event_value", d.aggregated_event_value, false);
		if (ep.token_in_query)
			FUZZ_CHECK(strstr(req.url, "s2s_token=") != NULL, "token missing from the query");
		else
			FUZZ_CHECK(req.nheaders >= 1 && strcmp(req.header_names[0], "Authorization") == 0,
					   "Authorization header missing");
	}
	fuzz_reset();
	return 0;
}
