/*
 * http.c
 *		The HTTP client: libcurl's multi interface driven by socket callbacks and an
 *		internal epoll descriptor (see http.h for the contract).
 *
 * How it fits the worker: libcurl tells us, through CURLMOPT_SOCKETFUNCTION, which
 * sockets it wants watched, and we mirror that into our own epoll set; through
 * CURLMOPT_TIMERFUNCTION, when it next wants to be called. The epoll descriptor is
 * readable whenever a transfer socket is ready, so the worker puts it in its WaitEventSet
 * next to its latch and sleeps until either a commit or the network needs it; then
 * s2s_http_process() hands the ready sockets (without blocking) to curl_multi_socket_action.
 *
 * Admission: requests are queued in one FIFO per group (the endpoint, or the URL's host)
 * and started while fewer than max_connections transfers run in all and fewer than the
 * group's cap run in that group; groups take turns, so a slow endpoint never holds back
 * another. s2s_http_submit never refuses for capacity: the caller bounds what it submits
 * (s2s_http_in_flight() counts queued and running requests). The number of open sockets is
 * thus bounded by max_connections (also set as CURLMOPT_MAX_TOTAL_CONNECTIONS), and the
 * connection cache holds as many, so a busy endpoint is served by warm keep-alive
 * connections.
 *
 * This file knows nothing of PostgreSQL: plain C and malloc, so that it can be unit
 * tested on its own (test/unit/http_test.c). Nothing here blocks, and every libcurl
 * handle is returned to the pool or freed on every path.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http.h"

/*
 * CURLOPT_PREREQFUNCTION (libcurl 7.80): the check of a kept-alive connection's peer, and
 * the one place that knows a request is about to be sent.
 */
#define HTTP_HAS_PREREQ (LIBCURL_VERSION_NUM >= 0x075000)

#define HTTP_MAX_EVENTS 256
#define HTTP_MAX_ROUNDS 8
#define HTTP_MAX_GROUP_KEY 255
#define HTTP_MAX_RETRY_AFTER 127
#define HTTP_MAX_IDLE_GROUPS 64

typedef struct Group Group;
typedef struct HttpPrepared Transfer;

/*
 * One request, from s2s_http_prepare (or s2s_http_submit) to s2s_http_next_result; outside
 * this file, before it is submitted, an HttpPrepared.
 */
struct HttpPrepared
{
	Transfer   *next;			/* in its group's queue, or in the done list */
	Transfer   *rprev;			/* in the client's running list */
	Transfer   *rnext;
	HttpClient *client;
	Group	   *group;
	CURL	   *easy;			/* while running */
	struct curl_slist *headers;
	char	   *url;
	char	   *method;
	char	   *body;
	size_t		body_len;
	long		total_timeout_ms;
	void	   *tag;
	char	   *group_key;		/* HttpRequest.group, or the URL's host and port */
	int			host_cap;		/* HttpRequest.host_cap */

	/* the response */
	char	   *resp;			/* NUL-terminated */
	size_t		resp_len;
	size_t		resp_cap;		/* allocated bytes (resp_len + 1 at most this) */
	size_t		resp_max;		/* bytes kept at most */
	bool		truncated;
	char		retry_after[HTTP_MAX_RETRY_AFTER + 1];
	bool		has_retry_after;
	char		errbuf[CURL_ERROR_SIZE];

	double		started_at;		/* wall clock, seconds */
	double		start_mono_ms;
	double		deadline_mono_ms;	/* start + the total timeout; 0: none */
	bool		request_sent;	/* libcurl was about to send the request (prereq_cb) */
	bool		overdue_unsent; /* prereq_cb stopped it: its deadline had passed */
	double		duration_ms;
	long		status;
	int			code;			/* CURLcode */
	HttpErrorKind kind;
	char		error[256];
	char		refused[NET_REFUSAL_LEN];	/* why an address was refused, or "" */
	bool		any_allowed;	/* an address passed the check (a failure is then not a refusal) */
	bool		peer_gone;		/* libcurl could not read the connection's peer address */
};

/* Requests sharing a cap: an endpoint, or a host. */
struct Group
{
	Group	   *next;
	char	   *key;
	int			cap;			/* from the last request; 0: the client's */
	int			running;
	int			queued;
	Transfer   *head;
	Transfer   *tail;
};

struct HttpClient
{
	CURLM	   *multi;
	int			epfd;
	HttpClientOptions opt;
	char	   *user_agent;
	int			running;
	int			queued;
	double		timer_deadline_ms;	/* monotonic; < 0: no timer */
	Group	   *groups;
	int			ngroups;
	Group	   *cursor;			/* the group to serve next */
	Transfer   *running_head;	/* transfers handed to libcurl */
	Transfer   *done_head;
	Transfer   *done_tail;
	CURL	  **pool;			/* idle easy handles, reused */
	int			npool;
	int			pool_size;
	NetCidr		allowed[NET_MAX_ALLOWED];	/* opt.allowed_networks points here */
	NetPolicy	policy;			/* what the address checks allow */
};

