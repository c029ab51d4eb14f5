/*
 * subxact.h
 *		Running a piece of code in an internal subtransaction that turns some errors into
 *		a result instead of raising them (subxact.c).
 */
#ifndef S2S_SUBXACT_H
#define S2S_SUBXACT_H

/* Which errors s2s_subxact_run gives back; every other error is raised. */
typedef enum S2SSubxactSwallow
{
	/* 40001: under REPEATABLE READ or SERIALIZABLE, a row another transaction changed */
	S2S_SWALLOW_SERIALIZATION_FAILURE,
	/* class 22: a data exception (a failed cast, a division by zero) */
	S2S_SWALLOW_DATA_EXCEPTION,
	/* every class but 57, operator intervention (a cancel, a statement timeout, a shutdown) */
	S2S_SWALLOW_ALL_BUT_CANCEL
} S2SSubxactSwallow;

/*
 * Runs body(arg) in an internal subtransaction, as a PL/pgSQL EXCEPTION block does. When
 * body returns, the subtransaction is committed and NULL is returned. When it raises an
 * error, the subtransaction is rolled back (with everything body did, SPI connections
 * included); an error that swallow names is then returned, copied into the caller's
 * memory context (the caller frees it with FreeErrorData), and any other error is raised
 * again. Either way the caller's memory context and resource owner are current again.
 * body runs in the caller's memory context, under the subtransaction's resource owner.
 */
extern ErrorData *s2s_subxact_run(void (*body) (void *arg), void *arg,
								  S2SSubxactSwallow swallow);

#endif							/* S2S_SUBXACT_H */
