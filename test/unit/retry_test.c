/*
 * retry_test.c
 *		Unit tests of src/retry.c: classification, backoff, Retry-After and the retry
 *		window rule. Standalone: built and run by "make check-unit".
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "unit.h"
#include "retry.h"

static void
test_classify(void)
{
	static const struct
	{
		long		status;
		HttpErrorKind kind;
		S2SOutcome	want;
	}			cases[] = {
		{200, HTTP_ERROR_NONE, S2S_OUTCOME_SENT},
		{201, HTTP_ERROR_NONE, S2S_OUTCOME_SENT},
		{204, HTTP_ERROR_NONE, S2S_OUTCOME_SENT},
		{299, HTTP_ERROR_NONE, S2S_OUTCOME_SENT},
		/* the status line arrived, then the body failed: the receiver decided */
		{200, HTTP_ERROR_TIMEOUT, S2S_OUTCOME_SENT},
		{408, HTTP_ERROR_NONE, S2S_OUTCOME_RETRY},
		{425, HTTP_ERROR_NONE, S2S_OUTCOME_RETRY},
		{429, HTTP_ERROR_NONE, S2S_OUTCOME_RETRY},
		{500, HTTP_ERROR_NONE, S2S_OUTCOME_RETRY},
		{502, HTTP_ERROR_NONE, S2S_OUTCOME_RETRY},
		{503, HTTP_ERROR_NONE, S2S_OUTCOME_RETRY},
		{504, HTTP_ERROR_NONE, S2S_OUTCOME_RETRY},
		{599, HTTP_ERROR_NONE, S2S_OUTCOME_RETRY},
		{100, HTTP_ERROR_NONE, S2S_OUTCOME_RETRY},
		{600, HTTP_ERROR_NONE, S2S_OUTCOME_RETRY},
		{-1, HTTP_ERROR_NONE, S2S_OUTCOME_RETRY},
		{401, HTTP_ERROR_NONE, S2S_OUTCOME_PAUSE},
		{403, HTTP_ERROR_NONE, S2S_OUTCOME_PAUSE},
		{404, HTTP_ERROR_NONE, S2S_OUTCOME_PAUSE},
		{301, HTTP_ERROR_NONE, S2S_OUTCOME_PAUSE},
		{302, HTTP_ERROR_NONE, S2S_OUTCOME_PAUSE},
		{307, HTTP_ERROR_NONE, S2S_OUTCOME_PAUSE},
		{308, HTTP_ERROR_NONE, S2S_OUTCOME_PAUSE},
		{400, HTTP_ERROR_NONE, S2S_OUTCOME_FAILED},
		{405, HTTP_ERROR_NONE, S2S_OUTCOME_FAILED},
		{409, HTTP_ERROR_NONE, S2S_OUTCOME_FAILED},
		{410, HTTP_ERROR_NONE, S2S_OUTCOME_FAILED},
		{422, HTTP_ERROR_NONE, S2S_OUTCOME_FAILED},
		{499, HTTP_ERROR_NONE, S2S_OUTCOME_FAILED},
		{0, HTTP_ERROR_TIMEOUT, S2S_OUTCOME_RETRY},
		{0, HTTP_ERROR_NETWORK, S2S_OUTCOME_RETRY},
		{0, HTTP_ERROR_TLS, S2S_OUTCOME_RETRY},
		{0, HTTP_ERROR_INTERNAL, S2S_OUTCOME_RETRY},
		{0, HTTP_ERROR_NONE, S2S_OUTCOME_RETRY},
		{0, HTTP_ERROR_REFUSED, S2S_OUTCOME_PAUSE},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const char *reason = NULL;
		S2SOutcome	got = s2s_classify_attempt(cases[i].status, cases[i].kind, &reason);
		char		what[128];

		snprintf(what, sizeof(what), "classify status %ld kind %d -> %s",
				 cases[i].status, (int) cases[i].kind, s2s_outcome_name(cases[i].want));
		CHECK_EQ_STR(s2s_outcome_name(got), s2s_outcome_name(cases[i].want), what);
		CHECK(reason != NULL && reason[0] != '\0', "  with a reason");
	}

	{
		const char *reason;

		s2s_classify_attempt(401, HTTP_ERROR_NONE, &reason);
		CHECK(strstr(reason, "401") != NULL, "401's pause reason names the status: %s", reason);
		s2s_classify_attempt(404, HTTP_ERROR_NONE, &reason);
		CHECK(strstr(reason, "404") != NULL, "404's pause reason names the status: %s", reason);
	}
}