static bool curl_initialized = false;

static double
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static double
wall_s(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec + tv.tv_usec / 1e6;
}

static void
copy_error(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src);
}

/* ---- libcurl callbacks ---- */

/* Mirrors libcurl's interest in a socket into the epoll set. */
static int
socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	HttpClient *client = (HttpClient *) userp;
	struct epoll_event ev;

	(void) easy;
	(void) socketp;
	if (what == CURL_POLL_REMOVE)
	{
		/* the socket may already be closed: errors do not matter here */
		(void) epoll_ctl(client->epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	memset(&ev, 0, sizeof(ev));
	ev.data.fd = s;
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev.events |= EPOLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(client->epfd, EPOLL_CTL_MOD, s, &ev) != 0)
	{
		if (errno != ENOENT || epoll_ctl(client->epfd, EPOLL_CTL_ADD, s, &ev) != 0)
			return -1;
	}
	return 0;
}

static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	HttpClient *client = (HttpClient *) userp;

	(void) multi;
	client->timer_deadline_ms = timeout_ms < 0 ? -1.0 : mono_ms() + (double) timeout_ms;
	return 0;
}

/* Keeps up to resp_max bytes of the body and drops the rest, without failing. */
static size_t
write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	Transfer   *t = (Transfer *) userp;
	size_t		n = size * nmemb;
	size_t		keep = n;

	if (t->resp_len + keep > t->resp_max)
	{
		keep = t->resp_max - t->resp_len;
		t->truncated = true;
	}
	if (keep > 0)
	{
		if (t->resp_len + keep + 1 > t->resp_cap)
		{
			size_t		cap = t->resp_cap ? t->resp_cap : 1024;
			char	   *p;

			while (cap < t->resp_len + keep + 1)
				cap *= 2;
			if (cap > t->resp_max + 1)
				cap = t->resp_max + 1;
			p = realloc(t->resp, cap);
			if (p == NULL)
				return 0;		/* out of memory: the transfer fails */
			t->resp = p;
			t->resp_cap = cap;
		}
		memcpy(t->resp + t->resp_len, data, keep);
		t->resp_len += keep;
		t->resp[t->resp_len] = '\0';
	}
	return n;
}

/* Captures Retry-After from the final response's header block. */
static size_t
header_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	Transfer   *t = (Transfer *) userp;
	size_t		n = size * nmemb;
	static const char name[] = "retry-after:";
	size_t		nlen = sizeof(name) - 1;

	if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
	{
		/* a new response (after 100 Continue, say): forget the previous headers */
		t->has_retry_after = false;
		t->retry_after[0] = '\0';
	}
	else if (n > nlen && strncasecmp(data, name, nlen) == 0)
	{
		const char *v = data + nlen;
		size_t		vlen = n - nlen;

		while (vlen > 0 && (*v == ' ' || *v == '\t'))
			v++, vlen--;
		while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
							v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		if (vlen > HTTP_MAX_RETRY_AFTER)
			vlen = HTTP_MAX_RETRY_AFTER;	/* too long to be valid: the parser says so */
		memcpy(t->retry_after, v, vlen);
		t->retry_after[vlen] = '\0';
		t->has_retry_after = true;
	}
	return n;
}

/* ---- transfers ---- */

static void
transfer_free(Transfer *t)
{
	if (t == NULL)
		return;
	curl_slist_free_all(t->headers);
	free(t->url);
	free(t->method);
	free(t->body);
	free(t->resp);
	free(t->group_key);
	free(t);
}

static CURL *
pool_get(HttpClient *client)
{
	if (client->npool > 0)
		return client->pool[--client->npool];
	return curl_easy_init();
}

/*
 * Keeps an easy handle for the next transfer. Reset here rather than when reused, so that
 * an idle handle keeps no pointer to the transfer that is about to be freed.
 */
static void
pool_put(HttpClient *client, CURL *easy)
{
	if (easy == NULL)
		return;
	if (client->npool < client->pool_size)
	{
		curl_easy_reset(easy);
		client->pool[client->npool++] = easy;
	}
	else
		curl_easy_cleanup(easy);
}

static void
done_append(HttpClient *client, Transfer *t)
{
	t->next = NULL;
	if (client->done_tail)
		client->done_tail->next = t;
	else
		client->done_head = t;
	client->done_tail = t;
}

