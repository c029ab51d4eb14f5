/*
 * refused.h
 *		A 2xx answer that says the conversion was refused: an endpoint's refused_pattern
 *		(a POSIX extended regular expression) compiled with PostgreSQL's regex engine, and
 *		matched against what a receiver answered.
 *
 * No catalog and no network access, and nothing here raises an error: a pattern that does
 * not compile, or a match the engine cannot finish (out of memory, longer than
 * S2S_REFUSED_MATCH_MS), is reported as a message for the caller to record. So the worker
 * can judge a result outside any transaction, and the endpoints guard
 * (s2s_private.check_refused_pattern) compiles exactly as the worker does.
 */
#ifndef S2S_REFUSED_H
#define S2S_REFUSED_H

/* Longest refused_pattern accepted, in bytes. */
#define S2S_REFUSED_PATTERN_MAX 1024

/* Longest a body is matched against a pattern, in milliseconds (refused.c says why). */
#define S2S_REFUSED_MATCH_MS 250

/* Longest part of a refusing body quoted in the delivery's last_error, in bytes. */
#define S2S_REFUSED_REASON_MAX 1024

typedef enum S2SRefusal
{
	S2S_REFUSAL_NONE,			/* no pattern, or the body does not match it */
	S2S_REFUSAL_MATCH,			/* the body matches: the network refused the conversion */
	S2S_REFUSAL_UNKNOWN			/* the pattern could not be compiled or run: *message says why */
} S2SRefusal;

/*
 * Whether pattern compiles as the worker compiles it (ERE, the database's collation, at
 * most S2S_REFUSED_PATTERN_MAX bytes, not empty). NULL when it does, else a palloc'd
 * sentence saying what is wrong.
 */
extern char *s2s_refused_pattern_problem(const char *pattern);

/*
 * Matches body (len bytes, valid in the database encoding) against the endpoint's
 * pattern, compiled once per endpoint and pattern and kept for the life of the process
 * (a few entries; a changed pattern is compiled again). With S2S_REFUSAL_UNKNOWN,
 * *message is a palloc'd sentence.
 */
extern S2SRefusal s2s_refused_match(const char *endpoint, const char *pattern,
									const char *body, size_t len, char **message);

#endif							/* S2S_REFUSED_H */
