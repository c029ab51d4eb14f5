/*
 * retry.h
 *		What one HTTP attempt means for its delivery, and when to try again (pure).
 *
 * No catalog, GUC, network or ereport here: the worker passes the settings in and records
 * what these functions decide. Times are plain integers so that the functions can be
 * tested (and fuzzed) on their own.
 */
#ifndef S2S_RETRY_H
#define S2S_RETRY_H

#include "http.h"

/* The decision for one attempt. */
typedef enum S2SOutcome
{
	S2S_OUTCOME_SENT,			/* 2xx: delivered */
	S2S_OUTCOME_RETRY,			/* transient: try again after a backoff */
	S2S_OUTCOME_FAILED,			/* final: the receiver refused this delivery */
	S2S_OUTCOME_PAUSE			/* the endpoint is misconfigured: pause it; the delivery
								 * waits, its attempt not counted against it */
} S2SOutcome;

/*
 * Classifies an attempt by the HTTP status that arrived (0 when none) and the transport
 * error kind. A response whose status line arrived is judged by its status even if
 * reading the rest of its body failed: the receiver has decided. *reason (never NULL on
 * return; static text without URL or secret) says why, for last_error or pause_reason.
 */
extern S2SOutcome s2s_classify_attempt(long http_status, HttpErrorKind error_kind,
									   const char **reason);

/* "sent", "retry", "failed" or "pause". */
extern const char *s2s_outcome_name(S2SOutcome outcome);

/*
 * Backoff before retry number "attempt" (1 = the delay after the first failed attempt):
 * exp = min(max_ms, base_ms * 2^(attempt-1)), and a delay drawn uniformly in
 * [exp/2, exp] from rand01 in [0, 1). Never more than max_ms, never less than 1.
 */
extern int64 s2s_backoff_ms(int attempt, int64 base_ms, int64 max_ms, double rand01);

/*
 * The delay before the next attempt: the backoff, or longer when the receiver asked for
 * it with Retry-After (retry_after_ms >= 0; -1 when absent), which is honoured up to
 * max_ms: a receiver cannot park a delivery beyond our own longest delay.
 */
extern int64 s2s_retry_delay_ms(int attempt, int64 base_ms, int64 max_ms, double rand01,
								int64 retry_after_ms);

/*
 * Parses a Retry-After value: delta-seconds, or an HTTP-date (IMF-fixdate, RFC 850 or
 * asctime format, GMT) taken relative to now_unix_s. Sets *delay_ms (0 for a date in
 * the past; delta-seconds saturate at about 31 years). Returns false on anything else,
 * including values longer than 64 bytes. The caller caps the result.
 */
extern bool s2s_parse_retry_after(const char *value, int64 now_unix_s, int64 *delay_ms);

/*
 * The retry window rule. first_attempt_us is when the delivery was first attempted (0 if
 * this attempt was its first: now_us is used), now_us the current time, delay_ms the
 * chosen delay, window_ms how long a delivery may keep being retried. Returns false when
 * the window is over (the delivery fails); else true with *next_attempt_us set: now plus
 * the delay, but no later than the end of the window, so that a delivery is always tried
 * once more right at the end of its window before it fails. Times in microseconds (the
 * unit of TimestampTz; any epoch).
 */
extern bool s2s_retry_schedule(int64 first_attempt_us, int64 now_us, int64 delay_ms,
							   int64 window_ms, int64 *next_attempt_us);

#endif							/* S2S_RETRY_H */