static HttpErrorKind
error_kind(CURLcode code)
{
	switch (code)
	{
		case CURLE_OK:
			return HTTP_ERROR_NONE;
		case CURLE_OPERATION_TIMEDOUT:
			return HTTP_ERROR_TIMEOUT;
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_URL_MALFORMAT:
			return HTTP_ERROR_REFUSED;
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		case CURLE_SSL_INVALIDCERTSTATUS:
		case CURLE_SSL_CRL_BADFILE:
		case CURLE_SSL_SHUTDOWN_FAILED:
		case CURLE_SSL_ENGINE_NOTFOUND:
		case CURLE_SSL_ENGINE_SETFAILED:
		case CURLE_SSL_ENGINE_INITFAILED:
			return HTTP_ERROR_TLS;
		case CURLE_OUT_OF_MEMORY:
		case CURLE_FAILED_INIT:
		case CURLE_BAD_FUNCTION_ARGUMENT:
		case CURLE_WRITE_ERROR:
		case CURLE_ABORTED_BY_CALLBACK:
			return HTTP_ERROR_INTERNAL;
		default:
			return HTTP_ERROR_NETWORK;
	}
}

/*
 * The error text: libcurl's detailed message when it cannot leak the URL (which may
 * hold a key in its query string), else its generic text for the code.
 */
static void
set_error_text(Transfer *t)
{
	const char *detail = t->errbuf;
	bool		safe = detail[0] != '\0' &&
		strchr(detail, '?') == NULL &&
		strstr(detail, "://") == NULL &&
		strstr(detail, t->url) == NULL;

	copy_error(t->error, sizeof(t->error),
			   safe ? detail : curl_easy_strerror((CURLcode) t->code));
}

/* The error text of a transfer ended at its deadline (expire_overdue). */
static void
overdue_text(Transfer *t, double now)
{
	const char *what = !HTTP_HAS_PREREQ ? "the request may have been sent" :
		t->request_sent ? "the request was sent, no complete answer came" :
		"the request was not sent";

	snprintf(t->errbuf, sizeof(t->errbuf), "Operation timed out after %.0f milliseconds (%s)",
			 now - t->start_mono_ms, what);
}

/* A transfer libcurl finished (or that could not start): its result joins the queue. */
static void
transfer_finish(HttpClient *client, Transfer *t, CURLcode code)
{
	long		status = 0;

	if (t->easy)
	{
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
		curl_multi_remove_handle(client->multi, t->easy);
		pool_put(client, t->easy);
		t->easy = NULL;
	}
	if (code == CURLE_ABORTED_BY_CALLBACK && t->overdue_unsent)
	{
		code = CURLE_OPERATION_TIMEDOUT;
		overdue_text(t, mono_ms());
	}
	t->status = status;
	t->code = (int) code;
	t->kind = error_kind(code);
	if (code != CURLE_OK)
		set_error_text(t);
	if (code == CURLE_ABORTED_BY_CALLBACK && t->peer_gone)
	{
		t->kind = HTTP_ERROR_NETWORK;
		copy_error(t->error, sizeof(t->error),
				   "the connection was closed before the request was sent (its peer's address could not be read)");
	}
	else if (code != CURLE_OK && status == 0 && t->refused[0] != '\0' &&
			 (!t->any_allowed || code == CURLE_ABORTED_BY_CALLBACK))
	{
		t->kind = HTTP_ERROR_REFUSED;
		snprintf(t->error, sizeof(t->error),
				 "connection refused: %s, not in s2s_tracking.allowed_networks", t->refused);
	}
	t->duration_ms = mono_ms() - t->start_mono_ms;
	curl_slist_free_all(t->headers);
	t->headers = NULL;
	free(t->body);
	t->body = NULL;

	if (t->rprev)
		t->rprev->rnext = t->rnext;
	else
		client->running_head = t->rnext;
	if (t->rnext)
		t->rnext->rprev = t->rprev;
	t->rprev = t->rnext = NULL;
	client->running--;
	t->group->running--;
	done_append(client, t);
}

/* A request refused before it reached libcurl: a result right away. */
static void
transfer_refuse(HttpClient *client, Transfer *t, HttpErrorKind kind, const char *why)
{
	t->status = 0;
	t->code = (int) (kind == HTTP_ERROR_REFUSED ? CURLE_UNSUPPORTED_PROTOCOL : CURLE_FAILED_INIT);
	t->kind = kind;
	copy_error(t->error, sizeof(t->error), why);
	t->started_at = wall_s();
	t->duration_ms = 0;
	done_append(client, t);
}

/*
 * Whether a connection may go to this address (netcheck.c); if not, the reason is kept
 * for the result's error text. Addresses of a family other than IPv4 and IPv6 (a Unix
 * socket cannot be asked for: CURLOPT_UNIX_SOCKET_PATH is never set) are refused.
 */
static bool
address_allowed(Transfer *t, const struct sockaddr *sa)
{
	NetAddr		addr;

	if (!net_addr_from_sockaddr(sa, &addr))
	{
		snprintf(t->refused, sizeof(t->refused), "the address is neither IPv4 nor IPv6");
		return false;
	}
	return net_refusal(&addr, &t->client->policy, t->refused) == NULL;
}

