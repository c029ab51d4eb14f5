/*
 * home.h
 *		Where the queue lives (the cluster's system identifier and the database's OID),
 *		checked by the worker so that a copy of production sends nothing.
 */
#ifndef S2S_HOME_H
#define S2S_HOME_H

/*
 * For the worker, in its transaction (SPI connected), before it claims: whether the queue
 * is where s2s_private.home says. When it is not (a restored or copied database), pauses
 * every endpoint with the reason, records the new home and logs one line (naming
 * database), then returns false.
 */
extern bool s2s_home_confirm(const char *database);

#endif							/* S2S_HOME_H */
