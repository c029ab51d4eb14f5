/*
 * refused.c
 *		An endpoint's refused_pattern: a 2xx answer whose body matches it is a refusal
 *		(Affilae may answer 200 with an error text for an unknown click ID).
 *
 * The pattern is a POSIX extended regular expression (ERE), compiled by PostgreSQL's own
 * engine (pg_regcomp) in the database's collation, case-sensitive. ERE and not ARE (what
 * the ~ operator speaks) on purpose: EREs have no back-references and no look-around, so
 * the engine's DFA matches one in time proportional to the body (at most
 * s2s_tracking.response_limit bytes) times the pattern's states; the engine also bounds a
 * pattern's compiled size (REG_ETOOBIG). That product is still large: 1 KB of bounded
 * repetitions (a[ab]{255}[ab]{255}...c) has thousands of states, and its DFA misses its
 * cache on every byte of a random body, for tens of seconds on a body of tens of kB,
 * during which the worker judges nothing else (TAP 064). So a match gets
 * S2S_REFUSED_MATCH_MS: a timeout then raises the flags of a query cancel, which the
 * engine checks as it goes (PostgreSQL 15 returns REG_CANCEL, 16 and later raise the
 * cancel's error from CHECK_FOR_INTERRUPTS, which is caught here, being ours, and only
 * then). An administrator who may write s2s.endpoints can thus not make the worker spin
 * on a pattern.
 *
 * The worker judges results outside any transaction, so nothing here may raise: the
 * engine returns its errors as codes (its allocations cannot fail with an ERROR either)
 * and they become messages. The compiled patterns are cached per endpoint, each in a
 * memory context of its own, so that a changed pattern replaces its predecessor.
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "regex/regex.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timeout.h"

#include "refused.h"

PG_FUNCTION_INFO_V1(s2s_check_refused_pattern);

/* Endpoints with a pattern are few; beyond this the oldest entry is compiled again. */
#define REFUSED_CACHE_SIZE 16

typedef struct CachedPattern
{
	char	   *endpoint;		/* NULL: free entry */
	char	   *pattern;
	MemoryContext cxt;			/* holds the strings and (PostgreSQL 16+) the regex */
	regex_t		re;
	uint64		used;			/* for eviction: last use */
} CachedPattern;

static CachedPattern cache[REFUSED_CACHE_SIZE];
static uint64 use_counter;

/* The match's time limit: registered on first use (MAX_TIMEOUTS: not yet). */
static TimeoutId match_timeout = MAX_TIMEOUTS;
static volatile sig_atomic_t match_expired = false;

/* SIGALRM: what a query cancel sets, which the engine's cancel checks read. */
static void
match_timeout_handler(void)
{
	match_expired = true;
	QueryCancelPending = true;
	InterruptPending = true;
}

/* What regexec_bounded returns for a match given up (PostgreSQL 16 has no REG_CANCEL). */
#define MATCH_GIVEN_UP (-1)

/*
 * pg_regexec on wide[0..wlen), given up after S2S_REFUSED_MATCH_MS: match_expired is then
 * set, and the result is MATCH_GIVEN_UP or the engine's REG_CANCEL. The cancel it causes
 * is withdrawn before returning, so nothing else ever sees it.
 */
static int
regexec_bounded(regex_t *re, pg_wchar *wide, int wlen)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool		cancel_before = QueryCancelPending;
	volatile int rc = MATCH_GIVEN_UP;

	if (match_timeout == MAX_TIMEOUTS)
		match_timeout = RegisterTimeout(USER_TIMEOUT, match_timeout_handler);
	match_expired = false;
	enable_timeout_after(match_timeout, S2S_REFUSED_MATCH_MS);
	PG_TRY();
	{
		rc = pg_regexec(re, wide, wlen, 0, NULL, 0, NULL, 0);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		/* only the cancel this timeout caused is ours to end */
		if (!match_expired || edata->sqlerrcode != ERRCODE_QUERY_CANCELED)
		{
			disable_timeout(match_timeout, false);
			FreeErrorData(edata);
			PG_RE_THROW();
		}
		FreeErrorData(edata);
		FlushErrorState();
		rc = MATCH_GIVEN_UP;
	}
	PG_END_TRY();
	disable_timeout(match_timeout, false);
	if (match_expired && !cancel_before)
		QueryCancelPending = false;
	return rc;
}

static char *
regex_message(int rc, regex_t *re)
{
	char		buf[256];

	pg_regerror(rc, re, buf, sizeof(buf));
	return pstrdup(buf);
}

