/*
 * worker.h
 *		The delivery background worker.
 */
#ifndef S2S_WORKER_H
#define S2S_WORKER_H

#include "fmgr.h"

/* Called from _PG_init while preloading: registers the worker with the postmaster. */
extern void s2s_worker_register(void);

/* Entry point named in the BackgroundWorker registration. */
extern PGDLLEXPORT void s2s_worker_main(Datum main_arg);

#endif							/* S2S_WORKER_H */
