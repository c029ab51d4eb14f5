/*
 * fault.c
 *		The calls of src/http_driver.c and src/http.c that http_driver_fault_test makes
 *		fail (see fault.h): each counts, asks the plan, and either fails as the real call
 *		would when out of memory or out of threads or descriptors, or makes the real call.
 *
 * Both of the driver's threads come here, so everything shared is atomic. The plan's
 * fields are written before "kinds", which arms it, and "kinds" is cleared first to
 * disarm, so a call never sees half a plan that counts.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "fault.h"

/* The renamed calls (fault.h): no header declares them, the renamed objects call them. */
extern void *fault_driver_malloc(size_t size);
extern void *fault_driver_calloc(size_t n, size_t size);
extern void *fault_driver_realloc(void *p, size_t size);
extern void fault_driver_free(void *p);
extern int	fault_driver_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
										void *(*start) (void *), void *arg);
extern int	fault_driver_eventfd(unsigned int initval, int flags);
extern void *fault_client_malloc(size_t size);
extern void *fault_client_calloc(size_t n, size_t size);
extern void *fault_client_realloc(void *p, size_t size);
extern char *fault_client_strdup(const char *s);
extern void fault_client_free(void *p);

#define N_KINDS 6

static atomic_uint plan_kinds;		/* 0: disarmed */
static atomic_int plan_thread;
static atomic_int plan_nth;
static atomic_int plan_count;
static atomic_int counted;
static atomic_int injected;
static atomic_int calls[N_KINDS];
static atomic_long live_blocks;

/* Set in the thread the driver starts, before its own code runs. */
static __thread bool in_driver_thread;

void
fault_arm(unsigned kinds, FaultThread thread, int nth, int count)
{
	atomic_store(&plan_kinds, 0);
	atomic_store(&plan_thread, (int) thread);
	atomic_store(&plan_nth, nth);
	atomic_store(&plan_count, count);
	atomic_store(&counted, 0);
	atomic_store(&injected, 0);
	atomic_store(&plan_kinds, kinds);
}

void
fault_disarm(void)
{
	atomic_store(&plan_kinds, 0);
}

int
fault_counted(void)
{
	return atomic_load(&counted);
}

int
fault_injected(void)
{
	return atomic_load(&injected);
}

int
fault_calls(FaultKind kind)
{
	for (int i = 0; i < N_KINDS; i++)
		if (kind == (FaultKind) (1 << i))
			return atomic_load(&calls[i]);
	return -1;
}

long
fault_live_blocks(void)
{
	return atomic_load(&live_blocks);
}

/* Counts a call of this kind; whether the plan makes it fail. */
static bool
fails(FaultKind kind)
{
	int			thread;
	int			n;
	int			nth;
	int			count;

	for (int i = 0; i < N_KINDS; i++)
		if (kind == (FaultKind) (1 << i))
			atomic_fetch_add(&calls[i], 1);
	if ((atomic_load(&plan_kinds) & (unsigned) kind) == 0)
		return false;
	thread = atomic_load(&plan_thread);
	if ((thread == FAULT_CALLER_THREAD && in_driver_thread) ||
		(thread == FAULT_DRIVER_THREAD && !in_driver_thread))
		return false;
	n = atomic_fetch_add(&counted, 1) + 1;
	nth = atomic_load(&plan_nth);
	count = atomic_load(&plan_count);
	if (n < nth || (count >= 0 && n >= nth + count))
		return false;
	atomic_fetch_add(&injected, 1);
	return true;
}

/* What an allocation returns when memory is short. */
static void *
no_memory(void)
{
	errno = ENOMEM;
	return NULL;
}

static void *
allocated(void *p)
{
	if (p != NULL)
		atomic_fetch_add(&live_blocks, 1);
	return p;
}

static void *
reallocated(void *old, size_t size, FaultKind kind)
{
	void	   *p;

	if (fails(kind))
		return no_memory();		/* the old block stays, as realloc leaves it */
	p = realloc(old, size);
	return old == NULL ? allocated(p) : p;
}

static void
freed(void *p)
{
	if (p != NULL)
		atomic_fetch_sub(&live_blocks, 1);
	free(p);
}

/* ---- http_driver.c ---- */

void *
fault_driver_malloc(size_t size)
{
	return fails(FAULT_DRIVER_MALLOC) ? no_memory() : allocated(malloc(size));
}

void *
fault_driver_calloc(size_t n, size_t size)
{
	return fails(FAULT_DRIVER_CALLOC) ? no_memory() : allocated(calloc(n, size));
}

void *
fault_driver_realloc(void *p, size_t size)
{
	return reallocated(p, size, FAULT_DRIVER_REALLOC);
}

void
fault_driver_free(void *p)
{
	freed(p);
}

typedef struct Start
{
	void	   *(*start) (void *);
	void	   *arg;
} Start;

static void *
driver_thread_main(void *arg)
{
	Start		s = *(Start *) arg;

	free(arg);
	in_driver_thread = true;
	return s.start(s.arg);
}

int
fault_driver_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
							void *(*start) (void *), void *arg)
{
	Start	   *s;
	int			rc;

	/* EAGAIN: what a process or thread limit gives */
	if (fails(FAULT_THREAD_CREATE))
		return EAGAIN;
	s = malloc(sizeof(Start));
	if (s == NULL)
		return EAGAIN;
	s->start = start;
	s->arg = arg;
	rc = pthread_create(thread, attr, driver_thread_main, s);
	if (rc != 0)
		free(s);
	return rc;
}

int
fault_driver_eventfd(unsigned int initval, int flags)
{
	/* EMFILE: the process is out of descriptors */
	if (fails(FAULT_EVENTFD))
	{
		errno = EMFILE;
		return -1;
	}
	return eventfd(initval, flags);
}

/* ---- http.c ---- */

void *
fault_client_malloc(size_t size)
{
	return fails(FAULT_CLIENT_ALLOC) ? no_memory() : allocated(malloc(size));
}

void *
fault_client_calloc(size_t n, size_t size)
{
	return fails(FAULT_CLIENT_ALLOC) ? no_memory() : allocated(calloc(n, size));
}

void *
fault_client_realloc(void *p, size_t size)
{
	return reallocated(p, size, FAULT_CLIENT_ALLOC);
}

char *
fault_client_strdup(const char *s)
{
	return fails(FAULT_CLIENT_ALLOC) ? no_memory() : allocated(strdup(s));
}

void
fault_client_free(void *p)
{
	freed(p);
}