/*
 * Opens the socket of each connection libcurl makes, after name resolution: the place to
 * check the address really connected to, whatever the URL spelled (a host name that
 * resolves, or rebinds, to an internal address; a decimal or hexadecimal IPv4 form, ...).
 * Nothing leaves for a refused address: not even a SYN. libcurl then tries the next
 * address, or fails with CURLE_COULDNT_CONNECT, which transfer_finish reports as refused.
 */
static curl_socket_t
opensocket_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	Transfer   *t = (Transfer *) clientp;

	(void) purpose;
	if (!address_allowed(t, &address->addr))
		return CURL_SOCKET_BAD;
	t->any_allowed = true;
	return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

#if HTTP_HAS_PREREQ
/*
 * Called before each request is sent, on a new or a reused connection. A kept-alive
 * connection was checked when it was opened, but the allowed networks may have shrunk
 * since (a reload): this check on the peer's address closes that gap.
 */
static int
prereq_cb(void *clientp, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
	Transfer   *t = (Transfer *) clientp;
	NetAddr		addr;

	(void) local_ip;
	(void) primary_port;
	(void) local_port;

	/*
	 * No address: libcurl 7.x (Debian 12's 7.88) and early 8.x read it with getpeername()
	 * once connected, which fails when
	 * the peer has already closed or reset the connection (a receiver going down). Nothing
	 * can be checked, so nothing is sent; but the connection is gone, no address was
	 * refused: transfer_finish reports a network error, retried, and the endpoint is not
	 * paused as it is for a refusal.
	 */
	if (primary_ip == NULL || primary_ip[0] == '\0')
	{
		t->peer_gone = true;
		return CURL_PREREQFUNC_ABORT;
	}
	if (!net_parse_addr(primary_ip, &addr))
	{
		snprintf(t->refused, sizeof(t->refused),
				 "the peer's address \"%.64s\" is neither IPv4 nor IPv6", primary_ip);
		return CURL_PREREQFUNC_ABORT;
	}
	if (net_refusal(&addr, &t->client->policy, t->refused) != NULL)
		return CURL_PREREQFUNC_ABORT;
	/* past its deadline (expire_overdue): never sent */
	if (t->deadline_mono_ms > 0 && mono_ms() >= t->deadline_mono_ms)
	{
		t->overdue_unsent = true;
		return CURL_PREREQFUNC_ABORT;
	}
	t->request_sent = true;
	return CURL_PREREQFUNC_OK;
}
#endif

static bool
configure(HttpClient *client, Transfer *t)
{
	CURL	   *e = t->easy;
	const char *protocols = client->opt.allow_http ? "http,https" : "https";
	long		total = t->total_timeout_ms > 0 ? t->total_timeout_ms : client->opt.total_timeout_ms;
	CURLcode	rc = CURLE_OK;

#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)
	SET(CURLOPT_PRIVATE, t);
	SET(CURLOPT_URL, t->url);
	SET(CURLOPT_PROTOCOLS_STR, protocols);
	SET(CURLOPT_REDIR_PROTOCOLS_STR, protocols);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	if (client->opt.connect_timeout_ms > 0)
		SET(CURLOPT_CONNECTTIMEOUT_MS, client->opt.connect_timeout_ms);
	/* the total timeout is this file's (expire_overdue), not libcurl's */
	t->deadline_mono_ms = total > 0 ? t->start_mono_ms + (double) total : 0;
	if (client->user_agent)
		SET(CURLOPT_USERAGENT, client->user_agent);
	SET(CURLOPT_HTTPHEADER, t->headers);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, t);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, t);
	SET(CURLOPT_ERRORBUFFER, t->errbuf);
	SET(CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
	SET(CURLOPT_OPENSOCKETDATA, t);
#if HTTP_HAS_PREREQ
	SET(CURLOPT_PREREQFUNCTION, prereq_cb);
	SET(CURLOPT_PREREQDATA, t);
#endif
	/*
	 * Never a proxy, whatever http_proxy/https_proxy/ALL_PROXY say in the server's
	 * environment: the address checked must be the endpoint's own.
	 */
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_NOPROXY, "*");

	if (strcmp(t->method, "GET") == 0)
		SET(CURLOPT_HTTPGET, 1L);
	else if (strcmp(t->method, "HEAD") == 0)
		SET(CURLOPT_NOBODY, 1L);
	else
	{
		if (strcmp(t->method, "POST") == 0)
			SET(CURLOPT_POST, 1L);
		else
			SET(CURLOPT_CUSTOMREQUEST, t->method);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) t->body_len);
		SET(CURLOPT_POSTFIELDS, t->body ? t->body : "");
	}
#undef SET
	return rc == CURLE_OK;
}

static void
transfer_start(HttpClient *client, Transfer *t)
{
	Group	   *g = t->group;

	g->head = t->next;
	if (g->head == NULL)
		g->tail = NULL;
	t->next = NULL;
	g->queued--;
	client->queued--;
	g->running++;
	client->running++;
	t->rprev = NULL;
	t->rnext = client->running_head;
	if (client->running_head)
		client->running_head->rprev = t;
	client->running_head = t;

	t->started_at = wall_s();
	t->start_mono_ms = mono_ms();
	t->easy = pool_get(client);
	if (t->easy == NULL || !configure(client, t) ||
		curl_multi_add_handle(client->multi, t->easy) != CURLM_OK)
		transfer_finish(client, t, CURLE_FAILED_INIT);
}

