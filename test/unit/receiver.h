/*
 * receiver.h
 *		The test receiver (test/receiver/receiver.py) on loopback, for the unit tests of
 *		the HTTP client (http_test, http_driver_test, http_driver_fault_test).
 *
 * receiver_start() starts it on 127.0.0.1 (an ephemeral port) and bails out if it does
 * not come up within 30 s; receiver_stop() stops it (SIGTERM, then SIGKILL) and waits for
 * it. Every control request is a blocking libcurl easy call with a 10 s timeout that
 * exits the test (status 2) when it fails, and opens a connection of its own, which the
 * receiver counts.
 */
#ifndef S2S_UNIT_RECEIVER_H
#define S2S_UNIT_RECEIVER_H

#include <sys/types.h>

#include "http.h"

extern pid_t receiver_pid;
extern int	receiver_port;
extern char base_url[64];		/* "http://127.0.0.1:PORT" */

/*
 * The client's options the tests start from: 8 connections, 2 s to connect, 10 s in all,
 * 4 kB of response, plain HTTP and loopback allowed (the receiver's address, which the
 * client refuses unless allowed).
 */
extern HttpClientOptions receiver_client_options(void);

/* The monotonic clock, in milliseconds, that the tests' bounded waits use. */
extern double now_ms(void);

extern void receiver_start(const char *script);
extern void receiver_stop(void);
/* GET (json NULL) or POST json to a control path; returns the malloc'd answer body. */
extern char *control(const char *path, const char *json);
/* POST /__behave: how the receiver answers the paths the JSON names. */
extern void behave(const char *json);
/* Forgets the behaviours, the requests recorded and the statistics. */
extern void receiver_reset(void);
/* One number of GET /__stats ("requests", "connections", "max_in_flight"), or -1. */
extern long stat_value(const char *name);

#endif							/* S2S_UNIT_RECEIVER_H */
