/*
 * http_driver.c
 *		The HTTP client (http.c), driven by its caller or by a thread of its own.
 *
 * Why a thread: the delivery worker is CPU-bound on one core, and about 40% of its time is
 * libcurl's and the kernel's (doc/performance.md). With the client on a thread, that part
 * runs on the other core while the worker's own thread renders requests and runs its
 * statements. It is off by default (s2s_tracking.http_thread): it costs a thread per
 * worker and gains only when the worker is the limit.
 *
 * How the two threads meet. Everything they share is under one mutex, held only to move
 * pointers and counts, never while libcurl runs:
 *   - the inbox: requests checked and copied by the caller (s2s_http_prepare), taken by the
 *     thread in one swap of arrays;
 *   - the outbox: results, appended by the thread, read by the caller in order;
 *   - new options, and the order to stop.
 * The caller wakes the thread through wake_fd (an eventfd the thread waits on together
 * with the client's descriptor); the thread tells the caller that results are waiting
 * through notify_fd (an eventfd the caller waits on in its WaitEventSet).
 *
 * Both queues are arrays that grow to what the caller has in flight, which it bounds
 * (s2s_tracking.max_concurrency for the worker): the outbox is compacted whenever the
 * thread appends, so it never holds more than the results not yet read, and nothing is
 * ever refused for room. Out of memory, the thread keeps what it could not hand over and
 * tries again a millisecond later; a request the client cannot take comes back as a
 * result (HTTP_ERROR_INTERNAL, as when libcurl cannot start a transfer), never lost.
 *
 * The thread calls nothing of PostgreSQL: only the client, libcurl, malloc and epoll.
 * It starts with every signal blocked but the faults (libcurl's resolver threads, started
 * from it, inherit that), so that PostgreSQL's handlers only ever run in the main thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE				/* pthread_setname_np */
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <unistd.h>

#include "http_driver.h"

/* The thread's name (top -H, /proc/PID/task/TID/comm): at most 15 bytes. */
#define THREAD_NAME "s2s_http"

/* The longest the thread sleeps without a reason to wake: a guard, never needed. */
#define THREAD_MAX_SLEEP_MS 1000

struct HttpDriver
{
	HttpClient *client;
	bool		threaded;
	int			in_flight;		/* caller's: submitted, not yet read */

	/* with a thread only */
	pthread_t	thread;
	bool		running;		/* caller's: the thread was started and not yet joined */
	pthread_mutex_t mutex;
	int			wake_fd;		/* caller -> thread: inbox, options or stop */
	int			notify_fd;		/* thread -> caller: results in the outbox */
	int			epfd;			/* the thread's: wake_fd and the client's descriptor */

	/* under mutex */
	bool		stopping;
	HttpPrepared **inbox;
	int			n_inbox;
	int			inbox_cap;
	HttpResult *outbox;
	int			out_head;		/* the next result to read */
	int			out_n;			/* results in outbox[0 .. out_n), read up to out_head */
	int			out_cap;
	int			out_peak;		/* the most results the outbox held at once */
	HttpClientOptions *new_options;	/* one malloc block, or NULL */
};

/* ---- the two eventfds ---- */