static int
group_cap(HttpClient *client, Group *g)
{
	int			cap = g->cap > 0 ? g->cap : client->opt.max_host_connections;

	return cap > 0 ? cap : 1;
}

/* Starts queued requests while the caps allow, groups taking turns. */
static void
dispatch(HttpClient *client)
{
	int			max = client->opt.max_connections > 0 ? client->opt.max_connections : 1;

	while (client->queued > 0 && client->running < max)
	{
		Group	   *g = client->cursor ? client->cursor : client->groups;
		Group	   *ready = NULL;

		for (int i = 0; i < client->ngroups && g != NULL; i++)
		{
			if (g->queued > 0 && g->running < group_cap(client, g))
			{
				ready = g;
				break;
			}
			g = g->next ? g->next : client->groups;
		}
		if (ready == NULL)
			break;
		client->cursor = ready->next;
		transfer_start(client, ready->head);
	}
}

/* Drops idle groups when there are many (each endpoint or host makes one). */
static void
groups_trim(HttpClient *client)
{
	Group	  **link = &client->groups;

	if (client->ngroups <= HTTP_MAX_IDLE_GROUPS)
		return;
	while (*link)
	{
		Group	   *g = *link;

		if (g->running == 0 && g->queued == 0)
		{
			*link = g->next;
			if (client->cursor == g)
				client->cursor = g->next;
			free(g->key);
			free(g);
			client->ngroups--;
		}
		else
			link = &g->next;
	}
}

/* The group key of a URL: its host and port (user info dropped: it may be a secret). */
static void
url_host_key(const char *url, char *key, size_t len)
{
	const char *p = strstr(url, "://");
	const char *end;
	const char *at;

	p = p ? p + 3 : url;
	end = p + strcspn(p, "/?#");
	at = memchr(p, '@', end - p);
	if (at)
		p = at + 1;
	snprintf(key, len, "%.*s", (int) (end - p), p);
}

static Group *
group_get(HttpClient *client, const char *key)
{
	Group	   *g;

	for (g = client->groups; g; g = g->next)
		if (strcmp(g->key, key) == 0)
			return g;
	g = calloc(1, sizeof(Group));
	if (g == NULL || (g->key = strdup(key)) == NULL)
	{
		free(g);
		return NULL;
	}
	g->next = client->groups;
	client->groups = g;
	client->ngroups++;
	return g;
}

static bool
scheme_allowed(HttpClient *client, const char *url)
{
	if (strncasecmp(url, "https://", 8) == 0)
		return true;
	return client->opt.allow_http && strncasecmp(url, "http://", 7) == 0;
}

static bool
valid_header_name(const char *name)
{
	if (name == NULL || name[0] == '\0')
		return false;
	for (const char *c = name; *c; c++)
		if (!(isalnum((unsigned char) *c) || strchr("!#$%&'*+-.^_`|~", *c)))
			return false;
	return true;
}

/* "Name: value", with CR, LF and other control characters replaced by spaces. */
static struct curl_slist *
header_append(struct curl_slist *list, const HttpHeader *h, bool *ok)
{
	size_t		nlen = strlen(h->name);
	size_t		vlen = h->value ? strlen(h->value) : 0;
	char	   *line = malloc(nlen + vlen + 3);
	struct curl_slist *res;

	if (line == NULL)
	{
		*ok = false;
		return list;
	}
	memcpy(line, h->name, nlen);
	if (vlen == 0)
	{
		/* "Name;" is libcurl's way to send a header with an empty value */
		line[nlen] = ';';
		line[nlen + 1] = '\0';
	}
	else
	{
		line[nlen] = ':';
		line[nlen + 1] = ' ';
		for (size_t i = 0; i < vlen; i++)
		{
			unsigned char c = (unsigned char) h->value[i];

			line[nlen + 2 + i] = (c < 0x20 && c != '\t') || c == 0x7f ? ' ' : (char) c;
		}
		line[nlen + 2 + vlen] = '\0';
	}
	res = curl_slist_append(list, line);
	free(line);
	if (res == NULL)
	{
		*ok = false;
		return list;
	}
	return res;
}

/* ---- the interface ---- */

