/*
 * worker_unit.h
 *		One unit of the delivery worker's work, in its own transaction (worker_unit.c).
 */
#ifndef S2S_WORKER_UNIT_H
#define S2S_WORKER_UNIT_H



/*
 * Runs fn(arg) in its own transaction as the extension's owner and commits; an error is
 * logged and rolled back. Returns whether it committed. Without needs_extension, fn also
 * runs when the extension is not installed (as the worker's own user).
 */
extern bool s2s_run_unit_as_owner(void (*fn) (void *), void *arg, bool needs_extension);

/* s2s_run_unit_as_owner for a unit that needs the extension. */
extern bool s2s_run_unit(void (*fn) (void *), void *arg);

/* The worker's SIGTERM handler: stop the loop, and cancel the unit in progress. */
extern void s2s_worker_sigterm(SIGNAL_ARGS);

/* The worker's SIGINT handler (pg_cancel_backend): cancel the unit in progress, if any. */
extern void s2s_worker_sigint(SIGNAL_ARGS);

/*
 * Whether the worker is leaving and the last unit that failed was cancelled or gave up
 * waiting for a lock: trying others that may wait for the same lock is pointless.
 */
extern bool s2s_leaving_after_wait(void);

#endif							/* S2S_WORKER_UNIT_H */
