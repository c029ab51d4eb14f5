/*
 * http_driver.h
 *		The HTTP client (http.h), driven either by its caller or by a thread of its own.
 *
 * The same interface as the client's. Driven by its caller, every call goes straight to the
 * client. With a thread of its own (s2s_tracking.http_thread), libcurl's work runs on
 * that thread, on the process's other core, while the caller renders requests and writes
 * results back: the caller's requests are checked and copied in the caller's thread (so
 * an invalid one is refused at once, as without the thread), handed over through an
 * inbox, and the results come back through an outbox, s2s_http_driver_wait_fd() becoming
 * readable when some are waiting.
 *
 * The thread is named "s2s_http" (top -H, /proc/PID/task/TID/comm; so are the resolver
 * threads libcurl starts from it for a host name, which come and go). It runs only the
 * client's plain C (malloc, libcurl, epoll): nothing of PostgreSQL, no palloc, no
 * ereport, and every signal but the faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL) blocked, so
 * that PostgreSQL's signal handlers run only in the process's main thread.
 * s2s_http_driver_stop() stops and joins it; the caller must call it before the process
 * exits (a before_shmem_exit callback: exit() must not run while libcurl does).
 */
#ifndef S2S_HTTP_DRIVER_H
#define S2S_HTTP_DRIVER_H

#include "http.h"

typedef struct HttpDriver HttpDriver;

/* NULL (with errbuf) on failure. Call before the process starts any other thread. */
extern HttpDriver *s2s_http_driver_start(const HttpClientOptions *options, bool own_thread,
										 char *errbuf, size_t errlen);
/* Whether the client runs on a thread of its own. */
extern bool s2s_http_driver_threaded(HttpDriver *driver);
/*
 * New options, for requests started from now on (a copy is taken). False when out of
 * memory: the old options stay, and the caller must try again.
 */
extern bool s2s_http_driver_set_options(HttpDriver *driver, const HttpClientOptions *options);
/*
 * Stops the thread (if any) and waits for it: no transfer is driven any more (they are
 * aborted by s2s_http_driver_stop), nothing more is sent, and the results already
 * handed over can still be read. Without a thread, nothing
 * to do (the client only makes progress when called). Submitting afterwards fails.
 */
extern void s2s_http_driver_quiesce(HttpDriver *driver);
/* Quiesces, then frees everything, results not yet read too. */
extern void s2s_http_driver_stop(HttpDriver *driver);
/* As s2s_http_submit: false (with errbuf) for an invalid request or out of memory. */
extern bool s2s_http_driver_submit(HttpDriver *driver, const HttpRequest *request,
								   char *errbuf, size_t errlen);
/* Submitted and not yet read with s2s_http_driver_next_result. */
extern int	s2s_http_driver_in_flight(HttpDriver *driver);
/* The most results the outbox held at once (0 without a thread): for tests. */
extern int	s2s_http_driver_outbox_peak(HttpDriver *driver);
/* Readable when there is work for s2s_http_driver_process (level-triggered). */
extern int	s2s_http_driver_wait_fd(HttpDriver *driver);
/* As s2s_http_timeout_ms: -1 nothing due, 0 results are waiting. */
extern long s2s_http_driver_timeout_ms(HttpDriver *driver);
/* Never blocks. */
extern void s2s_http_driver_process(HttpDriver *driver);
/* The next finished request; release it with s2s_http_result_release(). */
extern bool s2s_http_driver_next_result(HttpDriver *driver, HttpResult *result);

#endif							/* S2S_HTTP_DRIVER_H */