static void
set_options(HttpClient *client, const HttpClientOptions *options)
{
	long		max = options->max_connections > 0 ? options->max_connections : 1;

	int			n_allowed = options->n_allowed_networks;

	client->opt = *options;
	client->opt.user_agent = NULL;
	free(client->user_agent);
	client->user_agent = options->user_agent ? strdup(options->user_agent) : NULL;
	if (n_allowed < 0 || options->allowed_networks == NULL)
		n_allowed = 0;
	if (n_allowed > NET_MAX_ALLOWED)
		n_allowed = NET_MAX_ALLOWED;
	if (n_allowed > 0)
		memmove(client->allowed, options->allowed_networks, sizeof(NetCidr) * n_allowed);
	client->opt.allowed_networks = client->allowed;
	client->opt.n_allowed_networks = n_allowed;
	client->policy.allowed = client->allowed;
	client->policy.n_allowed = n_allowed;
	client->policy.allow_link_local = options->allow_link_local;
	curl_multi_setopt(client->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max);
	curl_multi_setopt(client->multi, CURLMOPT_MAXCONNECTS, max);
}

HttpClient *
s2s_http_client_create(const HttpClientOptions *options, char *errbuf, size_t errlen)
{
	HttpClient *client;
	int			max = options->max_connections > 0 ? options->max_connections : 1;

	/*
	 * Once per process, before any thread exists (libcurl's threaded resolver starts
	 * its threads later, per transfer).
	 */
	if (!curl_initialized)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		{
			copy_error(errbuf, errlen, "could not initialize libcurl");
			return NULL;
		}
		curl_initialized = true;
	}

	client = calloc(1, sizeof(HttpClient));
	if (client == NULL)
	{
		copy_error(errbuf, errlen, "out of memory");
		return NULL;
	}
	client->timer_deadline_ms = -1;
	client->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (client->epfd < 0)
	{
		snprintf(errbuf, errlen, "could not create an epoll descriptor: %s", strerror(errno));
		free(client);
		return NULL;
	}
	client->multi = curl_multi_init();
	client->pool_size = max;
	client->pool = calloc(max, sizeof(CURL *));
	if (client->multi == NULL || client->pool == NULL)
	{
		copy_error(errbuf, errlen, "could not create a libcurl multi handle");
		if (client->multi)
			curl_multi_cleanup(client->multi);
		free(client->pool);
		close(client->epfd);
		free(client);
		return NULL;
	}
	curl_multi_setopt(client->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(client->multi, CURLMOPT_SOCKETDATA, client);
	curl_multi_setopt(client->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(client->multi, CURLMOPT_TIMERDATA, client);
	/* HTTP/1.1 only (see configure()): no multiplexing, one transfer per connection */
	curl_multi_setopt(client->multi, CURLMOPT_PIPELINING, (long) CURLPIPE_NOTHING);
	set_options(client, options);
	return client;
}

void
s2s_http_client_set_options(HttpClient *client, const HttpClientOptions *options)
{
	int			max = options->max_connections > 0 ? options->max_connections : 1;

	if (max > client->pool_size)
	{
		CURL	  **pool = realloc(client->pool, max * sizeof(CURL *));

		if (pool)
		{
			client->pool = pool;
			client->pool_size = max;
		}
	}
	set_options(client, options);
	dispatch(client);
}

/*
 * libcurl's threaded DNS resolver starts threads from inside these calls. A thread
 * inherits the signal mask of its creator, so blocking signals around them keeps
 * PostgreSQL's signal handlers from ever running on a resolver thread.
 */
static void
signals_block(sigset_t *saved)
{
	sigset_t	all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, saved);
}

static void
signals_restore(const sigset_t *saved)
{
	pthread_sigmask(SIG_SETMASK, saved, NULL);
}

void
s2s_http_client_destroy(HttpClient *client)
{
	sigset_t	saved;

	if (client == NULL)
		return;
	signals_block(&saved);
	for (Group *g = client->groups, *gn; g; g = gn)
	{
		gn = g->next;
		for (Transfer *t = g->head, *tn; t; t = tn)
		{
			tn = t->next;
			transfer_free(t);
		}
		free(g->key);
		free(g);
	}
	for (Transfer *t = client->done_head, *tn; t; t = tn)
	{
		tn = t->next;
		transfer_free(t);
	}
	for (Transfer *t = client->running_head, *tn; t; t = tn)
	{
		tn = t->rnext;
		curl_multi_remove_handle(client->multi, t->easy);
		curl_easy_cleanup(t->easy);
		transfer_free(t);
	}
	for (int i = 0; i < client->npool; i++)
		curl_easy_cleanup(client->pool[i]);
	curl_multi_cleanup(client->multi);
	close(client->epfd);
	free(client->pool);
	free(client->user_agent);
	free(client);
	signals_restore(&saved);
}

/* Whether the request sets header name itself (names compare case-insensitively). */
static bool
has_header(const HttpRequest *request, const char *name)
{
	for (int i = 0; i < request->nheaders; i++)
		if (strcasecmp(request->headers[i].name, name) == 0)
			return true;
	return false;
}

