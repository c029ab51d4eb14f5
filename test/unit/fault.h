/*
 * fault.h
 *		Failures on demand for http_driver_fault_test: the allocations of src/http_driver.c
 *		and src/http.c, and the driver's pthread_create and eventfd calls.
 *
 * The test is linked with objects of those two files in which the Makefile renamed the
 * calls (objcopy --redefine-sym): malloc in http_driver.c becomes fault_driver_malloc,
 * strdup in http.c fault_client_strdup, and so on (the definitions are in fault.c, with
 * their prototypes). Only those calls are counted and failed: libcurl's own allocations,
 * the test's and the receiver's never are, so a plan reaches exactly the code under test.
 *
 * A plan counts the calls of some kinds, in one thread or both (the caller's, and the
 * driver's thread, which fault.c recognises by starting it itself), and fails the Nth
 * of them, or every one from the Nth on. Every block the two files allocate and free is
 * also counted, so that a test can tell whether a path left one behind.
 */
#ifndef S2S_UNIT_FAULT_H
#define S2S_UNIT_FAULT_H

#include <stdbool.h>

typedef enum FaultKind
{
	FAULT_DRIVER_MALLOC = 1 << 0,	/* http_driver.c: options_copy */
	FAULT_DRIVER_CALLOC = 1 << 1,	/* http_driver.c: the driver, an out-of-memory result's body */
	FAULT_DRIVER_REALLOC = 1 << 2,	/* http_driver.c: grown() (inbox, the thread's results, outbox) */
	FAULT_CLIENT_ALLOC = 1 << 3,	/* http.c: malloc, calloc, realloc, strdup */
	FAULT_THREAD_CREATE = 1 << 4,	/* http_driver.c: pthread_create fails with EAGAIN */
	FAULT_EVENTFD = 1 << 5			/* http_driver.c: eventfd fails with EMFILE */
} FaultKind;

#define FAULT_DRIVER_ALLOC (FAULT_DRIVER_MALLOC | FAULT_DRIVER_CALLOC | FAULT_DRIVER_REALLOC)
#define FAULT_ALLOC (FAULT_DRIVER_ALLOC | FAULT_CLIENT_ALLOC)

typedef enum FaultThread
{
	FAULT_ANY_THREAD,
	FAULT_CALLER_THREAD,		/* any thread but the driver's */
	FAULT_DRIVER_THREAD			/* the thread s2s_http_driver_start started */
} FaultThread;

/*
 * From now on the calls of "kinds" made in "thread" are counted, from 1; the nth and the
 * count - 1 after it fail (count < 0: every one from the nth on). Replaces any plan.
 */
extern void fault_arm(unsigned kinds, FaultThread thread, int nth, int count);
/* No more failures (the counts since fault_arm stay readable). */
extern void fault_disarm(void);
/* Calls the plan counted, and failures it made, since the last fault_arm. */
extern int	fault_counted(void);
extern int	fault_injected(void);
/* Calls of one kind made since the test started, failed or not, under any plan or none. */
extern int	fault_calls(FaultKind kind);
/* Blocks allocated by http_driver.c and http.c and not yet freed. */
extern long fault_live_blocks(void);

#endif							/* S2S_UNIT_FAULT_H */
