/*
 * render.h
 *		Endpoint kind + delivery parameters -> the exact HTTP request (pure).
 *
 * One code path for s2s.preview() and for the worker: what preview shows is what is sent.
 * No catalog or network access here; memory is palloc'd in the caller's context and the
 * functions never ereport: a problem is returned as a message for the caller to report.
 */
#ifndef S2S_RENDER_H
#define S2S_RENDER_H

typedef enum S2SEndpointKind
{
	S2S_KIND_AFFILAE,
	S2S_KIND_SWAARM_POSTBACK,
	S2S_KIND_SWAARM_S2SEVENT
} S2SEndpointKind;

typedef struct S2SEndpointConf
{
	S2SEndpointKind kind;
	const char *url;			/* affilae: postback URL; swaarm: tracking domain */
	const char *secret;			/* Affilae key / Swaarm token; may be NULL */
	const char *http_method;	/* swaarm_postback: "GET" or "POST" */
	bool		token_in_query; /* swaarm_postback: s2s_token in the query string */
} S2SEndpointConf;

/* Every field is a NUL-terminated string or NULL when absent. */
typedef struct S2SDeliveryData
{
	const char *conversion_id;
	const char *amount;			/* numeric's text form: "123.45" */
	const char *currency;
	const char *payment;
	const char *customer;
	const char *cv;
	const char *voucher;
	const char *click_ids;
	const char *user_id;
	const char *event_id;
	const char *event_value;
	const char *aggregated_event_value;
	const char *client_ip;
	const char *user_agent;
	const char *referer;
} S2SDeliveryData;

#define S2S_MAX_HEADERS 8

/* What s2s.preview() shows instead of the Affilae key or the Swaarm token. */
#define S2S_SECRET_MASK "********"

typedef struct S2SRequest
{
	const char *method;
	char	   *url;
	int			nheaders;
	const char *header_names[S2S_MAX_HEADERS];
	char	   *header_values[S2S_MAX_HEADERS];
	char	   *body;			/* NULL: no body (a Swaarm POST has none either) */
	int			body_len;
} S2SRequest;

/*
 * Renders the request for one delivery. With mask_secrets, the key or token is replaced
 * by "********" (for preview). Returns NULL on success, else a message saying what is
 * wrong (the caller records it; the secret never appears in it).
 */
extern const char *s2s_render_request(const S2SEndpointConf *endpoint,
									  const S2SDeliveryData *data,
									  bool mask_secrets,
									  S2SRequest *out);

/* "affilae", "swaarm_postback", "swaarm_s2sevent" -> kind; false for anything else. */
extern bool s2s_parse_endpoint_kind(const char *name, S2SEndpointKind *kind);

/*
 * Appends value percent-encoded as RFC 3986 says: unreserved characters
 * (A-Z a-z 0-9 - . _ ~) as they are, every other byte as %XX.
 */
extern void s2s_append_percent_encoded(struct StringInfoData *buf, const char *value);

#endif							/* S2S_RENDER_H */