HttpPrepared *
s2s_http_prepare(const HttpRequest *request, char *errbuf, size_t errlen)
{
	Transfer   *t;
	char		key[HTTP_MAX_GROUP_KEY + 1];
	bool		ok = true;

	if (request->url == NULL || request->method == NULL || request->method[0] == '\0' ||
		(request->nheaders > 0 && request->headers == NULL))
	{
		copy_error(errbuf, errlen, "invalid request: URL and method are required");
		return NULL;
	}
	for (int i = 0; i < request->nheaders; i++)
	{
		if (!valid_header_name(request->headers[i].name))
		{
			copy_error(errbuf, errlen, "invalid request: a header name is not a valid token");
			return NULL;
		}
	}

	t = calloc(1, sizeof(Transfer));
	if (t == NULL)
	{
		copy_error(errbuf, errlen, "out of memory");
		return NULL;
	}
	t->tag = request->tag;
	t->total_timeout_ms = request->total_timeout_ms;
	t->host_cap = request->host_cap;
	t->url = strdup(request->url);
	t->method = strdup(request->method);
	if (request->body && request->body_len > 0)
	{
		t->body = malloc(request->body_len + 1);
		if (t->body)
		{
			memcpy(t->body, request->body, request->body_len);
			t->body[request->body_len] = '\0';
			t->body_len = request->body_len;
		}
		else
			ok = false;
	}
	for (int i = 0; ok && i < request->nheaders; i++)
		t->headers = header_append(t->headers, &request->headers[i], &ok);
	/* no "Expect: 100-continue" round trip before a POST body */
	if (ok)
	{
		struct curl_slist *l = curl_slist_append(t->headers, "Expect:");

		if (l)
			t->headers = l;
		else
			ok = false;
	}
	/*
	 * A POST without a body (Swaarm's postback: the parameters are in the query) goes
	 * with "Content-Length: 0" and no Content-Type: libcurl would otherwise announce a
	 * form that is not there.
	 */
	if (ok && strcmp(request->method, "GET") != 0 && strcmp(request->method, "HEAD") != 0 &&
		request->body_len == 0 && !has_header(request, "Content-Type"))
	{
		struct curl_slist *l = curl_slist_append(t->headers, "Content-Type:");

		if (l)
			t->headers = l;
		else
			ok = false;
	}

	if (request->group)
		snprintf(key, sizeof(key), "%s", request->group);
	else
		url_host_key(request->url, key, sizeof(key));
	t->group_key = strdup(key);
	if (!ok || t->url == NULL || t->method == NULL || t->group_key == NULL)
	{
		transfer_free(t);
		copy_error(errbuf, errlen, "out of memory");
		return NULL;
	}
	return t;
}

void
s2s_http_prepared_free(HttpPrepared *prepared)
{
	transfer_free(prepared);
}

void *
s2s_http_prepared_tag(const HttpPrepared *prepared)
{
	return prepared->tag;
}

bool
s2s_http_submit_prepared(HttpClient *client, HttpPrepared *prepared, char *errbuf,
						 size_t errlen)
{
	Transfer   *t = prepared;
	Group	   *g = group_get(client, t->group_key);

	if (g == NULL)
	{
		transfer_free(t);
		copy_error(errbuf, errlen, "out of memory");
		return false;
	}
	t->client = client;
	t->group = g;
	t->resp_max = client->opt.max_response_bytes;
	if (t->host_cap > 0)
		g->cap = t->host_cap;

	if (!scheme_allowed(client, t->url))
	{
		/* the same answer libcurl's protocol restriction gives, without a round trip */
		transfer_refuse(client, t, HTTP_ERROR_REFUSED,
						client->opt.allow_http ?
						"URL scheme not allowed: only http:// and https:// URLs are sent" :
						"URL scheme not allowed: only https:// URLs are sent (plain http is disabled)");
		return true;
	}

	t->next = NULL;
	if (g->tail)
		g->tail->next = t;
	else
		g->head = t;
	g->tail = t;
	g->queued++;
	client->queued++;
	dispatch(client);
	return true;
}

bool
s2s_http_submit(HttpClient *client, const HttpRequest *request, char *errbuf, size_t errlen)
{
	HttpPrepared *prepared = s2s_http_prepare(request, errbuf, errlen);

	return prepared != NULL && s2s_http_submit_prepared(client, prepared, errbuf, errlen);
}

/*
 * The total timeout. libcurl's own (CURLOPT_TIMEOUT_MS) is judged before it reads what
 * waits on a socket: a worker held up longer than a request's timeout (a write-back
 * waiting for a row lock, a commit waiting for a synchronous standby) would have the
 * answers that arrived meanwhile reported as timeouts, and their deliveries sent again.
 * So the deadline is kept here and judged around libcurl's work: before it, a transfer
 * past its deadline that has not sent its request is ended (libcurl would otherwise
 * connect and send it now), and prereq_cb stops one whose deadline passes meanwhile; after
 * it, once every ready socket was read, any transfer still past its deadline is ended.
 * Without CURLOPT_PREREQFUNCTION (libcurl before 7.80) whether a request went is unknown,
 * and only the last step applies.
 */