static void
poke(int fd)
{
	uint64_t	one = 1;

	/* an eventfd's counter cannot overflow here: each read resets it */
	while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void
clear(int fd)
{
	uint64_t	value;

	/* non-blocking: EAGAIN when nothing was poked */
	while (read(fd, &value, sizeof(value)) < 0 && errno == EINTR)
		;
}

/*
 * The array grown to room for "want" elements of "size" bytes (its capacity, *cap,
 * doubled as needed); NULL when out of memory, the array then as it was.
 */
static void *
grown(void *array, int *cap, int want, size_t size)
{
	void	   *p;
	int			n;

	if (want <= *cap)
		return array;
	n = *cap > 0 ? *cap : 64;
	while (n < want)
		n *= 2;
	p = realloc(array, size * (size_t) n);
	if (p != NULL)
		*cap = n;
	return p;
}

/* ---- options, copied into one block for the thread ---- */

static HttpClientOptions *
options_copy(const HttpClientOptions *options)
{
	int			n = options->allowed_networks != NULL && options->n_allowed_networks > 0 ?
		options->n_allowed_networks : 0;
	size_t		nets = sizeof(NetCidr) * (size_t) n;
	size_t		ua = options->user_agent ? strlen(options->user_agent) + 1 : 0;
	HttpClientOptions *copy = malloc(sizeof(HttpClientOptions) + nets + ua);

	if (copy == NULL)
		return NULL;
	*copy = *options;
	copy->n_allowed_networks = n;
	copy->allowed_networks = n > 0 ? (NetCidr *) (copy + 1) : NULL;
	if (n > 0)
		memcpy(copy + 1, options->allowed_networks, nets);
	if (ua)
	{
		char	   *p = (char *) (copy + 1) + nets;

		memcpy(p, options->user_agent, ua);
		copy->user_agent = p;
	}
	return copy;
}

/* ---- the thread ---- */

/*
 * A result for a request the client could not take (out of memory): what the client
 * itself answers when libcurl cannot start a transfer, nothing sent.
 */
static void
result_out_of_memory(HttpResult *r, void *tag)
{
	struct timeval now;

	memset(r, 0, sizeof(*r));
	r->tag = tag;
	r->error_kind = HTTP_ERROR_INTERNAL;
	snprintf(r->error, sizeof(r->error), "out of memory: request not sent");
	gettimeofday(&now, NULL);
	r->started_at = now.tv_sec + now.tv_usec / 1e6;
	r->body = calloc(1, 1);
}

/* Room for "want" results in the thread's list; false when out of memory. */
static bool
done_reserve(HttpResult **done, int want, int *cap)
{
	HttpResult *p = grown(*done, cap, want, sizeof(HttpResult));

	if (p == NULL)
		return false;
	*done = p;
	return true;
}

/*
 * Moves the thread's results to the outbox; false when the outbox cannot grow (the
 * results stay with the thread, for the next round).
 */
static bool
hand_over(HttpDriver *d, HttpResult *done, int n)
{
	bool		ok = true;

	pthread_mutex_lock(&d->mutex);
	/* what was read is dropped, so that the outbox holds only what is still to read */
	if (d->out_head > 0)
	{
		memmove(d->outbox, d->outbox + d->out_head,
				sizeof(HttpResult) * (size_t) (d->out_n - d->out_head));
		d->out_n -= d->out_head;
		d->out_head = 0;
	}
	{
		HttpResult *p = grown(d->outbox, &d->out_cap, d->out_n + n, sizeof(HttpResult));

		if (p == NULL)
			ok = false;
		else
			d->outbox = p;
	}
	if (ok)
	{
		memcpy(d->outbox + d->out_n, done, sizeof(HttpResult) * (size_t) n);
		d->out_n += n;
		if (d->out_n > d->out_peak)
			d->out_peak = d->out_n;
	}
	pthread_mutex_unlock(&d->mutex);
	if (ok)
		poke(d->notify_fd);
	return ok;
}

static void *
thread_main(void *arg)
{
	HttpDriver *d = arg;
	HttpPrepared **spare = NULL;	/* the array given to the caller at the next swap */
	int			spare_cap = 0;
	HttpPrepared **taken = NULL;	/* requests taken from the inbox, not yet submitted */
	int			n_taken = 0;
	HttpResult *done = NULL;	/* results not yet handed over */
	int			n_done = 0;
	int			done_cap = 0;

	for (;;)
	{
		struct epoll_event events[2];
		long		timeout = s2s_http_timeout_ms(d->client);
		HttpClientOptions *options;
		bool		stop;
		HttpResult	r;

		if (n_done > 0 || n_taken > 0)
			timeout = 1;		/* out of memory last time: try again soon */
		else if (timeout < 0 || timeout > THREAD_MAX_SLEEP_MS)
			timeout = THREAD_MAX_SLEEP_MS;
		(void) epoll_wait(d->epfd, events, 2, (int) timeout);
		clear(d->wake_fd);

		pthread_mutex_lock(&d->mutex);
		stop = d->stopping;
		if (!stop && n_taken == 0)
		{
			/* take the inbox: the caller gets the thread's empty array in its place */
			int			cap = d->inbox_cap;

			taken = d->inbox;
			n_taken = d->n_inbox;
			d->inbox = spare;
			d->inbox_cap = spare_cap;
			d->n_inbox = 0;
			spare = taken;
			spare_cap = cap;
		}
		options = d->new_options;
		d->new_options = NULL;
		pthread_mutex_unlock(&d->mutex);

		if (stop)
		{
			/*
			 * Stopping aborts everything: what was taken is never started. What already
			 * finished is handed over (its result is the caller's to write back, the
			 * request having been sent); nothing more is driven.
			 */
			free(options);
			while (done_reserve(&done, n_done + 1, &done_cap) &&
				   s2s_http_next_result(d->client, &r))
				done[n_done++] = r;
			if (n_done > 0 && hand_over(d, done, n_done))
				n_done = 0;
			break;
		}
		if (options != NULL)
		{
			s2s_http_client_set_options(d->client, options);
			free(options);
		}

		/*
		 * Room first for a result per request, so that a request the client cannot take
		 * always comes back as one; without that room, the requests wait for the next
		 * round.
		 */
		if (n_taken > 0 && done_reserve(&done, n_done + n_taken, &done_cap))
		{
			for (int i = 0; i < n_taken; i++)
			{
				char		errbuf[128];
				void	   *tag = s2s_http_prepared_tag(taken[i]);

				if (!s2s_http_submit_prepared(d->client, taken[i], errbuf, sizeof(errbuf)))
					result_out_of_memory(&done[n_done++], tag);
			}
			n_taken = 0;
		}
		s2s_http_process(d->client);
		while (done_reserve(&done, n_done + 1, &done_cap) &&
			   s2s_http_next_result(d->client, &r))
			done[n_done++] = r;
		if (n_done > 0 && hand_over(d, done, n_done))
			n_done = 0;
	}

	for (int i = 0; i < n_taken; i++)
		s2s_http_prepared_free(taken[i]);
	for (int i = 0; i < n_done; i++)
		s2s_http_result_release(&done[i]);
	free(done);
	free(spare);
	return NULL;
}

/* ---- the interface ---- */

HttpDriver *
s2s_http_driver_start(const HttpClientOptions *options, bool own_thread, char *errbuf,
					  size_t errlen)
{
	HttpDriver *d = calloc(1, sizeof(HttpDriver));
	struct epoll_event ev;
	sigset_t	all;
	sigset_t	saved;
	int			rc;

	if (d == NULL)
	{
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	d->wake_fd = d->notify_fd = d->epfd = -1;
	d->client = s2s_http_client_create(options, errbuf, errlen);
	if (d->client == NULL)
	{
		free(d);
		return NULL;
	}
	if (!own_thread)
		return d;

	d->threaded = true;
	d->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	d->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->wake_fd < 0 || d->notify_fd < 0 || d->epfd < 0)
	{
		snprintf(errbuf, errlen, "could not create the HTTP thread's descriptors: %s",
				 strerror(errno));
		goto fail;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.fd = d->wake_fd;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->wake_fd, &ev) != 0)
		goto fail_errno;
	ev.data.fd = s2s_http_wait_fd(d->client);
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) != 0)
		goto fail_errno;
	if ((rc = pthread_mutex_init(&d->mutex, NULL)) != 0)
	{
		snprintf(errbuf, errlen, "could not create the HTTP thread's mutex: %s", strerror(rc));
		goto fail;
	}

	/*
	 * The thread inherits this mask: every signal blocked but the faults, which are the
	 * faulting thread's own (blocked, they would kill the process without a word, and
	 * hide a sanitizer's report).
	 */
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	rc = pthread_create(&d->thread, NULL, thread_main, d);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (rc != 0)
	{
		snprintf(errbuf, errlen, "could not start the HTTP thread: %s", strerror(rc));
		pthread_mutex_destroy(&d->mutex);
		goto fail;
	}
	d->running = true;
	(void) pthread_setname_np(d->thread, THREAD_NAME);
	return d;

