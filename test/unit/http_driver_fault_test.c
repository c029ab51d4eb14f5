/*
 * http_driver_fault_test.c
 *		The HTTP driver (src/http_driver.c) when memory, its thread or its descriptors
 *		cannot be had: what http_driver.h and http.h promise then, with the failures made
 *		by fault.c, against the test receiver on 127.0.0.1 (receiver.c).
 *
 *	  http_driver_fault_test path/to/receiver.py
 *
 * - s2s_http_driver_start when pthread_create, an eventfd, the driver's or the client's
 *   allocation fails: NULL with the reason, and no thread, descriptor or block left
 *   behind, the caller's signal mask as it was; without a thread (the worker's fallback)
 *   it starts, and sends, without calling pthread_create;
 * - s2s_http_driver_set_options out of memory: false, requests still go with the old
 *   options, and the next call that succeeds applies the new ones;
 * - a request the thread's client cannot take comes back as a result: out of memory,
 *   with its tag and a wall-clock start time, nothing sent;
 * - the thread without room for results, or an outbox that cannot grow: nothing is sent
 *   in the first case, nothing is lost in either, everything comes back once memory is;
 * - the caller's inbox cannot grow: the submit call fails, nothing is counted or sent;
 * - each allocation of the driver and the client in a whole run (start, new options, four
 *   requests, stop) failed in turn: every request accepted comes back exactly once, none
 *   refused comes back, and nothing is left behind.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "unit.h"
#include "http_driver.h"
#include "fault.h"
#include "receiver.h"

#define MAX_RESULTS 64

/* The text of a result for a request the thread's client could not take. */
#define OOM_ERROR "out of memory: request not sent"

static struct
{
	int			n;
	HttpResult	r[MAX_RESULTS];
}			got;

static double
wall_s(void)
{
	struct timeval now;

	gettimeofday(&now, NULL);
	return now.tv_sec + now.tv_usec / 1e6;
}