static void
test_backoff(void)
{
	const int64 base = 1000,
				max = 3600 * 1000;
	bool		in_range = true,
				monotone_bounds = true;

	CHECK_EQ_INT(s2s_backoff_ms(1, base, max, 0.0), 500, "attempt 1, rand 0: half the base");
	CHECK_EQ_INT(s2s_backoff_ms(1, base, max, 0.5), 750, "attempt 1, rand 0.5");
	CHECK_EQ_INT(s2s_backoff_ms(1, base, max, 1.0), 1000, "attempt 1, rand 1: the base");
	CHECK_EQ_INT(s2s_backoff_ms(2, base, max, 0.0), 1000, "attempt 2 doubles");
	CHECK_EQ_INT(s2s_backoff_ms(3, base, max, 1.0), 4000, "attempt 3: 4x base at most");
	CHECK_EQ_INT(s2s_backoff_ms(13, base, max, 1.0), max, "attempt 13 reaches the cap");
	CHECK_EQ_INT(s2s_backoff_ms(1000, base, max, 0.0), max / 2, "attempt 1000: at least half the cap");
	CHECK_EQ_INT(s2s_backoff_ms(INT_MAX, base, max, 1.0), max, "attempt INT_MAX: the cap, no overflow");
	CHECK_EQ_INT(s2s_backoff_ms(0, base, max, 1.0), base, "attempt 0 counts as 1");
	CHECK_EQ_INT(s2s_backoff_ms(-5, base, max, 1.0), base, "negative attempt counts as 1");
	CHECK_EQ_INT(s2s_backoff_ms(5, 5000, 100, 1.0), 5000, "max below base: base wins");
	CHECK_EQ_INT(s2s_backoff_ms(1, 0, 0, 0.0), 1, "zero base: at least 1 ms");
	CHECK_EQ_INT(s2s_backoff_ms(2, base, max, NAN), 1000, "NaN rand treated as 0");
	CHECK_EQ_INT(s2s_backoff_ms(2, base, max, 7.0), 2000, "rand above 1 treated as 1");
	CHECK_EQ_INT(s2s_backoff_ms(70, INT64_MAX / 2, INT64_MAX, 1.0), INT64_MAX,
				 "huge base and cap: no overflow");

	for (int a = 1; a <= 200; a++)
	{
		for (int r = 0; r <= 10; r++)
		{
			int64		d = s2s_backoff_ms(a, base, max, r / 10.0);

			if (d < 1 || d > max)
				in_range = false;
			/* the lower bound of attempt a+1 is at least the lower bound of attempt a */
			if (s2s_backoff_ms(a + 1, base, max, 0.0) < s2s_backoff_ms(a, base, max, 0.0))
				monotone_bounds = false;
		}
	}
	CHECK(in_range, "every backoff within [1, max] for attempts 1-200");
	CHECK(monotone_bounds, "backoff never shrinks as attempts grow");

	CHECK_EQ_INT(s2s_retry_delay_ms(1, base, max, 0.0, -1), 500, "no Retry-After: the backoff");
	CHECK_EQ_INT(s2s_retry_delay_ms(1, base, max, 0.0, 5000), 5000, "Retry-After longer than the backoff is honoured");
	CHECK_EQ_INT(s2s_retry_delay_ms(10, base, max, 0.0, 5000), s2s_backoff_ms(10, base, max, 0.0),
				 "Retry-After shorter than the backoff: the backoff");
	CHECK_EQ_INT(s2s_retry_delay_ms(1, base, max, 0.0, INT64_MAX), max, "Retry-After capped at max");
	CHECK_EQ_INT(s2s_retry_delay_ms(1, base, max, 0.0, 0), 500, "Retry-After 0: the backoff");
}

