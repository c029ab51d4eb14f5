/*
 * worker_claim.h
 *		Claiming due deliveries and handing them to the HTTP client (worker_claim.c).
 */
#ifndef S2S_WORKER_CLAIM_H
#define S2S_WORKER_CLAIM_H

#include "worker_state.h"

/* Chooses this worker's claim tokens (once, at its start). */
extern void s2s_claim_tokens_init(void);

/* A claim token no other claim has. */
extern int64 s2s_next_claim_token(void);

/* Units for s2s_run_unit (arg: the WorkerPass): write back then claim; claim only. */
extern void s2s_unit_write_back_and_claim(void *arg);
extern void s2s_unit_claim(void *arg);

/*
 * Sends the pass's claims (once the claim committed); those that cannot be sent are
 * added to pass->results.
 */
extern void s2s_submit_claims(WorkerPass *pass, TimestampTz now);

#endif							/* S2S_WORKER_CLAIM_H */