/* Entries of a /proc directory: the process's descriptors, or its threads. */
static int
entries(const char *path)
{
	DIR		   *dir = opendir(path);
	struct dirent *e;
	int			n = 0;

	if (dir == NULL)
		return -1;
	while ((e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

#define DESCRIPTORS() entries("/proc/self/fd")

/*
 * The process's threads, once no more than "expected" or after 1 s: pthread_join returns
 * when the kernel clears the thread's id, a little before it takes the thread out of
 * /proc/self/task, so a count taken at once can still see a joined thread.
 */
static int
threads_settled(int expected)
{
	int			n = entries("/proc/self/task");

	for (int i = 0; i < 1000 && n > expected; i++)
	{
		usleep(1000);
		n = entries("/proc/self/task");
	}
	return n;
}

#define THREADS() threads_settled(tasks)

static bool
same_mask(const sigset_t *a, const sigset_t *b)
{
	for (int s = 1; s < NSIG; s++)
		if (sigismember(a, s) != sigismember(b, s))
			return false;
	return true;
}

static HttpDriver *
start(bool own_thread, char *err, size_t errlen)
{
	HttpClientOptions o = receiver_client_options();

	err[0] = '\0';
	return s2s_http_driver_start(&o, own_thread, err, errlen);
}

/* A POST with a header and a body (every allocation of a request), to the receiver. */
static bool
submit(HttpDriver *d, const char *group, long tag, char *err, size_t errlen)
{
	HttpRequest r;
	HttpHeader	h = {"X-Test", "fault"};
	char		url[128];

	snprintf(url, sizeof(url), "%s/postback?tag=%ld", base_url, tag);
	memset(&r, 0, sizeof(r));
	r.method = "POST";
	r.url = url;
	r.headers = &h;
	r.nheaders = 1;
	r.body = "a=1";
	r.body_len = 3;
	r.group = group;
	r.tag = (void *) tag;
	err[0] = '\0';
	return s2s_http_driver_submit(d, &r, err, errlen);
}

/*
 * Drives the driver as the worker does, reading its results, until none is in flight
 * (true) or limit_ms has passed (false).
 */
static bool
drive(HttpDriver *d, double limit_ms)
{
	double		deadline = now_ms() + limit_ms;

	for (;;)
	{
		struct pollfd pfd = {s2s_http_driver_wait_fd(d), POLLIN, 0};
		long		t = s2s_http_driver_timeout_ms(d);
		double		left = deadline - now_ms();

		if (s2s_http_driver_in_flight(d) == 0)
			return true;
		if (left <= 0)
			return false;
		if (t < 0 || t > 50)
			t = 50;
		if (t > left)
			t = (long) left + 1;
		(void) poll(&pfd, 1, (int) t);
		s2s_http_driver_process(d);
		while (got.n < MAX_RESULTS && s2s_http_driver_next_result(d, &got.r[got.n]))
			got.n++;
	}
}

static int
times_back(long tag)
{
	int			n = 0;

	for (int i = 0; i < got.n; i++)
		n += (long) got.r[i].tag == tag;
	return n;
}

static HttpResult *
result_by_tag(long tag)
{
	for (int i = 0; i < got.n; i++)
		if ((long) got.r[i].tag == tag)
			return &got.r[i];
	return NULL;
}

static void
results_clear(void)
{
	for (int i = 0; i < got.n; i++)
		s2s_http_result_release(&got.r[i]);
	got.n = 0;
}

/* Waits (bounded) until the receiver has had n requests; how many it had. */
static long
wait_requests(long n, double limit_ms)
{
	double		deadline = now_ms() + limit_ms;
	long		seen;

	while ((seen = stat_value("requests")) < n && now_ms() < deadline)
		usleep(20000);
	return seen;
}

/* ---- the tests ---- */

static void
test_start_failures(void)
{
	char		err[256];
	int			fds = DESCRIPTORS();
	int			tasks = threads_settled(1);	/* the main thread, once any joined one has gone */
	long		live = fault_live_blocks();
	int			creates;
	sigset_t	before;
	sigset_t	after;
	HttpDriver *d;

	/* a process or thread limit */
	pthread_sigmask(SIG_SETMASK, NULL, &before);
	fault_arm(FAULT_THREAD_CREATE, FAULT_ANY_THREAD, 1, -1);
	d = start(true, err, sizeof(err));
	pthread_sigmask(SIG_SETMASK, NULL, &after);
	CHECK(d == NULL && fault_injected() == 1,
		  "pthread_create fails: s2s_http_driver_start returns NULL");
	CHECK(strstr(err, "could not start the HTTP thread: ") == err &&
		  strstr(err, strerror(EAGAIN)) != NULL, "with the reason: %s", err);
	CHECK_EQ_INT(THREADS(), tasks, "no thread left");
	CHECK_EQ_INT(DESCRIPTORS(), fds, "no descriptor left (its eventfds and epoll, the client's)");
	CHECK_EQ_INT(fault_live_blocks(), live, "no block left (the driver's, the client's)");
	CHECK(same_mask(&before, &after), "the caller's signal mask is as it was");

	/* what the worker does then, pthread_create still failing */
	creates = fault_calls(FAULT_THREAD_CREATE);
	d = start(false, err, sizeof(err));
	CHECK(d != NULL && !s2s_http_driver_threaded(d),
		  "the worker's fallback: the driver starts without a thread");
	if (d != NULL)
	{
		receiver_reset();
		submit(d, NULL, 1, err, sizeof(err));
		drive(d, 10000);
		CHECK(got.n == 1 && got.r[0].http_status == 200, "and sends: 200 (%s)",
			  got.n == 1 ? got.r[0].error : "no result");
		results_clear();
		s2s_http_driver_stop(d);
	}
	CHECK_EQ_INT(fault_calls(FAULT_THREAD_CREATE) - creates, 0, "without calling pthread_create");
	fault_disarm();

	/* the second eventfd: the first is open, and must be closed */
	creates = fault_calls(FAULT_THREAD_CREATE);
	fault_arm(FAULT_EVENTFD, FAULT_ANY_THREAD, 2, 1);
	d = start(true, err, sizeof(err));
	CHECK(d == NULL && fault_injected() == 1, "the second eventfd fails: NULL");
	CHECK(strstr(err, "could not create the HTTP thread's descriptors: ") == err &&
		  strstr(err, strerror(EMFILE)) != NULL, "with the reason: %s", err);
	CHECK_EQ_INT(DESCRIPTORS(), fds, "no descriptor left (the first eventfd, the client's epoll)");
	CHECK_EQ_INT(fault_live_blocks(), live, "no block left");
	CHECK_EQ_INT(fault_calls(FAULT_THREAD_CREATE) - creates, 0, "no thread was started");
	fault_disarm();

	fault_arm(FAULT_DRIVER_CALLOC, FAULT_CALLER_THREAD, 1, 1);
	d = start(true, err, sizeof(err));
	CHECK(d == NULL && fault_injected() == 1 && strcmp(err, "out of memory") == 0,
		  "the driver cannot be allocated: NULL, \"%s\"", err);
	fault_arm(FAULT_CLIENT_ALLOC, FAULT_CALLER_THREAD, 1, 1);
	d = start(true, err, sizeof(err));
	CHECK(d == NULL && fault_injected() == 1 && strcmp(err, "out of memory") == 0,
		  "the client cannot be allocated: NULL, \"%s\"", err);
	CHECK(DESCRIPTORS() == fds && fault_live_blocks() == live,
		  "nothing left by either (%d descriptors, %ld blocks more)",
		  DESCRIPTORS() - fds, fault_live_blocks() - live);
	fault_disarm();

	/* nothing of the failures stays */
	d = start(true, err, sizeof(err));
	CHECK(d != NULL && s2s_http_driver_threaded(d), "then it starts with its thread");
	if (d != NULL)
	{
		submit(d, NULL, 2, err, sizeof(err));
		drive(d, 10000);
		CHECK(got.n == 1 && got.r[0].http_status == 200, "and sends: 200 (%s)",
			  got.n == 1 ? got.r[0].error : "no result");
		results_clear();
		s2s_http_driver_stop(d);
	}
	CHECK(DESCRIPTORS() == fds && THREADS() == tasks && fault_live_blocks() == live,
		  "and leaves nothing once stopped (%d descriptors, %d threads, %ld blocks more)",
		  DESCRIPTORS() - fds, THREADS() - tasks, fault_live_blocks() - live);
}

static void
test_set_options(void)
{
	HttpClientOptions narrow = receiver_client_options();
	char		err[256];
	long		live = fault_live_blocks();
	HttpDriver *d;
	HttpResult *r;
	bool		ok;

	/* new options that would refuse the receiver's loopback address */
	narrow.n_allowed_networks = 0;
	receiver_reset();
	d = start(true, err, sizeof(err));
	if (!CHECK(d != NULL, "driver started (%s)", err))
		return;
	fault_arm(FAULT_DRIVER_MALLOC, FAULT_CALLER_THREAD, 1, 1);
	ok = s2s_http_driver_set_options(d, &narrow);
	CHECK(!ok && fault_injected() == 1,
		  "s2s_http_driver_set_options cannot copy the options: false");
	fault_disarm();
	submit(d, NULL, 1, err, sizeof(err));
	drive(d, 10000);
	r = result_by_tag(1);
	CHECK(r && r->http_status == 200, "the old options stay: loopback still allowed, sent (%s)",
		  r ? r->error : "no result");
	results_clear();

	CHECK(s2s_http_driver_set_options(d, &narrow), "tried again with memory: true");
	submit(d, NULL, 2, err, sizeof(err));
	drive(d, 10000);
	r = result_by_tag(2);
	CHECK(r && r->error_kind == HTTP_ERROR_REFUSED, "and the new options apply: refused (%s)",
		  r ? r->error : "no result");
	CHECK_EQ_INT(stat_value("requests"), 1, "only the first request reached the receiver");
	results_clear();
	s2s_http_driver_stop(d);
	CHECK_EQ_INT(fault_live_blocks(), live, "no block left");
}

/*
 * The thread's client cannot take a request (a new group cannot be allocated): the
 * request comes back as a result, what the client answers when libcurl cannot start a
 * transfer, nothing sent. And when the result's empty body cannot be allocated either.
 */
static void
test_result_out_of_memory(void)
{
	char		err[256];
	char		group[32];
	long		live = fault_live_blocks();
	HttpDriver *d;
	double		t0;
	double		t1;
	int			injected;
	bool		once = true;
	bool		as_said = true;
	bool		in_time = true;
	bool		empty = true;
	HttpResult *r;

	d = start(true, err, sizeof(err));
	if (!CHECK(d != NULL, "driver started (%s)", err))
		return;
	/* one request first, so that the thread's arrays are there before the failures */
	submit(d, NULL, 1, err, sizeof(err));
	CHECK(drive(d, 10000) && got.n == 1 && got.r[0].http_status == 200, "a first request: 200");
	results_clear();
	receiver_reset();

	t0 = wall_s();
	fault_arm(FAULT_CLIENT_ALLOC, FAULT_DRIVER_THREAD, 1, -1);
	for (long tag = 10; tag < 15; tag++)
	{
		snprintf(group, sizeof(group), "oom-%ld", tag);
		CHECK(submit(d, group, tag, err, sizeof(err)), "request %ld accepted (%s)", tag, err);
	}
	CHECK(drive(d, 10000), "the five requests end");
	t1 = wall_s();
	injected = fault_injected();
	fault_disarm();
	CHECK(injected >= 5, "the thread's client could not take them (%d allocations failed)",
		  injected);
	CHECK_EQ_INT(got.n, 5, "five results");
	for (long tag = 10; tag < 15; tag++)
	{
		r = result_by_tag(tag);
		once = once && times_back(tag) == 1;
		as_said = as_said && r && r->http_status == 0 && r->error_kind == HTTP_ERROR_INTERNAL &&
			strcmp(r->error, OOM_ERROR) == 0 && r->retry_after == NULL;
		in_time = in_time && r && r->started_at >= t0 - 1 && r->started_at <= t1 + 1 &&
			r->duration_ms == 0;
		empty = empty && r && r->body != NULL && r->body[0] == '\0' && r->body_len == 0;
	}
	CHECK(once, "each tag comes back exactly once");
	CHECK(as_said, "as an internal error: \"%s\"", OOM_ERROR);
	r = result_by_tag(10);
	CHECK(in_time, "started when the thread answered, by the wall clock (%.3f, between %.3f and %.3f)",
		  r ? r->started_at : 0.0, t0, t1);
	CHECK(empty, "with an empty body");
	CHECK_EQ_INT(stat_value("requests"), 0, "nothing was sent");
	results_clear();

	/* not even the empty body can be allocated: the result comes back without one */
	fault_arm(FAULT_CLIENT_ALLOC | FAULT_DRIVER_CALLOC, FAULT_DRIVER_THREAD, 1, -1);
	for (long tag = 20; tag < 23; tag++)
	{
		snprintf(group, sizeof(group), "oom-%ld", tag);
		submit(d, group, tag, err, sizeof(err));
	}
	drive(d, 10000);
	fault_disarm();
	once = as_said = empty = true;
	for (long tag = 20; tag < 23; tag++)
	{
		r = result_by_tag(tag);
		once = once && times_back(tag) == 1;
		as_said = as_said && r && r->error_kind == HTTP_ERROR_INTERNAL &&
			strcmp(r->error, OOM_ERROR) == 0;
		empty = empty && r && r->body == NULL && r->body_len == 0;
	}
	CHECK(got.n == 3 && once && as_said,
		  "the body cannot be allocated either: each of the three still comes back once");
	CHECK(empty, "without a body, its length 0 (as the client's own results then)");
	results_clear();

	/* memory is back: the same group's next request goes */
	submit(d, "oom-10", 30, err, sizeof(err));
	drive(d, 10000);
	r = result_by_tag(30);
	CHECK(r && r->http_status == 200, "with memory back, a request of the same group is sent (%s)",
		  r ? r->error : "no result");
	results_clear();
	s2s_http_driver_stop(d);
	CHECK_EQ_INT(fault_live_blocks(), live, "no block left");
}

/*
 * The thread cannot make room for the results of the requests it takes (done_reserve):
 * it must not start them (their results would have nowhere to go), and it keeps them
 * until it can.
 */
static void
test_thread_without_room(void)
{
	char		err[256];
	long		live = fault_live_blocks();
	HttpDriver *d;
	bool		once = true;
	int			ok200 = 0;

	receiver_reset();
	/* armed before the thread exists: its first array of results cannot be had */
	fault_arm(FAULT_DRIVER_REALLOC, FAULT_DRIVER_THREAD, 1, -1);
	d = start(true, err, sizeof(err));
	if (!CHECK(d != NULL, "driver started (%s)", err))
		return;
	for (long tag = 1; tag <= 10; tag++)
		submit(d, NULL, tag, err, sizeof(err));
	CHECK(!drive(d, 300) && got.n == 0 && s2s_http_driver_in_flight(d) == 10,
		  "no room for results: nothing comes back for 300 ms, 10 in flight");
	CHECK(fault_injected() > 0, "the thread tried (%d times)", fault_injected());
	CHECK_EQ_INT(stat_value("requests"), 0, "and sent nothing meanwhile");
	fault_disarm();
	CHECK(drive(d, 10000), "memory back: the 10 requests end");
	for (long tag = 1; tag <= 10; tag++)
		once = once && times_back(tag) == 1;
	for (int i = 0; i < got.n; i++)
		ok200 += got.r[i].http_status == 200;
	CHECK(once && ok200 == 10, "each comes back exactly once, 200 (%d results, %d of them 200)",
		  got.n, ok200);
	CHECK_EQ_INT(stat_value("requests"), 10, "each sent once");
	results_clear();
	s2s_http_driver_stop(d);
	CHECK_EQ_INT(fault_live_blocks(), live, "no block left");
}

/*
 * The outbox cannot grow (hand_over): the requests are sent, and the thread keeps their
 * results until it can hand them over.
 */
static void
test_outbox_cannot_grow(void)
{
	char		err[256];
	long		live = fault_live_blocks();
	HttpDriver *d;
	bool		once = true;
	int			ok200 = 0;

	receiver_reset();
	/* the thread's first array (its results) is had; the second, the outbox, cannot be */
	fault_arm(FAULT_DRIVER_REALLOC, FAULT_DRIVER_THREAD, 2, -1);
	d = start(true, err, sizeof(err));
	if (!CHECK(d != NULL, "driver started (%s)", err))
		return;
	for (long tag = 1; tag <= 10; tag++)
		submit(d, NULL, tag, err, sizeof(err));
	CHECK_EQ_INT(wait_requests(10, 10000), 10, "the 10 requests are sent");
	CHECK(!drive(d, 300) && got.n == 0 && s2s_http_driver_in_flight(d) == 10 &&
		  s2s_http_driver_timeout_ms(d) == -1,
		  "the outbox cannot grow: no result comes back for 300 ms, none said to wait");
	CHECK(fault_injected() > 0, "the thread tried (%d times)", fault_injected());
	fault_disarm();
	CHECK(drive(d, 10000), "memory back: the 10 results come back");
	for (long tag = 1; tag <= 10; tag++)
		once = once && times_back(tag) == 1;
	for (int i = 0; i < got.n; i++)
		ok200 += got.r[i].http_status == 200;
	CHECK(once && ok200 == 10, "each exactly once, 200 (%d results, %d of them 200)", got.n,
		  ok200);
	CHECK_EQ_INT(stat_value("requests"), 10, "nothing was sent again");
	results_clear();
	s2s_http_driver_stop(d);
	CHECK_EQ_INT(fault_live_blocks(), live, "no block left");
}

/* The caller's inbox cannot grow: the submit call says so, and the request is dropped. */
static void
test_inbox_cannot_grow(void)
{
	char		err[256];
	long		live = fault_live_blocks();
	HttpDriver *d;
	bool		ok;

	receiver_reset();
	d = start(true, err, sizeof(err));
	if (!CHECK(d != NULL, "driver started (%s)", err))
		return;
	fault_arm(FAULT_DRIVER_REALLOC, FAULT_CALLER_THREAD, 1, 1);
	ok = submit(d, NULL, 1, err, sizeof(err));
	CHECK(!ok && fault_injected() == 1 && strcmp(err, "out of memory") == 0,
		  "the inbox cannot grow: the submit call fails (%s)", err);
	CHECK_EQ_INT(s2s_http_driver_in_flight(d), 0, "the request is not counted in flight");
	fault_disarm();
	CHECK(submit(d, NULL, 2, err, sizeof(err)), "the next submit succeeds");
	CHECK(drive(d, 10000) && got.n == 1 && times_back(2) == 1 && times_back(1) == 0,
		  "only the accepted request comes back");
	CHECK_EQ_INT(stat_value("requests"), 1, "only it is sent");
	results_clear();
	s2s_http_driver_stop(d);
	CHECK_EQ_INT(fault_live_blocks(), live, "no block left (the refused request freed)");
}

/* A broken promise in test_every_allocation: said, and counted. */
static int	broken;

static void __attribute__((format(printf, 1, 2)))
promise_broken(const char *fmt, ...)
{
	va_list		ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	broken++;
}

/*
 * Each allocation the driver and the client make in a run, failed in turn (the Nth in
 * run N), until a run makes fewer than N: a start, new options (tried again while they
 * fail, as the worker does), four requests in two new groups, each driven to its end
 * before the next (so that run N's Nth allocation is much the same call each time).
 */
static void
test_every_allocation(void)
{
	const char *groups[] = {NULL, NULL, "sweep-a", NULL, "sweep-b"};
	int			fds = DESCRIPTORS();
	int			tasks = threads_settled(1);	/* the main thread, once any joined one has gone */
	long		live = fault_live_blocks();
	int			n;
	int			start_failed = 0;
	int			options_failed = 0;
	int			submit_failed = 0;
	int			oom_results = 0;
	int			error_results = 0;
	bool		ended = false;

	for (n = 1; n <= 300 && !ended; n++)
	{
		HttpClientOptions o = receiver_client_options();
		bool		accepted[5] = {false};
		char		err[256];
		HttpDriver *d;
		double		t0 = wall_s();

		receiver_reset();
		fault_arm(FAULT_ALLOC, FAULT_ANY_THREAD, n, 1);
		err[0] = '\0';
		d = s2s_http_driver_start(&o, true, err, sizeof(err));
		if (d == NULL)
		{
			start_failed++;
			if (err[0] == '\0')
				promise_broken("allocation %d: the start failed without a reason", n);
		}
		else
		{
			o.max_connections = 4;
			for (int i = 0; i < 3 && !s2s_http_driver_set_options(d, &o); i++)
				options_failed++;
			for (long tag = 1; tag <= 4; tag++)
			{
				accepted[tag] = submit(d, groups[tag], tag, err, sizeof(err));
				submit_failed += !accepted[tag];
				if (!drive(d, 10000))
					promise_broken("allocation %d: request %ld did not end", n, tag);
			}
			for (long tag = 1; tag <= 4; tag++)
				if (times_back(tag) != (accepted[tag] ? 1 : 0))
					promise_broken("allocation %d: request %ld (%s) came back %d times", n, tag,
								   accepted[tag] ? "accepted" : "refused", times_back(tag));
			for (int i = 0; i < got.n; i++)
			{
				HttpResult *r = &got.r[i];

				if (r->error_kind == HTTP_ERROR_INTERNAL && strcmp(r->error, OOM_ERROR) == 0)
				{
					oom_results++;
					if (r->started_at < t0 - 1 || r->started_at > wall_s() + 1)
						promise_broken("allocation %d: an out-of-memory result started at %.3f",
									   n, r->started_at);
				}
				else if (r->error_kind != HTTP_ERROR_NONE)
					error_results++;
				else if (r->http_status != 200)
					promise_broken("allocation %d: status %ld without an error", n,
								   r->http_status);
				if (r->body == NULL && r->body_len != 0)
					promise_broken("allocation %d: no body, but a length", n);
			}
			results_clear();
			s2s_http_driver_stop(d);
		}
		/* fewer than n allocations in this run: each one has failed in a run */
		ended = fault_injected() == 0;
		fault_disarm();
		if (DESCRIPTORS() != fds || THREADS() != tasks || fault_live_blocks() != live)
		{
			promise_broken("allocation %d: left %d descriptors, %d threads, %ld blocks", n,
						   DESCRIPTORS() - fds, THREADS() - tasks, fault_live_blocks() - live);
			fds = DESCRIPTORS();
			tasks = THREADS();
			live = fault_live_blocks();
		}
	}
	printf("# %d runs: the start failed in %d, new options %d times, a submit %d times; "
		   "%d out-of-memory results, %d other failed results\n", n - 1, start_failed,
		   options_failed, submit_failed, oom_results, error_results);
	CHECK(ended, "each allocation of a run failed in turn (%d runs)", n - 1);
	CHECK_EQ_INT(broken, 0, "every accepted request came back exactly once, none refused did, "
				 "every failure said so, and nothing was left behind");
	CHECK(start_failed > 0 && options_failed > 0 && submit_failed > 0 && oom_results > 0,
		  "the runs met every way out: a start, new options and a submit refused, "
		  "a request answered out of memory");
}

int
main(int argc, char **argv)
{
	if (argc < 2)
	{
		fprintf(stderr, "usage: http_driver_fault_test path/to/receiver.py\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	receiver_start(argv[1]);

	test_start_failures();
	test_set_options();
	test_result_out_of_memory();
	test_thread_without_room();
	test_outbox_cannot_grow();
	test_inbox_cannot_grow();
	test_every_allocation();

	receiver_stop();
	curl_global_cleanup();
	return unit_done("http_driver_fault_test");
}
