/*
 * worker_shutdown.h
 *		The delivery worker leaving on SIGTERM (worker_shutdown.c).
 */
#ifndef S2S_WORKER_SHUTDOWN_H
#define S2S_WORKER_SHUTDOWN_H

#include "storage/latch.h"

/*
 * No more claims; transfers in flight get a short grace (waiting on wait_set) to complete
 * and be written back; the rest, and the results held back, are given back.
 */
extern void s2s_worker_shut_down(WaitEventSet *wait_set);

/* Stops the HTTP client (and joins its thread), on any way out. */
extern void s2s_worker_http_stop(void);

#endif							/* S2S_WORKER_SHUTDOWN_H */
