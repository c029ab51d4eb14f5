/*
 * http.h
 *		A small wrapper around the libcurl multi interface.
 *
 * It knows nothing of PostgreSQL tables, memory contexts or errors: it takes requests,
 * runs them concurrently under a global and a per-group cap with connection reuse, and hands
 * back results. The caller waits on s2s_http_wait_fd() (an epoll descriptor that becomes
 * readable when a transfer socket is ready) together with its own latch, for at most
 * s2s_http_timeout_ms(), then calls s2s_http_process(). All memory is malloc'd and owned by the
 * client; results are released with s2s_http_result_release().
 */
#ifndef S2S_HTTP_H
#define S2S_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "netcheck.h"

typedef struct HttpClient HttpClient;

typedef struct HttpClientOptions
{
	int			max_connections;	/* transfers in flight at once, all hosts */
	int			max_host_connections;	/* in flight per group (see HttpRequest.group) */
	long		connect_timeout_ms;
	long		total_timeout_ms;
	size_t		max_response_bytes; /* body bytes kept; the rest is read and dropped */
	bool		allow_http;			/* else only https:// is allowed */
	const char *user_agent;			/* "s2s_tracking/" and the version */

	/*
	 * Where a connection may go besides the public Internet (netcheck.h): every address
	 * the client is about to connect to, and the address of every connection before a
	 * request is sent on it, is checked against the ranges refused by default; the
	 * networks listed here (at most NET_MAX_ALLOWED, copied) are allowed anyway, and
	 * allow_link_local (deprecated) allows 169.254.0.0/16 and fe80::/10.
	 */
	const NetCidr *allowed_networks;
	int			n_allowed_networks;
	bool		allow_link_local;
} HttpClientOptions;

/*
 * What kind of failure a transfer met (HttpResult.error_kind), so that the caller can
 * decide without knowing CURLcodes.
 */
typedef enum HttpErrorKind
{
	HTTP_ERROR_NONE = 0,		/* an HTTP response arrived (whatever its status) */
	HTTP_ERROR_TIMEOUT,			/* the connect or total timeout expired */
	HTTP_ERROR_NETWORK,			/* DNS, refused, reset, closed without an answer, ... */
	HTTP_ERROR_TLS,				/* TLS handshake or certificate verification failed */
	HTTP_ERROR_REFUSED,			/* never sent: URL malformed, protocol or address not allowed */
	HTTP_ERROR_INTERNAL			/* out of memory or a libcurl internal error */
} HttpErrorKind;

typedef struct HttpHeader
{
	const char *name;
	const char *value;
} HttpHeader;

typedef struct HttpRequest
{
	const char *method;			/* "GET" or "POST" */
	const char *url;
	const HttpHeader *headers;
	int			nheaders;
	const char *body;			/* POST body or NULL */
	size_t		body_len;
	long		total_timeout_ms;	/* 0: the client's default */
	int			host_cap;		/* per-destination cap for this request; 0: client's */
	void	   *tag;			/* the caller's; handed back in HttpResult */

	/*
	 * Requests with the same group share host_cap and wait in one FIFO (e.g. the endpoint
	 * name); NULL: the URL's host and port. Groups are served round-robin, so a slow
	 * group never holds back the others.
	 */
	const char *group;
} HttpRequest;

typedef struct HttpResult
{
	void	   *tag;
	long		http_status;	/* 0 when no HTTP response arrived */
	int			error_code;		/* 0, or the CURLcode of a transport error */
	HttpErrorKind error_kind;	/* HTTP_ERROR_NONE when error_code is 0 */
	char		error[256];		/* transport error in words; never contains the URL */
	char	   *body;			/* NUL-terminated, at most max_response_bytes */
	size_t		body_len;
	bool		body_truncated;
	char	   *retry_after;	/* Retry-After header value, or NULL */
	double		started_at;		/* Unix time, seconds */
	double		duration_ms;
} HttpResult;

/* NULL (with errbuf) on failure. Call before the process starts any thread. */
extern HttpClient *s2s_http_client_create(const HttpClientOptions *options,
									  char *errbuf, size_t errlen);
/* New caps, timeouts, body cap, user agent: for requests started from now on. */
extern void s2s_http_client_set_options(HttpClient *client, const HttpClientOptions *options);
/* Aborts whatever is queued or running and frees everything, results not yet read too. */
extern void s2s_http_client_destroy(HttpClient *client);

/*
 * Copies everything it needs from the request. Never refuses for capacity: requests beyond
 * the caps wait in their group's FIFO (the caller bounds what it submits with
 * s2s_http_in_flight()). A URL whose scheme is not allowed is not sent: its result, with
 * error_kind HTTP_ERROR_REFUSED, is ready at once; one whose host resolves only to
 * refused addresses fails with HTTP_ERROR_REFUSED and the reason, nothing sent. False (with errbuf) only for an invalid
 * request (no URL or method, a header name that is not a token) or out of memory.
 */
extern bool s2s_http_submit(HttpClient *client, const HttpRequest *request,
						char *errbuf, size_t errlen);
/*
 * s2s_http_submit in two steps, for a caller that checks and copies its requests in one
 * thread and runs the client in another (http_driver.c). s2s_http_prepare makes the checks
 * and the copy that need no client, and refuses, with the same errors, what s2s_http_submit
 * refuses (NULL, with errbuf). s2s_http_submit_prepared takes the prepared request over in
 * every case: false (with errbuf) only when out of memory, the request then freed.
 * s2s_http_prepared_free frees one never submitted. All three are plain C with malloc
 * only, safe in any thread.
 */
typedef struct HttpPrepared HttpPrepared;
extern HttpPrepared *s2s_http_prepare(const HttpRequest *request, char *errbuf, size_t errlen);
extern bool s2s_http_submit_prepared(HttpClient *client, HttpPrepared *prepared,
									 char *errbuf, size_t errlen);
extern void s2s_http_prepared_free(HttpPrepared *prepared);
/* HttpRequest.tag of a prepared request. */
extern void *s2s_http_prepared_tag(const HttpPrepared *prepared);
/* Requests submitted and not yet finished: running plus queued. */
extern int	s2s_http_in_flight(HttpClient *client);
/* Readable when a transfer socket is ready (an epoll descriptor; level-triggered). */
extern int	s2s_http_wait_fd(HttpClient *client);
/* How long the caller may sleep: -1 no timer pending, 0 when results are waiting. */
extern long s2s_http_timeout_ms(HttpClient *client);
/* Drives the ready sockets and due timers, starts queued requests; never blocks. */
extern void s2s_http_process(HttpClient *client);
/* The next finished request, in completion order; false when none is waiting. */
extern bool s2s_http_next_result(HttpClient *client, HttpResult *result);
/* Frees the result's body and retry_after. */
extern void s2s_http_result_release(HttpResult *result);

#endif							/* S2S_HTTP_H */
