/*
 * launcher.h
 *		The launcher of the per-database delivery workers.
 */
#ifndef S2S_LAUNCHER_H
#define S2S_LAUNCHER_H

#include "fmgr.h"

/* Called from _PG_init while preloading: registers the launcher with the postmaster. */
extern void s2s_launcher_register(void);

/* Entry point named in the BackgroundWorker registration. */
extern PGDLLEXPORT void s2s_launcher_main(Datum main_arg);

#endif							/* S2S_LAUNCHER_H */
