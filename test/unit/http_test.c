/*
 * http_test.c
 *		Unit tests of src/http.c against the test receiver (test/receiver/receiver.py),
 *		which it starts on 127.0.0.1 and stops (receiver.c).
 *
 *	  http_test path/to/receiver.py
 *
 * Covers statuses, headers and bodies on the wire, the global and per-group caps (the
 * receiver reports how many requests it had in flight at once), keep-alive reuse,
 * timeouts, dropped connections, a 20 MB body that must not grow memory, Retry-After,
 * the https-only rule, error texts that never contain the URL, and the addresses it may
 * connect to (no proxy from the environment either), including a connection whose peer's
 * address libcurl cannot read (getpeername() is replaced below to fail on demand).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "unit.h"
#include "http.h"
#include "receiver.h"

/*
 * Built a second time as http_driver_test (-DHTTP_TEST_DRIVER): every test below then
 * runs against the client driven by a thread of its own (src/http_driver.c), through
 * the same calls the worker makes, and test_driver_thread() checks what only the thread
 * has.
 */
#ifdef HTTP_TEST_DRIVER
#include <dirent.h>
#include "http_driver.h"
#define TEST_NAME "http_driver_test"
#define HttpClient HttpDriver
#define s2s_http_client_create(o, e, l) s2s_http_driver_start((o), true, (e), (l))
#define s2s_http_client_destroy s2s_http_driver_stop
#define s2s_http_client_set_options s2s_http_driver_set_options
#define s2s_http_submit s2s_http_driver_submit
#define s2s_http_in_flight s2s_http_driver_in_flight
#define s2s_http_wait_fd s2s_http_driver_wait_fd
#define s2s_http_timeout_ms s2s_http_driver_timeout_ms
#define s2s_http_process s2s_http_driver_process
#define s2s_http_next_result s2s_http_driver_next_result
#else
#define TEST_NAME "http_test"
#endif

#define MAX_RESULTS 2000

typedef struct Got
{
	int			n;
	HttpResult	r[MAX_RESULTS];
	double		done_at[MAX_RESULTS];	/* monotonic ms when the result was read */
} Got;

static Got	got;

/*
 * libcurl 7.x (and early 8.x) reads the peer's address of a new connection with
 * getpeername(), which fails (ENOTCONN) when the peer has already closed or reset it; the
 * pre-request check then gets an empty address. That race is rare on loopback (a
 * receiver going down), so this test makes it certain: libcurl's calls resolve to this
 * definition, which fails while peer_unreadable is set and counts how often it did.
 */
static volatile int peer_unreadable;
static int	peername_failures;

int
getpeername(int fd, __SOCKADDR_ARG addr, socklen_t *__restrict len)
{
	if (peer_unreadable)
	{
		peername_failures++;
		errno = ENOTCONN;
		return -1;
	}
#ifdef __USE_GNU
	return (int) syscall(SYS_getpeername, fd, addr.__sockaddr__, len);
#else
	return (int) syscall(SYS_getpeername, fd, addr, len);
#endif
}

/* Each control request opens a connection of its own, counted by the receiver. */
static long
connections_besides_control(long before)
{
	return stat_value("connections") - before - 1;
}

/* ---- driving the client as the worker does ---- */

static void
results_clear(void)
{
	for (int i = 0; i < got.n; i++)
		s2s_http_result_release(&got.r[i]);
	got.n = 0;
}

/* Waits on the client's descriptor and timer, reading results, until none is in flight. */
static bool
run_until_idle(HttpClient *c, double limit_ms)
{
	double		deadline = now_ms() + limit_ms;

	while (now_ms() < deadline)
	{
		struct pollfd pfd = {s2s_http_wait_fd(c), POLLIN, 0};
		long		t = s2s_http_timeout_ms(c);

		if (t < 0 || t > 100)
			t = 100;
		(void) poll(&pfd, 1, (int) t);
		s2s_http_process(c);
		while (got.n < MAX_RESULTS && s2s_http_next_result(c, &got.r[got.n]))
			got.done_at[got.n++] = now_ms();
		if (s2s_http_in_flight(c) == 0 && s2s_http_timeout_ms(c) != 0)
			return true;
	}
	return false;
}

static bool
submit(HttpClient *c, const char *method, const char *path, const HttpHeader *h, int nh,
	   const char *body, long timeout_ms, const char *group, int cap, long tag)
{
	HttpRequest r;
	char		url[512];
	char		err[256];

	snprintf(url, sizeof(url), "%s%s", strstr(path, "://") ? "" : base_url, path);
	memset(&r, 0, sizeof(r));
	r.method = method;
	r.url = url;
	r.headers = h;
	r.nheaders = nh;
	r.body = body;
	r.body_len = body ? strlen(body) : 0;
	r.total_timeout_ms = timeout_ms;
	r.group = group;
	r.host_cap = cap;
	r.tag = (void *) tag;
	if (!s2s_http_submit(c, &r, err, sizeof(err)))
	{
		printf("# submit refused: %s\n", err);
		return false;
	}
	return true;
}

static HttpResult *
result_by_tag(long tag)
{
	for (int i = 0; i < got.n; i++)
		if ((long) got.r[i].tag == tag)
			return &got.r[i];
	return NULL;
}

