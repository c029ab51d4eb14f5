/*
 * extension_objects.h
 *		The extension's own objects as a backend sees them: the OIDs of s2s.deliveries,
 *		s2s.endpoints and s2s.enqueue_conversion(), and the owner of s2s.deliveries,
 *		looked up once and again after an invalidation (extension_objects.c).
 */
#ifndef S2S_EXTENSION_OBJECTS_H
#define S2S_EXTENSION_OBJECTS_H

/*
 * Looks the tables and the owner up unless known; raises (42P01) when the extension is
 * not installed. The values stay good until the caller's next catalog access.
 */
extern void s2s_lookup_extension_objects(void);

/* OID of s2s.deliveries. */
extern Oid	s2s_deliveries_relid(void);

/* OID of s2s.endpoints. */
extern Oid	s2s_endpoints_relid(void);

/* The owner of s2s.deliveries: the role the extension's writes run as. */
extern Oid	s2s_deliveries_owner(void);

/* OID of s2s.enqueue_conversion(), to recognise the triggers that track_orders made. */
extern Oid	s2s_enqueue_function_oid(void);

/*
 * Whether a relcache invalidation of relid (InvalidOid: all) may concern the extension's
 * tables; for another cache's invalidation callback, so it does no catalog access.
 */
extern bool s2s_extension_relation(Oid relid);

#endif							/* S2S_EXTENSION_OBJECTS_H */