static void
check_ra(const char *value, int64 now, bool want_ok, int64 want_ms)
{
	int64		got = -12345;
	bool		ok = s2s_parse_retry_after(value, now, &got);
	char		what[200];

	snprintf(what, sizeof(what), "Retry-After \"%s\" %s", value ? value : "(null)",
			 want_ok ? "parses" : "is refused");
	/* keep the TAP line on one line */
	for (char *c = what; *c; c++)
		if (*c == '\r' || *c == '\n')
			*c = '~';
	if (!want_ok)
	{
		CHECK(!ok && got == -12345, "%s", what);
		return;
	}
	if (!CHECK(ok && got == want_ms, "%s", what))
		printf("#   ok=%d got %lld want %lld\n", ok, (long long) got, (long long) want_ms);
}

static void
test_retry_after(void)
{
	const int64 t1994 = 784111777;	/* Sun, 06 Nov 1994 08:49:37 GMT */
	char		longv[100];

	check_ra("120", 0, true, 120000);
	check_ra("0", 0, true, 0);
	check_ra(" 5 ", 0, true, 5000);
	check_ra("5\r\n", 0, true, 5000);
	check_ra("007", 0, true, 7000);
	check_ra("99999999999999999999999", 0, true, (int64) 1000000000 * 1000);
	check_ra("", 0, false, 0);
	check_ra("   ", 0, false, 0);
	check_ra(NULL, 0, false, 0);
	check_ra("abc", 0, false, 0);
	check_ra("-5", 0, false, 0);
	check_ra("1.5", 0, false, 0);
	check_ra("12a", 0, false, 0);
	check_ra("1 2", 0, false, 0);

	check_ra("Sun, 06 Nov 1994 08:49:37 GMT", t1994 - 10, true, 10000);
	check_ra("Sunday, 06-Nov-94 08:49:37 GMT", t1994 - 10, true, 10000);
	check_ra("Sun Nov  6 08:49:37 1994", t1994 - 10, true, 10000);
	check_ra("Sun Nov 16 08:49:37 1994", t1994, true, 10 * 86400 * 1000LL);
	check_ra("Sun, 06 Nov 1994 08:49:37 GMT", t1994 + 3600, true, 0);
	check_ra("Tue, 01 Jan 2030 00:00:00 GMT", 1893456000 - 2, true, 2000);
	check_ra("Thu, 29 Feb 2024 12:00:00 GMT", 1709208000 - 1, true, 1000);
	check_ra("Thursday, 01-Jan-70 00:00:01 GMT", 0, true, 1000);
	check_ra("Wed, 29 Feb 2023 12:00:00 GMT", 0, false, 0);
	check_ra("Sun, 31 Apr 2025 00:00:00 GMT", 0, false, 0);
	check_ra("Sun, 06 Nov 1994 24:00:00 GMT", 0, false, 0);
	check_ra("Sun, 06 Nov 1994 08:60:00 GMT", 0, false, 0);
	check_ra("Sun, 06 Nov 1994 08:49:37", 0, false, 0);
	check_ra("Sun, 06 Nov 1994 08:49:37 GMT x", 0, false, 0);
	check_ra("Sun, 06 Nov 1994 08:49:37 UTC", 0, false, 0);
	check_ra("sun, 06 Nov 1994 08:49:37 GMT", 0, false, 0);
	check_ra("Sun, 6 Nov 1994 08:49:37 GMT", 0, false, 0);
	check_ra("Sun, 06 Foo 1994 08:49:37 GMT", 0, false, 0);
	check_ra("Sun, 06 Nov 0994 08:49:37 GMT", 0, false, 0);
	check_ra("Sun Nov  6 08:49:37", 0, false, 0);
	check_ra("Sunday, 06-Nov-1994 08:49:37 GMT", 0, false, 0);
	check_ra("Sun,", 0, false, 0);

	memset(longv, '1', 65);
	longv[65] = '\0';
	check_ra(longv, 0, false, 0);
	longv[64] = '\0';
	check_ra(longv, 0, true, (int64) 1000000000 * 1000);

	/* every prefix of a valid date is refused and nothing reads past the end */
	{
		const char *full = "Sun, 06 Nov 1994 08:49:37 GMT";
		bool		all_refused = true;

		for (size_t n = 0; n < strlen(full); n++)
		{
			char		buf[64];
			int64		d;

			memcpy(buf, full, n);
			buf[n] = '\0';
			if (s2s_parse_retry_after(buf, 0, &d))
				all_refused = false;
		}
		CHECK(all_refused, "every truncation of an IMF-fixdate is refused");
	}
}