static long
rss_kb(void)
{
	FILE	   *f = fopen("/proc/self/status", "r");
	char		line[256];
	long		kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* ---- the tests ---- */

static void
test_basic(void)
{
	HttpClientOptions o = receiver_client_options();
	HttpClient *c;
	char		err[256] = "";
	HttpHeader	h[] = {{"X-Ae-D-Ip", "192.0.2.1"}, {"Referer", "https://shop.example/a b"},
	{"X-Injected", "a\r\nX-Evil: 1"}};
	HttpResult *r;
	char	   *reqs;

	receiver_reset();
	c = s2s_http_client_create(&o, err, sizeof(err));
	if (!CHECK(c != NULL, "client created (%s)", err))
		return;
	CHECK(s2s_http_timeout_ms(c) == -1, "an idle client has no timer");
	CHECK(s2s_http_wait_fd(c) >= 0, "the wait descriptor is valid");

	CHECK(submit(c, "GET", "/postback?user_id=u1&event_id=e%201", h, 3, NULL, 0, NULL, 0, 1),
		  "GET submitted");
	CHECK(submit(c, "POST", "/postback", NULL, 0, "user_id=u2&event_id=e2", 0, NULL, 0, 2),
		  "POST submitted");
	CHECK(s2s_http_in_flight(c) == 2, "two requests in flight");
	CHECK(run_until_idle(c, 10000), "both finish");
	CHECK_EQ_INT(got.n, 2, "two results");

	r = result_by_tag(1);
	if (CHECK(r != NULL, "the GET's tag comes back"))
	{
		CHECK_EQ_INT(r->http_status, 200, "GET answered 200");
		CHECK_EQ_INT(r->error_kind, HTTP_ERROR_NONE, "GET without error");
		CHECK_EQ_STR(r->body, "OK", "GET's body kept");
		CHECK(!r->body_truncated, "a short body is not truncated");
		CHECK(r->retry_after == NULL, "no Retry-After without the header");
		CHECK(r->duration_ms > 0 && r->duration_ms < 10000, "duration measured (%.2f ms)",
			  r->duration_ms);
		CHECK(r->started_at > 1.6e9, "started_at is a Unix time");
	}
	r = result_by_tag(2);
	if (CHECK(r != NULL, "the POST's tag comes back"))
		CHECK_EQ_INT(r->http_status, 200, "POST answered 200");

	reqs = control("/__requests", NULL);
	CHECK(strstr(reqs, "\"query\": \"user_id=u1&event_id=e%201\"") != NULL,
		  "the query string arrives as given");
	CHECK(strstr(reqs, "[\"X-Ae-D-Ip\", \"192.0.2.1\"]") != NULL, "a request header arrives");
	CHECK(strstr(reqs, "[\"User-Agent\", \"s2s_tracking/test\"]") != NULL,
		  "the User-Agent is the client's");
	CHECK(strstr(reqs, "\"body\": \"user_id=u2&event_id=e2\"") != NULL, "the POST body arrives");
	CHECK(strstr(reqs, "\"method\": \"POST\"") != NULL, "the POST method arrives");
	CHECK(strstr(reqs, "[\"X-Evil\"") == NULL && strstr(reqs, "a  X-Evil: 1") != NULL,
		  "CR/LF in a header value cannot inject a header");
	CHECK(strstr(reqs, "100-continue") == NULL, "no Expect: 100-continue");
	free(reqs);

	results_clear();
	s2s_http_client_destroy(c);
}

static void
test_caps_and_keepalive(void)
{
	HttpClientOptions o = receiver_client_options();
	HttpClient *c;
	char		err[256];
	int			ok200 = 0;
	long		conns0,
				conns,
				maxf;

	receiver_reset();
	behave("{\"path_prefix\": \"/slow\", \"delay_ms\": 150}");
	o.max_connections = 6;
	o.max_host_connections = 6;
	c = s2s_http_client_create(&o, err, sizeof(err));
	conns0 = stat_value("connections");
	for (int i = 0; i < 36; i++)
		submit(c, "GET", "/slow", NULL, 0, NULL, 0, NULL, 0, 100 + i);
	CHECK_EQ_INT(s2s_http_in_flight(c), 36, "36 requests accepted (queued beyond the cap)");
	CHECK(run_until_idle(c, 20000), "36 slow requests finish");
	for (int i = 0; i < got.n; i++)
		ok200 += got.r[i].http_status == 200;
	CHECK_EQ_INT(ok200, 36, "all 36 answered 200");
	conns = connections_besides_control(conns0);
	CHECK(conns <= 6, "keep-alive: at most 6 connections for 36 requests (saw %ld)", conns);
	maxf = stat_value("max_in_flight");
	CHECK(maxf <= 6, "never more than max_connections (6) at once (saw %ld)", maxf);
	CHECK(maxf >= 4, "requests do run concurrently (saw %ld)", maxf);
	results_clear();

	/* a per-group cap below the global one */
	receiver_reset();
	behave("{\"path_prefix\": \"/slow\", \"delay_ms\": 150}");
	for (int i = 0; i < 10; i++)
		submit(c, "GET", "/slow", NULL, 0, NULL, 0, "endpoint-a", 2, 200 + i);
	CHECK(run_until_idle(c, 20000), "10 requests of a group capped at 2 finish");
	CHECK_EQ_INT(got.n, 10, "10 results");
	maxf = stat_value("max_in_flight");
	CHECK(maxf <= 2, "the group's cap (2) holds (saw %ld)", maxf);
	results_clear();

	/* a slow group does not hold back a fast one */
	receiver_reset();
	behave("{\"path_prefix\": \"/slow\", \"delay_ms\": 1500}");
	for (int i = 0; i < 8; i++)
		submit(c, "GET", "/slow", NULL, 0, NULL, 0, "slow", 4, 300 + i);
	for (int i = 0; i < 5; i++)
		submit(c, "GET", "/fast", NULL, 0, NULL, 0, "fast", 4, 400 + i);
	CHECK(run_until_idle(c, 20000), "slow and fast groups finish");
	{
		double		last_fast = 0,
					first_slow = 1e300;

		for (int i = 0; i < got.n; i++)
		{
			long		tag = (long) got.r[i].tag;

			if (tag >= 400 && got.done_at[i] > last_fast)
				last_fast = got.done_at[i];
			if (tag < 400 && got.done_at[i] < first_slow)
				first_slow = got.done_at[i];
		}
		CHECK(got.n == 13 && last_fast < first_slow,
			  "the fast group's 5 requests all finish before the first slow one");
	}
	results_clear();
	s2s_http_client_destroy(c);
}

static void
test_many(void)
{
	HttpClientOptions o = receiver_client_options();
	HttpClient *c;
	char		err[256];
	int			ok200 = 0;
	long		conns0;
	double		t0;

	receiver_reset();
	o.max_connections = 16;
	o.max_host_connections = 16;
	c = s2s_http_client_create(&o, err, sizeof(err));
	conns0 = stat_value("connections");
	t0 = now_ms();
	for (int i = 0; i < 1000; i++)
		submit(c, "GET", "/postback?n=1", NULL, 0, NULL, 0, NULL, 0, 1000 + i);
	CHECK(run_until_idle(c, 60000), "1000 requests finish");
	for (int i = 0; i < got.n; i++)
		ok200 += got.r[i].http_status == 200;
	CHECK_EQ_INT(ok200, 1000, "all 1000 answered 200");
	conns0 = connections_besides_control(conns0);
	CHECK(conns0 <= 16, "1000 requests over at most 16 connections (saw %ld)", conns0);
	printf("# 1000 requests against the Python receiver in %.0f ms\n", now_ms() - t0);
	results_clear();
	s2s_http_client_destroy(c);
}

static void
test_failures(void)
{
	HttpClientOptions o = receiver_client_options();
	HttpClient *c;
	char		err[256];
	HttpResult *r;
	int			closed_port;
	char		url[128];
	double		t0;

	receiver_reset();
	c = s2s_http_client_create(&o, err, sizeof(err));

	/* hang: the total timeout gives an error, never a success */
	behave("{\"path_prefix\": \"/hang\", \"mode\": \"hang\"}");
	t0 = now_ms();
	submit(c, "GET", "/hang?key=SECRETKEY123", NULL, 0, NULL, 500, NULL, 0, 1);
	CHECK(run_until_idle(c, 10000), "a hanging request ends");
	r = result_by_tag(1);
	if (CHECK(r != NULL, "the hanging request has a result"))
	{
		CHECK_EQ_INT(r->http_status, 0, "hang: no HTTP status");
		CHECK_EQ_INT(r->error_kind, HTTP_ERROR_TIMEOUT, "hang: a timeout");
		CHECK(r->error_code == CURLE_OPERATION_TIMEDOUT, "hang: CURLE_OPERATION_TIMEDOUT");
		CHECK(r->error[0] != '\0' && strstr(r->error, "SECRETKEY123") == NULL &&
			  strstr(r->error, "/hang") == NULL, "timeout text without the URL: %s", r->error);
		CHECK(r->duration_ms >= 400 && r->duration_ms < 5000,
			  "timed out after about 500 ms (%.0f)", r->duration_ms);
	}
	CHECK(now_ms() - t0 < 5000, "the client did not wait beyond the timeout");
	results_clear();

	/* close: the connection drops without an answer (every time, so curl's own
	 * reconnect-once on a reused connection fails too) */
	behave("{\"path_prefix\": \"/close\", \"mode\": \"close\"}");
	submit(c, "GET", "/close?key=SECRETKEY123", NULL, 0, NULL, 0, NULL, 0, 2);
	CHECK(run_until_idle(c, 10000), "a dropped request ends");
	r = result_by_tag(2);
	if (CHECK(r != NULL, "the dropped request has a result"))
	{
		CHECK_EQ_INT(r->http_status, 0, "close: no HTTP status");
		CHECK_EQ_INT(r->error_kind, HTTP_ERROR_NETWORK, "close: a network error");
		CHECK(strstr(r->error, "SECRETKEY123") == NULL, "close: text without the URL: %s",
			  r->error);
	}
	results_clear();

	/* nobody listening */
	{
		int			s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a;
		socklen_t	alen = sizeof(a);

		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		bind(s, (struct sockaddr *) &a, sizeof(a));
		getsockname(s, (struct sockaddr *) &a, &alen);
		closed_port = ntohs(a.sin_port);
		close(s);
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/postback?key=SECRETKEY123", closed_port);
	submit(c, "GET", url, NULL, 0, NULL, 0, NULL, 0, 3);
	CHECK(run_until_idle(c, 10000), "a request to a closed port ends");
	r = result_by_tag(3);
	if (CHECK(r != NULL, "connection refused has a result"))
	{
		CHECK_EQ_INT(r->error_kind, HTTP_ERROR_NETWORK, "refused connection: a network error");
		CHECK(strstr(r->error, "SECRETKEY123") == NULL && strstr(r->error, "postback") == NULL,
			  "refused: text without the URL: %s", r->error);
	}
	results_clear();

	/* statuses and Retry-After */
	behave("{\"path_prefix\": \"/busy\", \"status\": 503, \"retry_after\": \"7\", \"body\": \"try later\"}");
	behave("{\"path_prefix\": \"/gone\", \"status\": 401}");
	submit(c, "GET", "/busy", NULL, 0, NULL, 0, NULL, 0, 4);
	submit(c, "GET", "/gone", NULL, 0, NULL, 0, NULL, 0, 5);
	CHECK(run_until_idle(c, 10000), "503 and 401 end");
	r = result_by_tag(4);
	if (CHECK(r != NULL, "503 has a result"))
	{
		CHECK_EQ_INT(r->http_status, 503, "503 status");
		CHECK_EQ_INT(r->error_kind, HTTP_ERROR_NONE, "503 is an answer, not a transport error");
		CHECK_EQ_STR(r->retry_after, "7", "Retry-After captured");
		CHECK_EQ_STR(r->body, "try later", "503's body kept");
	}
	r = result_by_tag(5);
	if (CHECK(r != NULL, "401 has a result"))
		CHECK_EQ_INT(r->http_status, 401, "401 status");
	results_clear();

	/* a redirect is not followed */
	behave("{\"path_prefix\": \"/moved\", \"status\": 302, \"headers\": {\"Location\": \"/postback\"}}");
	receiver_reset();
	behave("{\"path_prefix\": \"/moved\", \"status\": 302, \"headers\": {\"Location\": \"/postback\"}}");
	submit(c, "GET", "/moved", NULL, 0, NULL, 0, NULL, 0, 6);
	CHECK(run_until_idle(c, 10000), "a redirect ends");
	r = result_by_tag(6);
	CHECK(r && r->http_status == 302, "302 comes back as 302");
	CHECK_EQ_INT(stat_value("requests"), 1, "the redirect was not followed");
	results_clear();

	s2s_http_client_destroy(c);
}

/*
 * A caller held up longer than a request's timeout (the worker waiting for a row lock, or
 * for a synchronous standby at a commit): an answer that arrived meanwhile is the
 * request's result, not a timeout, which would have the delivery sent again. A request
 * that had not gone when its deadline passed is never sent. With the client's own thread
 * the answer is read while the caller is away, and the request goes at once: only the
 * first part applies there.
 */
static void
test_caller_held_up(void)
{
	HttpClientOptions o = receiver_client_options();
	HttpClient *c;
	char		err[256];
	HttpResult *r;
	double		limit;

	receiver_reset();
	c = s2s_http_client_create(&o, err, sizeof(err));

	/* sent, answered after 300 ms, read only 1.5 s later; its timeout is 800 ms */
	behave("{\"path_prefix\": \"/late-read\", \"delay_ms\": 300}");
	submit(c, "GET", "/late-read", NULL, 0, NULL, 800, NULL, 0, 1);
	limit = now_ms() + 5000;
	while (stat_value("requests") < 1 && now_ms() < limit)
	{
		struct pollfd pfd = {s2s_http_wait_fd(c), POLLIN, 0};

		(void) poll(&pfd, 1, 5);
		s2s_http_process(c);
	}
	CHECK_EQ_INT(stat_value("requests"), 1, "the request reached the receiver");
	CHECK(s2s_http_in_flight(c) == 1 && s2s_http_timeout_ms(c) != 0,
		  "its answer was not read yet (it comes after 300 ms)");
	usleep(1500 * 1000);
	CHECK(run_until_idle(c, 10000), "the request read late ends");
	r = result_by_tag(1);
	if (CHECK(r != NULL, "the request read late has a result"))
	{
		CHECK_EQ_INT(r->http_status, 200, "the answer that came in time is the result");
		CHECK(r->error_kind == HTTP_ERROR_NONE, "not a timeout: %s", r->error);
	}
	results_clear();

#ifndef HTTP_TEST_DRIVER
	/* its deadline passed before the caller let it go: ended unsent */
	receiver_reset();
	submit(c, "GET", "/never-sent", NULL, 0, NULL, 300, NULL, 0, 2);
	usleep(800 * 1000);
	CHECK(run_until_idle(c, 10000), "the overdue request ends");
	r = result_by_tag(2);
	if (CHECK(r != NULL, "the overdue request has a result"))
	{
		CHECK_EQ_INT(r->error_kind, HTTP_ERROR_TIMEOUT, "a timeout");
		CHECK(strstr(r->error, "not sent") != NULL, "its text says it was not sent: %s",
			  r->error);
	}
	CHECK_EQ_INT(stat_value("requests"), 0, "the overdue request never reached the receiver");
	results_clear();
#endif

	s2s_http_client_destroy(c);
}

static void
test_big_body(void)
{
	HttpClientOptions o = receiver_client_options();
	HttpClient *c;
	char		err[256];
	HttpResult *r;
	long		rss0,
				rss1;

	receiver_reset();
	behave("{\"path_prefix\": \"/big\", \"mode\": \"big\", \"big_bytes\": 20000000}");
	c = s2s_http_client_create(&o, err, sizeof(err));
	rss0 = rss_kb();
	submit(c, "GET", "/big", NULL, 0, NULL, 0, NULL, 0, 1);
	CHECK(run_until_idle(c, 30000), "a 20 MB answer ends");
	rss1 = rss_kb();
	r = result_by_tag(1);
	if (CHECK(r != NULL, "the 20 MB answer has a result"))
	{
		CHECK_EQ_INT(r->http_status, 200, "20 MB: status 200");
		CHECK_EQ_INT(r->error_kind, HTTP_ERROR_NONE, "20 MB: read to the end without error");
		CHECK_EQ_INT(r->body_len, 4096, "20 MB: 4096 bytes kept");
		CHECK(r->body_truncated, "20 MB: marked truncated");
		CHECK_EQ_INT(strlen(r->body), 4096, "20 MB: the kept body is NUL-terminated");
	}
	CHECK(rss1 - rss0 < 4096, "20 MB answer: resident memory grew by %ld kB (< 4 MB)",
		  rss1 - rss0);
	results_clear();

	/* a zero cap keeps nothing */
	o.max_response_bytes = 0;
	s2s_http_client_set_options(c, &o);
	submit(c, "GET", "/postback", NULL, 0, NULL, 0, NULL, 0, 2);
	CHECK(run_until_idle(c, 10000), "a request with a zero body cap ends");
	r = result_by_tag(2);
	CHECK(r && r->body != NULL && r->body_len == 0 && r->body[0] == '\0' && r->body_truncated,
		  "zero cap: an empty body, marked truncated");
	results_clear();
	s2s_http_client_destroy(c);
}

static void
test_protocols(void)
{
	HttpClientOptions o = receiver_client_options();
	HttpClient *c;
	char		err[256];
	HttpResult *r;
	long		before;

	receiver_reset();
	o.allow_http = false;
	c = s2s_http_client_create(&o, err, sizeof(err));
	before = stat_value("requests");
	submit(c, "GET", "/postback?key=SECRETKEY123", NULL, 0, NULL, 0, NULL, 0, 1);
	submit(c, "GET", "ftp://127.0.0.1/x", NULL, 0, NULL, 0, NULL, 0, 2);
	submit(c, "GET", "file:///etc/passwd", NULL, 0, NULL, 0, NULL, 0, 3);
#ifdef HTTP_TEST_DRIVER
	{
		/* the thread makes the results: ready as soon as it has looked, no round trip */
		struct pollfd pfd = {s2s_http_wait_fd(c), POLLIN, 0};

		(void) poll(&pfd, 1, 2000);
	}
#endif
	CHECK(s2s_http_timeout_ms(c) == 0, "refused requests' results are ready at once");
	CHECK(run_until_idle(c, 10000), "refused requests end");
	for (long tag = 1; tag <= 3; tag++)
	{
		r = result_by_tag(tag);
		CHECK(r && r->http_status == 0 && r->error_kind == HTTP_ERROR_REFUSED,
			  "allow_http off: request %ld refused", tag);
	}
	r = result_by_tag(1);
	CHECK(r && strstr(r->error, "SECRETKEY123") == NULL, "refusal text without the URL: %s",
		  r ? r->error : "");
	CHECK_EQ_INT(stat_value("requests") - before, 0, "nothing reached the receiver");
	results_clear();

	/* allowed again: http goes, other schemes still do not */
	o.allow_http = true;
	s2s_http_client_set_options(c, &o);
	submit(c, "GET", "/postback", NULL, 0, NULL, 0, NULL, 0, 4);
	submit(c, "GET", "ftp://127.0.0.1/x", NULL, 0, NULL, 0, NULL, 0, 5);
	CHECK(run_until_idle(c, 10000), "requests end");
	r = result_by_tag(4);
	CHECK(r && r->http_status == 200, "allow_http on: http:// is sent");
	r = result_by_tag(5);
	CHECK(r && r->error_kind == HTTP_ERROR_REFUSED, "allow_http on: ftp:// still refused");
	results_clear();

	/* https to a plain-HTTP port: a TLS error, not a success */
	{
		char		url[128];

		snprintf(url, sizeof(url), "https://127.0.0.1:%d/postback", receiver_port);
		submit(c, "GET", url, NULL, 0, NULL, 2000, NULL, 0, 6);
		CHECK(run_until_idle(c, 10000), "https to a plain port ends");
		r = result_by_tag(6);
		CHECK(r && r->http_status == 0 && r->error_kind != HTTP_ERROR_NONE,
			  "https to a plain port fails (kind %d: %s)", r ? (int) r->error_kind : -1,
			  r ? r->error : "");
	}
	results_clear();
	s2s_http_client_destroy(c);
}

static void
test_destroy_in_flight(void)
{
	HttpClientOptions o = receiver_client_options();
	HttpClient *c;
	char		err[256];

	receiver_reset();
	behave("{\"path_prefix\": \"/hang\", \"mode\": \"hang\"}");
	o.max_connections = 2;
	c = s2s_http_client_create(&o, err, sizeof(err));
	for (int i = 0; i < 5; i++)
		submit(c, "GET", "/hang", NULL, 0, NULL, 0, NULL, 0, i);
	for (int i = 0; i < 20; i++)
	{
		s2s_http_process(c);
		usleep(10000);
	}
	CHECK_EQ_INT(s2s_http_in_flight(c), 5, "5 requests in flight (2 running, 3 queued)");
	s2s_http_client_destroy(c);
	CHECK(true, "a client destroyed with requests running and queued");
	receiver_reset();
}

/*
 * Where the client may connect (netcheck.c): the receiver is on loopback, refused unless
 * allowed. Checked on the address connected to (a name, "localhost", included), on a
 * kept-alive connection after the allowed networks shrank, and never through a proxy
 * named in the environment (main sets http_proxy and friends to a dead port).
 */
static void
test_networks(void)
{
	HttpClientOptions o = receiver_client_options();
	HttpClient *c;
	char		err[256];
	char		url[128];
	HttpResult *r;

	/* allowed: the requests go through the proxy-free path and succeed */
	receiver_reset();
	c = s2s_http_client_create(&o, err, sizeof(err));
	submit(c, "GET", "/postback", NULL, 0, NULL, 0, NULL, 0, 1);
	CHECK(run_until_idle(c, 10000), "a request to an allowed loopback address ends");
	r = result_by_tag(1);
	CHECK(r && r->http_status == 200 && r->error_kind == HTTP_ERROR_NONE,
		  "allowed loopback: 200, no proxy used although http_proxy is set");
	results_clear();

	/* the same kept-alive connection, after the allowed networks shrank: refused */
	o.n_allowed_networks = 0;
	s2s_http_client_set_options(c, &o);
	receiver_reset();
	submit(c, "GET", "/postback", NULL, 0, NULL, 0, NULL, 0, 2);
	CHECK(run_until_idle(c, 10000), "a request on a kept connection ends");
	r = result_by_tag(2);
	CHECK(r && r->http_status == 0 && r->error_kind == HTTP_ERROR_REFUSED &&
		  strstr(r->error, "127.0.0.1 is a loopback address") != NULL,
		  "a kept-alive connection to a no longer allowed address is not used: %s",
		  r ? r->error : "(no result)");
	CHECK_EQ_INT(stat_value("requests"), 0, "nothing reached the receiver on the kept connection");
	results_clear();
	s2s_http_client_destroy(c);

	/* a new client, nothing allowed: refused before connecting, by address and by name */
	receiver_reset();
	c = s2s_http_client_create(&o, err, sizeof(err));
	submit(c, "GET", "/postback", NULL, 0, NULL, 0, NULL, 0, 3);
	snprintf(url, sizeof(url), "http://localhost:%d/byname", receiver_port);
	submit(c, "GET", url, NULL, 0, NULL, 0, NULL, 0, 4);
	snprintf(url, sizeof(url), "http://[::ffff:127.0.0.1]:%d/mapped", receiver_port);
	submit(c, "GET", url, NULL, 0, NULL, 0, NULL, 0, 5);
	snprintf(url, sizeof(url), "http://2130706433:%d/decimal", receiver_port);
	submit(c, "GET", url, NULL, 0, NULL, 0, NULL, 0, 6);
	CHECK(run_until_idle(c, 10000), "refused requests end");
	for (long tag = 3; tag <= 6; tag++)
	{
		r = result_by_tag(tag);
		CHECK(r && r->http_status == 0 && r->error_kind == HTTP_ERROR_REFUSED &&
			  strstr(r->error, "connection refused: ") == r->error &&
			  strstr(r->error, "is a loopback address") != NULL &&
			  strstr(r->error, "s2s_tracking.allowed_networks") != NULL &&
			  strstr(r->error, "http") == NULL,
			  "request %ld refused with the address and its range, no URL: %s", tag,
			  r ? r->error : "(no result)");
	}
	CHECK_EQ_INT(stat_value("connections"), 1, "no connection reached the receiver (the stats request's own)");
	results_clear();

	/* the deprecated allow_link_local does not allow loopback */
	o.allow_link_local = true;
	s2s_http_client_set_options(c, &o);
	submit(c, "GET", "/postback", NULL, 0, NULL, 0, NULL, 0, 7);
	CHECK(run_until_idle(c, 10000), "a request with allow_link_local ends");
	r = result_by_tag(7);
	CHECK(r && r->error_kind == HTTP_ERROR_REFUSED, "allow_link_local does not allow loopback");
	results_clear();

	/* listed again: sent */
	o = receiver_client_options();
	s2s_http_client_set_options(c, &o);
	receiver_reset();
	submit(c, "GET", "/postback", NULL, 0, NULL, 0, NULL, 0, 8);
	snprintf(url, sizeof(url), "http://localhost:%d/byname", receiver_port);
	submit(c, "GET", url, NULL, 0, NULL, 0, NULL, 0, 9);
	CHECK(run_until_idle(c, 10000), "allowed requests end");
	r = result_by_tag(8);
	CHECK(r && r->http_status == 200, "127.0.0.0/8 listed: sent");
	r = result_by_tag(9);
	CHECK(r && r->http_status == 200, "localhost with 127.0.0.0/8 and ::1/128 listed: sent");
	results_clear();
	s2s_http_client_destroy(c);
}

/*
 * A connection the peer closed before the request went out: libcurl could not read its
 * address, so the pre-request check cannot vouch for it. Nothing may be sent on it, and
 * it is a network failure (retried), not an address refused (which pauses the endpoint:
 * a receiver going down for a moment paused it for good, TAP 050 in CI).
 */
static void
test_peer_address_unreadable(void)
{
	HttpClientOptions o = receiver_client_options();
	HttpClient *c;
	char		err[256];
	HttpResult *r;

	receiver_reset();
	c = s2s_http_client_create(&o, err, sizeof(err));
	peername_failures = 0;
	peer_unreadable = 1;
	submit(c, "GET", "/postback", NULL, 0, NULL, 0, NULL, 0, 1);
	CHECK(run_until_idle(c, 10000), "a request on a connection whose peer cannot be read ends");
	peer_unreadable = 0;
	r = result_by_tag(1);
	CHECK(r && r->error_kind != HTTP_ERROR_REFUSED,
		  "an unreadable peer address is not a refusal: %s", r ? r->error : "(no result)");
	/* by what libcurl met, never by the result: a request sent there must fail this test */
	if (peername_failures > 0)
	{
		CHECK(r && r->http_status == 0 && r->error_kind == HTTP_ERROR_NETWORK &&
			  strstr(r->error, "closed before the request was sent") != NULL,
			  "it fails as a network error, which is retried: %s", r ? r->error : "(no result)");
		CHECK_EQ_INT(stat_value("requests"), 0, "nothing was sent on that connection");
	}
	else
		CHECK(r && r->http_status == 200,
			  "this libcurl does not read the peer's address with getpeername(): sent");
#if LIBCURL_VERSION_NUM < 0x080000
	/* 7.x reads it so (7.88 here): the case above must have been met, not skipped */
	CHECK(peername_failures > 0, "libcurl %s read the peer's address with the failing getpeername()",
		  LIBCURL_VERSION);
#endif
	results_clear();

	/* the next request, the address readable again, goes through */
	submit(c, "GET", "/postback", NULL, 0, NULL, 0, NULL, 0, 2);
	CHECK(run_until_idle(c, 10000), "the next request ends");
	r = result_by_tag(2);
	CHECK(r && r->http_status == 200, "the next request is sent: %s", r ? r->error : "(no result)");
	results_clear();
	s2s_http_client_destroy(c);
}

#ifdef HTTP_TEST_DRIVER
/*
 * The threads of this process named "s2s_http" (the driver's), their IDs in tids (at
 * most max). By name, not by count: the control requests' own libcurl may start threads.
 * (Resolver threads started from the driver's thread would share its name: every URL
 * here is an IP literal, which starts none.)
 */
static int
driver_threads(long *tids, int max)
{
	DIR		   *dir = opendir("/proc/self/task");
	struct dirent *e;
	int			n = 0;

	if (dir == NULL)
		return -1;
	while ((e = readdir(dir)) != NULL)
	{
		char		path[64];
		char		comm[32] = "";
		FILE	   *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(comm, sizeof(comm), f) && strcmp(comm, "s2s_http\n") == 0 && n < max)
			tids[n++] = strtol(e->d_name, NULL, 10);
		fclose(f);
	}
	closedir(dir);
	return n;
}

/* The blocked-signal mask of one thread (SigBlk in its status), or 0. */
static unsigned long long
blocked_signals(long tid)
{
	char		path[64];
	char		line[256];
	unsigned long long mask = 0;
	FILE	   *f;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/status", tid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SigBlk: %llx", &mask) == 1)
			break;
	fclose(f);
	return mask;
}

