/*
 * compat.h
 *		Every difference between the PostgreSQL versions s2s_tracking builds against, in
 *		one place: 15 (Debian 12), 16 (no Debian package: these branches follow 16's
 *		headers, built nowhere here), 17 (Debian 13) and 18 (Debian unstable).
 *
 * Each branch names the version whose headers changed the API. Code outside this file
 * never tests PG_VERSION_NUM: it calls these wrappers, whose arguments are those of the
 * oldest version, so that a new major version is a matter of this file alone.
 */
#ifndef S2S_COMPAT_H
#define S2S_COMPAT_H

#include "storage/latch.h"		/* 18: includes storage/waiteventset.h */
#include "utils/memutils.h"

/*
 * 16 moved the varlena macros (VARDATA_ANY, ...) out of postgres.h into varatt.h, which
 * headers such as utils/inet.h use without including it: a file that includes one of
 * those first includes this header.
 */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/*
 * A wait event set that lives until FreeWaitEventSet, across transactions. 17 tracks
 * such sets with a resource owner instead of a memory context: none here (the worker
 * frees it itself), so it is allocated in TopMemoryContext, as the context was.
 */
static inline WaitEventSet *
s2s_create_wait_event_set(MemoryContext cxt, int nevents)
{
#if PG_VERSION_NUM >= 170000
	(void) cxt;
	return CreateWaitEventSet(NULL, nevents);
#else
	return CreateWaitEventSet(cxt, nevents);
#endif
}

#endif							/* S2S_COMPAT_H */
