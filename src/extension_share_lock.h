/*
 * extension_share_lock.h
 *		The worker's share of the lock on extension s2s_tracking, taken first in each of its
 *		transactions.
 */
#ifndef S2S_EXTENSION_SHARE_LOCK_H
#define S2S_EXTENSION_SHARE_LOCK_H

/*
 * Locks extension s2s_tracking in AccessShareLock for the rest of the transaction (unless
 * only sessions the worker need not wait for keep it out), then s2s.deliveries in
 * RowExclusiveLock, and returns the extension's owner (whom the worker's statements run
 * as), or InvalidOid when the extension is not installed, was dropped while this waited,
 * or the worker was asked to stop while it waited. Must come before the transaction
 * touches any of the extension's objects. Reads the catalog only.
 */
extern Oid	s2s_lock_extension_shared(void);

#endif
