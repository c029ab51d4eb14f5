/*
 * worker.h
 *		The delivery background worker of one database.
 */
#ifndef S2S_WORKER_H
#define S2S_WORKER_H

#include "fmgr.h"

/*
 * What the launcher tells a worker, in bgw_extra (the database's OID is bgw_main_arg).
 * probe: the database was found by "*", not named: leave quietly when it does not have
 * the extension (the launcher looks again later) instead of waiting for it.
 */
typedef struct S2SWorkerArgs
{
	bool		probe;
	char		database[NAMEDATALEN];	/* its name, for messages */
} S2SWorkerArgs;

/* Entry point named in the BackgroundWorker registration (by the launcher). */
extern PGDLLEXPORT void s2s_worker_main(Datum main_arg);

#endif							/* S2S_WORKER_H */
