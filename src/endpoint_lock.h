/*
 * endpoint_lock.h
 *		The lock on an endpoint's name that stands for a foreign key from s2s.deliveries
 *		to s2s.endpoints (endpoint_lock.c explains the protocol).
 */
#ifndef S2S_ENDPOINT_LOCK_H
#define S2S_ENDPOINT_LOCK_H

/*
 * Locks the endpoint's name until the end of the transaction: shared for a writer of
 * deliveries, exclusive before deleting or renaming the endpoint. Processes pending
 * invalidations afterwards: a writer that had to wait sees what the other transaction
 * changed.
 */
extern void s2s_endpoint_lock(const char *name, bool exclusive);

#endif							/* S2S_ENDPOINT_LOCK_H */