/* Compiles pattern into *re in the current memory context; NULL or the engine's words. */
static char *
compile(const char *pattern, regex_t *re)
{
	size_t		len = strlen(pattern);
	pg_wchar   *wide;
	int			wlen;
	int			rc;

	if (len == 0)
		return pstrdup("The pattern is empty: it would match every answer.");
	if (len > S2S_REFUSED_PATTERN_MAX)
		return psprintf("The pattern is %zu bytes long; at most %d are allowed.",
						len, S2S_REFUSED_PATTERN_MAX);
	wide = palloc((len + 1) * sizeof(pg_wchar));
	wlen = pg_mb2wchar_with_len(pattern, wide, (int) len);
	rc = pg_regcomp(re, wide, wlen, REG_EXTENDED | REG_NOSUB, DEFAULT_COLLATION_OID);
	pfree(wide);
	if (rc != REG_OKAY)
		return regex_message(rc, re);
	return NULL;
}

char *
s2s_refused_pattern_problem(const char *pattern)
{
	regex_t		re;
	char	   *problem = compile(pattern, &re);

	if (problem == NULL)
		pg_regfree(&re);
	return problem;
}

static void
forget(CachedPattern *c)
{
	pg_regfree(&c->re);
	MemoryContextDelete(c->cxt);
	memset(c, 0, sizeof(*c));
}

/* The endpoint's compiled pattern, compiled now if needed; NULL and *message on failure. */
static regex_t *
lookup(const char *endpoint, const char *pattern, char **message)
{
	CachedPattern *slot = NULL;
	MemoryContext old;
	char	   *problem;

	for (int i = 0; i < REFUSED_CACHE_SIZE; i++)
	{
		CachedPattern *c = &cache[i];

		if (c->endpoint != NULL && strcmp(c->endpoint, endpoint) == 0)
		{
			if (strcmp(c->pattern, pattern) == 0)
			{
				c->used = ++use_counter;
				return &c->re;
			}
			forget(c);			/* the administrator changed it */
		}
	}
	for (int i = 0; i < REFUSED_CACHE_SIZE; i++)
		if (cache[i].endpoint == NULL)
		{
			slot = &cache[i];
			break;
		}
	if (slot == NULL)
	{
		slot = &cache[0];
		for (int i = 1; i < REFUSED_CACHE_SIZE; i++)
			if (cache[i].used < slot->used)
				slot = &cache[i];
		forget(slot);
	}

	slot->cxt = AllocSetContextCreate(TopMemoryContext, "s2s_tracking refused_pattern",
									  ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(slot->cxt);
	problem = compile(pattern, &slot->re);
	MemoryContextSwitchTo(old);
	if (problem != NULL)
	{
		*message = pstrdup(problem);
		MemoryContextDelete(slot->cxt);
		memset(slot, 0, sizeof(*slot));
		return NULL;
	}
	slot->endpoint = MemoryContextStrdup(slot->cxt, endpoint);
	slot->pattern = MemoryContextStrdup(slot->cxt, pattern);
	slot->used = ++use_counter;
	return &slot->re;
}

S2SRefusal
s2s_refused_match(const char *endpoint, const char *pattern, const char *body, size_t len,
				  char **message)
{
	regex_t    *re;
	pg_wchar   *wide;
	int			wlen;
	int			rc;

	if (pattern == NULL)
		return S2S_REFUSAL_NONE;
	re = lookup(endpoint, pattern, message);
	if (re == NULL)
		return S2S_REFUSAL_UNKNOWN;
	wide = palloc((len + 1) * sizeof(pg_wchar));
	wlen = pg_mb2wchar_with_len(body, wide, (int) len);
	rc = regexec_bounded(re, wide, wlen);
	pfree(wide);
	if (rc == REG_OKAY)
		return S2S_REFUSAL_MATCH;
	if (rc == REG_NOMATCH)
		return S2S_REFUSAL_NONE;
	if (match_expired)
		*message = psprintf("matching took longer than %d ms, the limit", S2S_REFUSED_MATCH_MS);
	else
		*message = regex_message(rc, re);
	return S2S_REFUSAL_UNKNOWN;
}

/*
 * s2s_private.check_refused_pattern(pattern text): raises 2201B (invalid regular
 * expression) unless the worker can compile pattern. The endpoints guard calls it when
 * refused_pattern is set.
 */
Datum
s2s_check_refused_pattern(PG_FUNCTION_ARGS)
{
	char	   *pattern;
	char	   *problem;

	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	pattern = text_to_cstring(PG_GETARG_TEXT_PP(0));
	problem = s2s_refused_pattern_problem(pattern);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_REGULAR_EXPRESSION),
				 errmsg("invalid refused_pattern"),
				 errdetail("%s", problem),
				 errhint("refused_pattern is a POSIX extended regular expression (no back-references), matched against what is kept of a 2xx answer (s2s_tracking.response_limit bytes); NULL turns it off.")));
	PG_RETURN_VOID();
}