fail_errno:
	snprintf(errbuf, errlen, "could not set up the HTTP thread's descriptors: %s",
			 strerror(errno));
fail:
	if (d->wake_fd >= 0)
		close(d->wake_fd);
	if (d->notify_fd >= 0)
		close(d->notify_fd);
	if (d->epfd >= 0)
		close(d->epfd);
	s2s_http_client_destroy(d->client);
	free(d);
	return NULL;
}

bool
s2s_http_driver_threaded(HttpDriver *driver)
{
	return driver->threaded;
}

bool
s2s_http_driver_set_options(HttpDriver *d, const HttpClientOptions *options)
{
	HttpClientOptions *copy;

	if (!d->threaded)
	{
		s2s_http_client_set_options(d->client, options);
		return true;
	}
	copy = options_copy(options);
	if (copy == NULL)
		return false;
	pthread_mutex_lock(&d->mutex);
	free(d->new_options);
	d->new_options = copy;
	pthread_mutex_unlock(&d->mutex);
	poke(d->wake_fd);
	return true;
}

void
s2s_http_driver_quiesce(HttpDriver *d)
{
	if (!d->threaded || !d->running)
		return;
	pthread_mutex_lock(&d->mutex);
	d->stopping = true;
	pthread_mutex_unlock(&d->mutex);
	poke(d->wake_fd);
	pthread_join(d->thread, NULL);
	d->running = false;
}

