/*
 * fuzz_retry.c
 *		libFuzzer target for src/retry.c: Retry-After parsing, classification and backoff.
 *
 * Input: 8 bytes of numbers (now, attempt, base, max), then the Retry-After header value.
 * Checked: a parsed delay is never negative and a delta-seconds value means what it says;
 * classification always gives a reason; the backoff and the retry delay stay within
 * [1, max_ms]; the schedule never goes back in time nor past the window's end.
 */
#include "postgres.h"

#include "retry.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* now within 1970 .. 2^34 s; GUC ranges for base and max (1 .. INT_MAX ms) */
	int64		now = (int64) fuzz_take(&data, &size, 4) * 4;
	int			attempt = (int) fuzz_take(&data, &size, 2) - 100;
	int64		base_ms = 1 + (int64) (fuzz_take(&data, &size, 4) % PG_INT32_MAX);
	int64		max_ms = 1 + (int64) (fuzz_take(&data, &size, 4) % PG_INT32_MAX);
	long		status = (long) fuzz_take(&data, &size, 2) - 1000;
	int			kind = (int) (fuzz_take(&data, &size, 1) % 6);
	double		r = (double) fuzz_take(&data, &size, 2) / 65536.0;
	char	   *value = fuzz_cstring(data, size);
	int64		delay = -12345;
	bool		ok;
	const char *reason = NULL;
	S2SOutcome	o;
	int64		b;
	int64		d;
	int64		next;

	ok = s2s_parse_retry_after(value, now, &delay);
	if (ok)
	{
		FUZZ_CHECK(delay >= 0, "negative delay %lld", (long long) delay);
		if (value[0] >= '0' && value[0] <= '9' && strlen(value) < 10)
			FUZZ_CHECK(delay == strtoll(value, NULL, 10) * 1000, "delta-seconds %s -> %lld",
					   value, (long long) delay);
	}
	else
		FUZZ_CHECK(delay == -12345, "delay written on failure");

	o = s2s_classify_attempt(status, (HttpErrorKind) kind, &reason);
	FUZZ_CHECK(reason != NULL && reason[0] != '\0', "no reason");
	FUZZ_CHECK(s2s_outcome_name(o) != NULL, "outcome name");
	if (status >= 200 && status < 300)
		FUZZ_CHECK(o == S2S_OUTCOME_SENT, "2xx not sent");

	/* a max below the base is raised to the base (retry.c) */
	b = s2s_backoff_ms(attempt, base_ms, max_ms, r);
	FUZZ_CHECK(b >= 1 && b <= Max(max_ms, base_ms), "backoff %lld outside [1, %lld]",
			   (long long) b, (long long) Max(max_ms, base_ms));
	d = s2s_retry_delay_ms(attempt, base_ms, max_ms, r, ok ? delay : -1);
	FUZZ_CHECK(d >= b && d <= Max(max_ms, base_ms), "delay %lld outside [%lld, %lld]",
			   (long long) d, (long long) b, (long long) Max(max_ms, base_ms));

	{
		int64		now_us = now * 1000000;
		int64		first_us = (attempt & 1) ? 0 : now_us - (int64) (r * 1e12);
		int64		window_ms = (int64) (fuzz_take(&data, &size, 0) + (uint64) base_ms * 100);

		if (s2s_retry_schedule(first_us, now_us, d, window_ms, &next))
		{
			int64		start = first_us ? first_us : now_us;

			FUZZ_CHECK(next >= now_us, "schedule goes back in time");
			FUZZ_CHECK(next <= Max(now_us, start + window_ms * 1000), "schedule past the window");
		}
	}
	fuzz_reset();
	return 0;
}
