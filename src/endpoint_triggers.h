/*
 * endpoint_triggers.h
 *		The orders triggers that track an endpoint (endpoint_triggers.c), and the
 *		refusal to delete, rename or re-kind an endpoint while one does.
 */
#ifndef S2S_ENDPOINT_TRIGGERS_H
#define S2S_ENDPOINT_TRIGGERS_H

/*
 * Finds a trigger running s2s.enqueue_conversion for endpoint (partition clones left
 * out), on the table relid, or on any table when relid is InvalidOid. Reads pg_trigger
 * with a fresh snapshot and takes no lock on the tables. Returns false when there is
 * none; else sets *found_relid and *found_name (either may be NULL) to the first found.
 */
extern bool s2s_find_tracking_trigger(Oid relid, const char *endpoint, Oid *found_relid,
									  char **found_name);

/*
 * Raises 2BP01, naming the trigger and how to stop tracking, when an orders trigger
 * tracks endpoint. change says what was refused: "delete", "rename", "kind" or
 * "truncate". The caller holds the endpoint's lock in exclusive mode.
 */
extern void s2s_refuse_if_tracked(const char *endpoint, const char *change);

#endif							/* S2S_ENDPOINT_TRIGGERS_H */