static void
expire_overdue(HttpClient *client, bool sent_too)
{
	double		now = mono_ms();
	Transfer   *t = client->running_head;

	while (t != NULL)
	{
		Transfer   *next = t->rnext;
		bool		may_end = sent_too || (HTTP_HAS_PREREQ && !t->request_sent);

		if (t->deadline_mono_ms > 0 && t->deadline_mono_ms <= now && may_end)
		{
			overdue_text(t, now);
			transfer_finish(client, t, CURLE_OPERATION_TIMEDOUT);
		}
		t = next;
	}
}

/* The earliest deadline of a running transfer (monotonic ms), or 0 when none has one. */
static double
earliest_deadline(HttpClient *client)
{
	double		earliest = 0;

	for (Transfer *t = client->running_head; t != NULL; t = t->rnext)
		if (t->deadline_mono_ms > 0 && (earliest == 0 || t->deadline_mono_ms < earliest))
			earliest = t->deadline_mono_ms;
	return earliest;
}

int
s2s_http_in_flight(HttpClient *client)
{
	return client->running + client->queued;
}

int
s2s_http_wait_fd(HttpClient *client)
{
	return client->epfd;
}

long
s2s_http_timeout_ms(HttpClient *client)
{
	double		wake = client->timer_deadline_ms;
	double		deadline;
	double		left;

	if (client->done_head != NULL)
		return 0;
	deadline = earliest_deadline(client);
	if (deadline > 0 && (wake < 0 || deadline < wake))
		wake = deadline;
	if (wake < 0)
		return -1;
	left = wake - mono_ms();
	if (left <= 0)
		return 0;
	return (long) left + 1;		/* round up: waking early would only spin */
}

/* Moves every transfer libcurl has finished to the result queue. */
static void
collect(HttpClient *client)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(client->multi, &left)) != NULL)
	{
		char	   *priv = NULL;
		CURLcode	code;

		if (msg->msg != CURLMSG_DONE)
			continue;
		/* read everything from msg first: removing the handle invalidates it */
		code = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		if (priv == NULL)
			continue;
		transfer_finish(client, (Transfer *) priv, code);
	}
}

void
s2s_http_process(HttpClient *client)
{
	struct epoll_event events[HTTP_MAX_EVENTS];
	sigset_t	saved;
	int			running;
	bool		all_read = false;

	signals_block(&saved);
	expire_overdue(client, false);
	for (int round = 0; round < HTTP_MAX_ROUNDS; round++)
	{
		int			n = epoll_wait(client->epfd, events, HTTP_MAX_EVENTS, 0);
		bool		timer_due;

		for (int i = 0; i < n; i++)
		{
			int			flags = 0;

			if (events[i].events & EPOLLIN)
				flags |= CURL_CSELECT_IN;
			if (events[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (events[i].events & (EPOLLERR | EPOLLHUP))
				flags |= CURL_CSELECT_ERR;
			curl_multi_socket_action(client->multi, events[i].data.fd, flags, &running);
		}

		timer_due = client->timer_deadline_ms >= 0 && client->timer_deadline_ms <= mono_ms();
		if (timer_due)
		{
			client->timer_deadline_ms = -1;
			curl_multi_socket_action(client->multi, CURL_SOCKET_TIMEOUT, 0, &running);
		}

		collect(client);
		dispatch(client);

		/* more to do at once: a full event buffer, or newly started transfers */
		all_read = (n < HTTP_MAX_EVENTS);
		if (all_read &&
			!(client->timer_deadline_ms >= 0 && client->timer_deadline_ms <= mono_ms()))
			break;
	}
	/* sockets still unread (a full event buffer): judge deadlines at the next call */
	if (all_read)
	{
		expire_overdue(client, true);
		dispatch(client);
	}
	groups_trim(client);
	signals_restore(&saved);
}

bool
s2s_http_next_result(HttpClient *client, HttpResult *result)
{
	Transfer   *t = client->done_head;

	if (t == NULL)
		return false;
	client->done_head = t->next;
	if (client->done_head == NULL)
		client->done_tail = NULL;

	memset(result, 0, sizeof(*result));
	result->tag = t->tag;
	result->http_status = t->status;
	result->error_code = t->code;
	result->error_kind = t->kind;
	copy_error(result->error, sizeof(result->error), t->error);
	if (t->resp == NULL)
		t->resp = calloc(1, 1);
	result->body = t->resp;
	result->body_len = t->resp ? t->resp_len : 0;
	result->body_truncated = t->truncated;
	result->retry_after = t->has_retry_after ? strdup(t->retry_after) : NULL;
	result->started_at = t->started_at;
	result->duration_ms = t->duration_ms;
	t->resp = NULL;
	transfer_free(t);
	return true;
}

void
s2s_http_result_release(HttpResult *result)
{
	free(result->body);
	free(result->retry_after);
	result->body = NULL;
	result->retry_after = NULL;
}
