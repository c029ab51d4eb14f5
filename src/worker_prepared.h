/*
 * worker_prepared.h
 *		Prepared transactions watched by the delivery worker until they end
 *		(worker_prepared.c).
 */
#ifndef S2S_WORKER_PREPARED_H
#define S2S_WORKER_PREPARED_H

/* Allocates the watch list (in s2s_worker.cxt), once at the worker's start. */
extern void s2s_prepared_init(void);

/* Whether any prepared transaction is being watched (the wait is then short). */
extern bool s2s_prepared_watching(void);

/* A unit for s2s_run_unit: watches every prepared transaction of the database. */
extern void s2s_unit_scan_prepared(void *arg);

/*
 * Takes the prepared transactions handed over by backends; says whether one watched has
 * ended. Sets *scan when the inbox overflowed (then s2s_unit_scan_prepared is due).
 */
extern bool s2s_prepared_ended(bool *scan);

#endif							/* S2S_WORKER_PREPARED_H */