/* Random strings built from date-like pieces: never a crash, never a negative delay. */
static void
test_retry_after_random(void)
{
	static const char *const pieces[] = {"Sun", "Sunday", ", ", " ", "-", ":", "GMT", "Nov",
		"06", "6", "1994", "94", "08", "49", "37", "99999999999", "\t", "\r\n", "x", "0", "60",
	"29", "Feb", "2024", "1900", "9999", "Thursday", "Jan"};
	unsigned int seed = 12345;
	bool		sane = true;
	int			accepted = 0;

	for (int i = 0; i < 200000; i++)
	{
		char		buf[128];
		size_t		len = 0;
		int			npieces;
		int64		d = -1;

		seed = seed * 1103515245 + 12345;
		npieces = (int) ((seed >> 16) % 12);
		buf[0] = '\0';
		for (int k = 0; k < npieces; k++)
		{
			const char *p;
			size_t		plen;

			seed = seed * 1103515245 + 12345;
			p = pieces[(seed >> 16) % (sizeof(pieces) / sizeof(pieces[0]))];
			plen = strlen(p);
			if (len + plen >= sizeof(buf))
				break;
			memcpy(buf + len, p, plen + 1);
			len += plen;
		}
		if (s2s_parse_retry_after(buf, 784111777, &d))
		{
			accepted++;
			if (d < 0)
				sane = false;
		}
	}
	CHECK(sane, "200000 random Retry-After values: no negative delay (%d accepted)", accepted);
}

static void
test_schedule(void)
{
	const int64 s = 1000000;	/* one second in microseconds */
	const int64 window = 72 * 3600 * 1000LL;
	int64		next = -1;

	CHECK(s2s_retry_schedule(0, 1000 * s, 10000, window, &next) && next == 1010 * s,
		  "first attempt: next = now + delay");
	CHECK(s2s_retry_schedule(1000 * s, 5000 * s, 10000, window, &next) && next == 5010 * s,
		  "inside the window: now + delay");
	next = -1;
	CHECK(s2s_retry_schedule(0, 1000 * s, 80 * 3600 * 1000LL, window, &next) &&
		  next == 1000 * s + window * 1000,
		  "a delay past the window end is cut to the end: one last try");
	CHECK(!s2s_retry_schedule(1000 * s, 1000 * s + window * 1000, 10000, window, &next),
		  "at the window end: fails");
	CHECK(!s2s_retry_schedule(1000 * s, 1000 * s + window * 1000 + 1, 10000, window, &next),
		  "past the window end: fails");
	CHECK(s2s_retry_schedule(1000 * s, 1000 * s + window * 1000 - 1, 10000, window, &next) &&
		  next == 1000 * s + window * 1000,
		  "just before the end: retried at the end");
	CHECK(!s2s_retry_schedule(0, 1000 * s, 10000, 0, &next), "window 0: fails at once");
	CHECK(s2s_retry_schedule(0, 1000 * s, -5, window, &next) && next == 1000 * s,
		  "negative delay counts as 0");
	CHECK(s2s_retry_schedule(0, 1000 * s, INT64_MAX, INT64_MAX, &next) && next > 1000 * s,
		  "huge delay and window: no overflow");
}

int
main(void)
{
	test_classify();
	test_backoff();
	test_retry_after();
	test_retry_after_random();
	test_schedule();
	return unit_done("retry_test");
}
