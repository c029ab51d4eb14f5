/*
 * compat.h
 *		Every difference between the PostgreSQL versions s2s_tracking builds against, in
 *		one place: 15 (Debian 12), 16 (no Debian package: these branches follow 16's
 *		headers, built nowhere here), 17 (Debian 13) and 18 (Debian unstable).
 *
 * Each branch names the version whose headers changed the API. Code outside this file
 * never tests PG_VERSION_NUM: it calls these wrappers, whose arguments are those of the
 * oldest version, so that a new major version is a matter of this file alone. The one
 * exception is test/fuzz/shim.c, which defines server functions for the fuzz targets
 * instead of calling them: a definition must match its version's declaration.
 */
#ifndef S2S_COMPAT_H
#define S2S_COMPAT_H

#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "common/jsonapi.h"
#include "storage/latch.h"		/* 18: includes storage/waiteventset.h */
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/memutils.h"

/*
 * 16 moved the varlena macros (VARDATA_ANY, ...) out of postgres.h into varatt.h, which
 * headers such as utils/inet.h use without including it: a file that includes one of
 * those first includes this header.
 */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/*
 * A wait event set that lives until FreeWaitEventSet, across transactions. 17 tracks
 * such sets with a resource owner instead of a memory context: none here (the worker
 * frees it itself), so it is allocated in TopMemoryContext, as the context was.
 */
static inline WaitEventSet *
s2s_create_wait_event_set(MemoryContext cxt, int nevents)
{
#if PG_VERSION_NUM >= 170000
	(void) cxt;
	return CreateWaitEventSet(NULL, nevents);
#else
	return CreateWaitEventSet(cxt, nevents);
#endif
}

/*
 * 17 added transaction_timeout: turned off at the override level, as the caller does
 * statement_timeout; before 17 there is none to turn off.
 */
static inline void
s2s_override_transaction_timeout_off(void)
{
#if PG_VERSION_NUM >= 170000
	SetConfigOption("transaction_timeout", "0", PGC_USERSET, PGC_S_OVERRIDE);
#endif
}

/* 16 folded the per-catalog privilege and ownership checks into object_aclcheck/ownercheck. */
static inline AclResult
s2s_proc_aclcheck(Oid proc, Oid roleid, AclMode mode)
{
#if PG_VERSION_NUM >= 160000
	return object_aclcheck(ProcedureRelationId, proc, roleid, mode);
#else
	return pg_proc_aclcheck(proc, roleid, mode);
#endif
}

static inline bool
s2s_class_ownercheck(Oid relid, Oid roleid)
{
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(RelationRelationId, relid, roleid);
#else
	return pg_class_ownercheck(relid, roleid);
#endif
}

/*
 * A setting's check hook hands its "extra" to the GUC machinery, which frees it: with
 * guc_free from 16 on (allocated by guc_malloc), with free() before.
 */
static inline void *
s2s_guc_extra_alloc(size_t size)
{
#if PG_VERSION_NUM >= 160000
	return guc_malloc(LOG, size);
#else
	return malloc(size);
#endif
}

static inline void
s2s_guc_extra_free(void *extra)
{
#if PG_VERSION_NUM >= 160000
	guc_free(extra);
#else
	free(extra);
#endif
}

/*
 * JSON semantic actions (common/jsonapi.h) tell the parser whether to go on from 16 on;
 * before, they return nothing and a parse always runs to the end of the document.
 * An action is declared "static s2s_json_action f(...)" and ends with
 * S2S_JSON_ACTION_DONE(go_on).
 */
#if PG_VERSION_NUM >= 160000
typedef JsonParseErrorType s2s_json_action;
#define S2S_JSON_ACTION_DONE(go_on) \
	return (go_on) ? JSON_SUCCESS : JSON_SEM_ACTION_FAILED
#else
typedef void s2s_json_action;
#define S2S_JSON_ACTION_DONE(go_on) \
	do { (void) (go_on); return; } while (0)
#endif

/*
 * A lexer over json[0..len) (not NUL-terminated). 17 takes the struct to initialise
 * (NULL: allocated), a const input and a size_t length, and frees with
 * freeJsonLexContext; before, the context is palloc'd with its de-escaped string buffer.
 */
static inline JsonLexContext *
s2s_json_lex_create(const char *json, size_t len, int encoding, bool need_escapes)
{
#if PG_VERSION_NUM >= 170000
	return makeJsonLexContextCstringLen(NULL, json, len, encoding, need_escapes);
#else
	return makeJsonLexContextCstringLen(unconstify(char *, json), (int) len, encoding,
										need_escapes);
#endif
}

static inline void
s2s_json_lex_free(JsonLexContext *lex)
{
#if PG_VERSION_NUM >= 170000
	freeJsonLexContext(lex);
#else
	if (lex->strval != NULL)
	{
		pfree(lex->strval->data);
		pfree(lex->strval);
	}
	pfree(lex);
#endif
}

#endif							/* S2S_COMPAT_H */