/*
 * A caller that reads fewer results per pass than complete, and submits one for each
 * it reads (the worker at its limit, batch_size below max_concurrency): the outbox
 * holds only the results not yet read, never more than are in flight.
 */
static void
test_driver_outbox_bounded(void)
{
	HttpClientOptions o = receiver_client_options();
	HttpDriver *d;
	char		err[256];
	int			submitted = 0;
	int			read = 0;
	double		deadline = now_ms() + 60000;
	HttpResult	r;

	receiver_reset();
	o.max_connections = 32;
	o.max_host_connections = 32;
	d = s2s_http_driver_start(&o, true, err, sizeof(err));
	for (; submitted < 32; submitted++)
		submit(d, "GET", "/postback", NULL, 0, NULL, 0, NULL, 0, 5000 + submitted);
	while (read < 1500 && now_ms() < deadline)
	{
		struct pollfd pfd = {s2s_http_driver_wait_fd(d), POLLIN, 0};

		/*
		 * As the worker waits: not at all while results are waiting. Each pass takes a
		 * few milliseconds, as a busy worker's does, so that results keep arriving
		 * while some wait: the outbox is then never empty.
		 */
		usleep(3000);
		(void) poll(&pfd, 1, s2s_http_driver_timeout_ms(d) == 0 ? 0 : 100);
		s2s_http_driver_process(d);
		/* one result per pass: the rest wait in the outbox */
		if (s2s_http_driver_next_result(d, &r))
		{
			s2s_http_result_release(&r);
			read++;
			if (submitted < 1500 &&
				submit(d, "GET", "/postback", NULL, 0, NULL, 0, NULL, 0, 5000 + submitted))
				submitted++;
		}
	}
	CHECK_EQ_INT(read, 1500, "1500 results read one per pass, 32 in flight");
	CHECK(s2s_http_driver_outbox_peak(d) <= 32,
		  "the outbox never held more than were in flight (at most %d)",
		  s2s_http_driver_outbox_peak(d));
	s2s_http_driver_stop(d);
}

