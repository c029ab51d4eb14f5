/*
 * click.h
 *		Click IDs and the click-ID cookie (pure): validation, parsing, normalisation and
 *		the Set-Cookie header.
 *
 * Accepted formats
 *  - Affilae (URL parameter aecid): exactly 24 hexadecimal characters, a MongoDB ObjectId
 *    whose first 8 hex digits are the click's Unix time in seconds. Upper-case digits are
 *    accepted and normalised to lower case: ObjectIds are printed in lower case, and one
 *    click must have one spelling so that deduplication works. An ID is valid only while
 *    its embedded time t satisfies  now - ttl <= t <= now + skew  (the attribution window
 *    and the clock-skew allowance).
 *  - Swaarm (URL parameter clkid): 1 to 256 visible ASCII characters (0x21-0x7E), the
 *    very rule s2s.swaarm_click applies to the ID Swaarm's /click answers, so that what it
 *    returns record_click accepts; kept exactly as given; it carries no time, so no time
 *    check.
 *  - Cookie / cids value: Affilae IDs joined by '-'. Parsing drops empty, malformed,
 *    future and expired parts, deduplicates after lower-casing, keeps the max_ids newest
 *    (by embedded time) and returns them oldest first. The result depends only on the set
 *    of IDs, never on their order, so it is a canonical form. Work is O(n log max_ids) and
 *    memory O(max_ids) for an input of n bytes (O(n) memory when max_ids <= 0, no cap).
 *
 * Nothing here reads the catalog or a setting, or reports an error: settings come in as
 * arguments, memory is palloc'd in the caller's memory context, and a problem is returned
 * as a message (a full sentence) for the caller to report. This keeps the module fuzzable.
 */
#ifndef S2S_CLICK_H
#define S2S_CLICK_H

#define S2S_AFFILAE_ID_LEN	24
#define S2S_SWAARM_ID_MAX	256

/* Browsers keep at most 4096 bytes of name + value, and a cookie at most 400 days. */
#define S2S_COOKIE_MAX_BYTES	4096
#define S2S_COOKIE_MAX_AGE_S	(400 * 86400)

typedef enum S2SClickProblem
{
	S2S_CLICK_OK = 0,
	S2S_CLICK_MALFORMED,		/* wrong length or character */
	S2S_CLICK_FUTURE,			/* embedded time beyond now + skew */
	S2S_CLICK_EXPIRED			/* embedded time before now - ttl */
} S2SClickProblem;

/*
 * Format of one Affilae click ID (24 hex digits, either case), no time check.
 * Returns NULL when well-formed, else a palloc'd sentence saying what is wrong
 * ("Expected 24 hexadecimal characters, got 23.").
 */
extern char *s2s_affilae_check_format(const char *id, size_t len);

/* Embedded Unix time (seconds) of a well-formed Affilae click ID. */
extern int64 s2s_affilae_time(const char *id);

/* Lower-cased copy of a well-formed Affilae click ID into out (25 bytes, NUL-terminated). */
extern void s2s_affilae_normalize(const char *id, char *out);

/*
 * Full check of one Affilae click ID: format, then the time window. Returns NULL when
 * valid, else a palloc'd sentence; *problem (if not NULL) says which check failed, and
 * *clicked_s (if not NULL) gets the embedded time whenever the format is valid.
 */
extern char *s2s_affilae_check(const char *id, size_t len, int64 now_s, int64 ttl_s,
							   int64 skew_s, int64 *clicked_s, S2SClickProblem *problem);

/*
 * Format of one Swaarm click ID, from a clkid or from Swaarm's /click answer. Returns NULL
 * when valid, else a palloc'd sentence.
 */
extern char *s2s_swaarm_check(const char *id, size_t len);

/*
 * The valid, unexpired, deduplicated, lower-cased Affilae IDs of a '-'-joined value,
 * oldest first, at most max_ids of them (the newest; max_ids <= 0: no cap). Returns the
 * count; *ids gets a palloc'd array of that many NUL-terminated strings (NULL when 0).
 */
extern int	s2s_cookie_ids(const char *value, size_t len, int64 now_s, int64 ttl_s,
						   int64 skew_s, int max_ids, char ***ids);

/*
 * The same, joined by '-': a palloc'd string, "" when no ID is left; *n_kept (if not
 * NULL) gets the number of IDs in it. Used by s2s.cookie_merge and the orders trigger.
 */
extern char *s2s_cookie_normalize(const char *value, size_t len, int64 now_s, int64 ttl_s,
								  int64 skew_s, int max_ids, int *n_kept);

/*
 * Cookie name: an RFC 6265 token (visible ASCII except separators ()<>@,;:\"/[]?={}),
 * 1 byte or more. Returns NULL when valid, else a palloc'd sentence.
 */
extern char *s2s_cookie_name_check(const char *name, size_t len);

/*
 * Cookie value: RFC 6265 cookie-octets only (visible ASCII except '"', ',', ';', '\'),
 * so no CR, LF, space or control character; may be empty. NULL when valid.
 */
extern char *s2s_cookie_value_check(const char *value, size_t len);

/*
 * The Set-Cookie header value "name=value; Path=/; Max-Age=N; HttpOnly; Secure;
 * SameSite=Lax". Returns NULL and sets *error when the name or value is refused (see the
 * two checks above), name + value exceed S2S_COOKIE_MAX_BYTES, or max_age_s is outside
 * 0 .. S2S_COOKIE_MAX_AGE_S.
 */
extern char *s2s_cookie_header(const char *name, size_t name_len, const char *value,
							   size_t value_len, int64 max_age_s, char **error);

/* "2026-11-23 10:00:00 UTC" and "30 days 1 hour 2 seconds": for messages. */
extern char *s2s_format_unix_time(int64 t);
extern char *s2s_format_duration(int64 s);

#endif							/* S2S_CLICK_H */