void
s2s_http_driver_stop(HttpDriver *d)
{
	if (d == NULL)
		return;
	if (d->threaded)
	{
		s2s_http_driver_quiesce(d);

		/* the thread is gone: what it left is this thread's to free */
		for (int i = 0; i < d->n_inbox; i++)
			s2s_http_prepared_free(d->inbox[i]);
		free(d->inbox);
		for (int i = d->out_head; i < d->out_n; i++)
			s2s_http_result_release(&d->outbox[i]);
		free(d->outbox);
		free(d->new_options);
		pthread_mutex_destroy(&d->mutex);
		close(d->wake_fd);
		close(d->notify_fd);
		close(d->epfd);
	}
	s2s_http_client_destroy(d->client);
	free(d);
}

bool
s2s_http_driver_submit(HttpDriver *d, const HttpRequest *request, char *errbuf,
					   size_t errlen)
{
	HttpPrepared *prepared;
	bool		ok = true;

	if (!d->threaded)
	{
		if (!s2s_http_submit(d->client, request, errbuf, errlen))
			return false;
		d->in_flight++;
		return true;
	}

	if (!d->running)
	{
		snprintf(errbuf, errlen, "the HTTP client is stopping");
		return false;
	}

	/* checked and copied here: an invalid request is refused now, as without a thread */
	prepared = s2s_http_prepare(request, errbuf, errlen);
	if (prepared == NULL)
		return false;
	pthread_mutex_lock(&d->mutex);
	{
		HttpPrepared **p = grown(d->inbox, &d->inbox_cap, d->n_inbox + 1,
								 sizeof(HttpPrepared *));

		if (p == NULL)
			ok = false;
		else
		{
			d->inbox = p;
			d->inbox[d->n_inbox++] = prepared;
		}
	}
	pthread_mutex_unlock(&d->mutex);
	if (!ok)
	{
		s2s_http_prepared_free(prepared);
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	d->in_flight++;
	poke(d->wake_fd);
	return true;
}

int
s2s_http_driver_in_flight(HttpDriver *d)
{
	return d->in_flight;
}

int
s2s_http_driver_outbox_peak(HttpDriver *d)
{
	int			peak = 0;

	if (d->threaded)
	{
		pthread_mutex_lock(&d->mutex);
		peak = d->out_peak;
		pthread_mutex_unlock(&d->mutex);
	}
	return peak;
}

int
s2s_http_driver_wait_fd(HttpDriver *d)
{
	return d->threaded ? d->notify_fd : s2s_http_wait_fd(d->client);
}

long
s2s_http_driver_timeout_ms(HttpDriver *d)
{
	bool		waiting;

	if (!d->threaded)
		return s2s_http_timeout_ms(d->client);
	pthread_mutex_lock(&d->mutex);
	waiting = d->out_head < d->out_n;
	pthread_mutex_unlock(&d->mutex);
	/* the thread keeps libcurl's timers itself */
	return waiting ? 0 : -1;
}

void
s2s_http_driver_process(HttpDriver *d)
{
	if (!d->threaded)
		s2s_http_process(d->client);
	else
	{
		/*
		 * Cleared before the outbox is read: a result the thread adds after this pokes
		 * again. A caller that clears without reading (the worker after submitting)
		 * finds what waits through s2s_http_driver_timeout_ms(), which is 0 then.
		 */
		clear(d->notify_fd);
	}
}

bool
s2s_http_driver_next_result(HttpDriver *d, HttpResult *result)
{
	bool		got = false;

	if (!d->threaded)
		got = s2s_http_next_result(d->client, result);
	else
	{
		pthread_mutex_lock(&d->mutex);
		if (d->out_head < d->out_n)
		{
			*result = d->outbox[d->out_head++];
			got = true;
		}
		pthread_mutex_unlock(&d->mutex);
	}
	if (got)
		d->in_flight--;
	return got;
}