/*
 * What only the thread has: it exists while the driver runs and is gone once stopped,
 * even with requests hanging; it blocks every signal PostgreSQL handles, so that their
 * handlers run in the main thread only, whose own mask it leaves exactly as it was; an
 * invalid request is refused by the submit call itself, not later as a result.
 */
static void
test_driver_thread(void)
{
	HttpClientOptions o = receiver_client_options();
	HttpDriver *d;
	char		err[256];
	long		tids[16];
	int			before = driver_threads(tids, 16);
	long		other = 0;
	int			handled[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM,
	SIGCHLD, SIGPIPE, SIGURG};
	unsigned long long mask;
	unsigned long long main_before;
	bool		all_blocked = true;
	sigset_t	urg;
	HttpHeader bad = {"Bad Name", "x"};
	HttpRequest r;
	double		t0;

	/* as PostgreSQL's latch does: SIGURG blocked in the main thread, read by signalfd */
	sigemptyset(&urg);
	sigaddset(&urg, SIGURG);
	sigprocmask(SIG_BLOCK, &urg, NULL);
	main_before = blocked_signals(getpid());

	receiver_reset();
	d = s2s_http_driver_start(&o, true, err, sizeof(err));
	CHECK(d != NULL && s2s_http_driver_threaded(d), "the driver starts with a thread");
	CHECK_EQ_INT(before, 0, "no thread named s2s_http before the driver starts");
	CHECK_EQ_INT(driver_threads(tids, 16), 1, "one while it runs");
	other = tids[0];
	mask = blocked_signals(other);
	for (int i = 0; i < (int) (sizeof(handled) / sizeof(handled[0])); i++)
		if (!(mask & (1ULL << (handled[i] - 1))))
			all_blocked = false;
	CHECK(other != 0 && all_blocked,
		  "the HTTP thread blocks every signal PostgreSQL handles (SigBlk %llx)", mask);
	CHECK(blocked_signals(getpid()) == main_before &&
		  (main_before & (1ULL << (SIGURG - 1))) != 0,
		  "the main thread's own signal mask is left exactly as it was (SigBlk %llx)",
		  blocked_signals(getpid()));

	memset(&r, 0, sizeof(r));
	r.method = "GET";
	r.url = base_url;
	r.headers = &bad;
	r.nheaders = 1;
	err[0] = '\0';
	CHECK(!s2s_http_driver_submit(d, &r, err, sizeof(err)) && strstr(err, "token") != NULL,
		  "a header name that is not a token is refused by the submit call (%s)", err);
	CHECK_EQ_INT(s2s_http_driver_in_flight(d), 0, "and is not counted in flight");

	behave("{\"path_prefix\": \"/hang\", \"mode\": \"hang\"}");
	for (int i = 0; i < 20; i++)
		submit(d, "GET", "/hang", NULL, 0, NULL, 0, NULL, 0, i);
	usleep(200000);
	t0 = now_ms();
	s2s_http_driver_stop(d);
	CHECK(now_ms() - t0 < 500, "stopped with 20 requests hanging, in %.0f ms", now_ms() - t0);
	CHECK_EQ_INT(driver_threads(tids, 16), 0, "and the thread is gone");
	CHECK(blocked_signals(getpid()) == main_before, "the main thread's mask is still the same");
	sigprocmask(SIG_UNBLOCK, &urg, NULL);
	receiver_reset();
}
#endif

int
main(int argc, char **argv)
{
	if (argc < 2)
	{
		fprintf(stderr, "usage: http_test path/to/receiver.py\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	receiver_start(argv[1]);

	/*
	 * A proxy in the environment must never be used (the address checked must be the
	 * endpoint's): every test below would fail through this dead one. The control
	 * requests (plain libcurl) are told not to use it.
	 */
	setenv("http_proxy", "http://127.0.0.1:9", 1);
	setenv("HTTPS_PROXY", "http://127.0.0.1:9", 1);
	setenv("ALL_PROXY", "http://127.0.0.1:9", 1);

	test_basic();
	test_caps_and_keepalive();
	test_many();
	test_failures();
	test_caller_held_up();
	test_big_body();
	test_protocols();
	test_destroy_in_flight();
	test_networks();
	test_peer_address_unreadable();
#ifdef HTTP_TEST_DRIVER
	test_driver_outbox_bounded();
	test_driver_thread();
#endif

	receiver_stop();
	return unit_done(TEST_NAME);
}
