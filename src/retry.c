/*
 * retry.c
 *		Attempt classification, backoff with jitter, Retry-After parsing and the retry
 *		window rule (pure: see retry.h).
 *
 * The policy, in one place:
 *	- 2xx: sent.
 *	- transport errors (network, timeout, TLS), 408, 425, 429, 5xx, 1xx and any status
 *	  outside 100-599: retried with backoff, honouring Retry-After.
 *	- 401, 403, 404: the endpoint is misconfigured (key or token refused, wrong URL): it is
 *	  paused with the reason and its deliveries wait, unburned, until it is resumed.
 *	- 3xx: redirects are not followed (a postback that moved is a configuration matter
 *	  and following it would send the secret to wherever the redirect points): the
 *	  endpoint is paused like a 404, so nothing is burned while the administrator fixes
 *	  the URL.
 *	- a request refused before it was sent (malformed URL, http:// while only https is
 *	  allowed): also a misconfiguration, so a pause.
 *	- any other 4xx: final failure with the reason.
 */
#include "postgres.h"

#include "retry.h"

S2SOutcome
s2s_classify_attempt(long http_status, HttpErrorKind error_kind, const char **reason)
{
	if (http_status >= 100 && http_status <= 599)
	{
		if (http_status >= 200 && http_status <= 299)
		{
			*reason = "delivered";
			return S2S_OUTCOME_SENT;
		}
		switch (http_status)
		{
			case 401:
				*reason = "endpoint answered HTTP 401 Unauthorized: the key or token is not accepted";
				return S2S_OUTCOME_PAUSE;
			case 403:
				*reason = "endpoint answered HTTP 403 Forbidden: the key or token is not allowed";
				return S2S_OUTCOME_PAUSE;
			case 404:
				*reason = "endpoint answered HTTP 404 Not Found: the endpoint URL is wrong";
				return S2S_OUTCOME_PAUSE;
			case 408:
				*reason = "HTTP 408 Request Timeout: will retry";
				return S2S_OUTCOME_RETRY;
			case 425:
				*reason = "HTTP 425 Too Early: will retry";
				return S2S_OUTCOME_RETRY;
			case 429:
				*reason = "HTTP 429 Too Many Requests: will retry";
				return S2S_OUTCOME_RETRY;
		}
		if (http_status >= 300 && http_status <= 399)
		{
			*reason = "endpoint answered with a redirect, which is not followed: the endpoint URL is probably outdated";
			return S2S_OUTCOME_PAUSE;
		}
		if (http_status >= 400 && http_status <= 499)
		{
			*reason = "the receiver refused the request (HTTP 4xx): not retried";
			return S2S_OUTCOME_FAILED;
		}
		if (http_status >= 500)
		{
			*reason = "server error (HTTP 5xx): will retry";
			return S2S_OUTCOME_RETRY;
		}
		*reason = "informational HTTP status without a final answer: will retry";
		return S2S_OUTCOME_RETRY;
	}
	if (http_status != 0)
	{
		*reason = "invalid HTTP status: will retry";
		return S2S_OUTCOME_RETRY;
	}

	switch (error_kind)
	{
		case HTTP_ERROR_TIMEOUT:
			*reason = "timeout: will retry";
			return S2S_OUTCOME_RETRY;
		case HTTP_ERROR_TLS:
			*reason = "TLS error: will retry";
			return S2S_OUTCOME_RETRY;
		case HTTP_ERROR_REFUSED:
			*reason = "request refused before sending: the endpoint URL is malformed or its protocol is not allowed";
			return S2S_OUTCOME_PAUSE;
		case HTTP_ERROR_NONE:
			/* neither a status nor an error: treat as a lost answer */
			*reason = "no HTTP answer: will retry";
			return S2S_OUTCOME_RETRY;
		case HTTP_ERROR_NETWORK:
		case HTTP_ERROR_INTERNAL:
			break;
	}
	*reason = "network error: will retry";
	return S2S_OUTCOME_RETRY;
}

const char *
s2s_outcome_name(S2SOutcome outcome)
{
	switch (outcome)
	{
		case S2S_OUTCOME_SENT:
			return "sent";
		case S2S_OUTCOME_RETRY:
			return "retry";
		case S2S_OUTCOME_FAILED:
			return "failed";
		case S2S_OUTCOME_PAUSE:
			return "pause";
	}
	return "retry";
}

/*
 * Jitter over the upper half of the exponential delay ("equal jitter") rather than over
 * [0, exp] ("full jitter"): full jitter sometimes retries at once, which hammers a
 * receiver that has just said it is overloaded, while half of the range is enough to
 * spread a burst of deliveries that all failed together.
 */
int64
s2s_backoff_ms(int attempt, int64 base_ms, int64 max_ms, double rand01)
{
	int64		exp_ms;
	int64		delay;

	if (base_ms < 1)
		base_ms = 1;
	if (max_ms < base_ms)
		max_ms = base_ms;
	if (attempt < 1)
		attempt = 1;
	if (!(rand01 >= 0.0))		/* also catches NaN */
		rand01 = 0.0;
	if (rand01 >= 1.0)
		rand01 = 1.0;

	/* doubling stops at the cap, so this loop runs at most 63 times */
	exp_ms = base_ms;
	for (int i = 1; i < attempt && exp_ms < max_ms; i++)
		exp_ms = (exp_ms > max_ms / 2) ? max_ms : exp_ms * 2;
	if (exp_ms > max_ms)
		exp_ms = max_ms;

	delay = exp_ms / 2 + (int64) ((double) (exp_ms - exp_ms / 2) * rand01);
	if (delay > max_ms)
		delay = max_ms;
	if (delay < 1)
		delay = 1;
	return delay;
}

int64
s2s_retry_delay_ms(int attempt, int64 base_ms, int64 max_ms, double rand01,
				   int64 retry_after_ms)
{
	int64		delay = s2s_backoff_ms(attempt, base_ms, max_ms, rand01);

	if (retry_after_ms >= 0)
	{
		int64		cap = (max_ms < base_ms) ? base_ms : max_ms;

		if (retry_after_ms > cap)
			retry_after_ms = cap;
		if (retry_after_ms > delay)
			delay = retry_after_ms;
	}
	return delay;
}

/* ---- Retry-After ---- */

#define RA_MAX_LEN 64
#define RA_MAX_DELTA_S ((int64) 1000000000)	/* about 31 years */

static const char *const wkday_short[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const wkday_long[] = {"Monday", "Tuesday", "Wednesday", "Thursday",
"Friday", "Saturday", "Sunday"};
static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
"Aug", "Sep", "Oct", "Nov", "Dec"};

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Matches a literal; advances *p. */
static bool
eat(const char **p, const char *lit)
{
	size_t		n = strlen(lit);

	if (strncmp(*p, lit, n) != 0)
		return false;
	*p += n;
	return true;
}

/* Exactly ndigits digits. */
static bool
eat_num(const char **p, int ndigits, int *out)
{
	int			v = 0;

	for (int i = 0; i < ndigits; i++)
	{
		if (!is_digit((*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += ndigits;
	*out = v;
	return true;
}

static bool
eat_name(const char **p, const char *const *names, int n, int *index)
{
	for (int i = 0; i < n; i++)
	{
		if (eat(p, names[i]))
		{
			*index = i;
			return true;
		}
	}
	return false;
}

/* "HH:MM:SS" */
static bool
eat_time(const char **p, int *h, int *m, int *s)
{
	return eat_num(p, 2, h) && eat(p, ":") && eat_num(p, 2, m) && eat(p, ":") &&
		eat_num(p, 2, s) && *h <= 23 && *m <= 59 && *s <= 60;
}

static bool
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a valid civil date (Howard Hinnant's algorithm). */
static int64
days_from_civil(int y, int m, int d)
{
	int64		era;
	int64		yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool
valid_date(int y, int mon0, int d)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (y < 1900 || y > 9999 || mon0 < 0 || mon0 > 11 || d < 1)
		return false;
	return d <= mdays[mon0] + (mon0 == 1 && is_leap(y) ? 1 : 0);
}

/* IMF-fixdate, RFC 850 or asctime; sets *unix_s. The whole string must be consumed. */
static bool
parse_http_date(const char *p, int64 *unix_s)
{
	int			wd,
				d,
				mon,
				y,
				h,
				mi,
				s;

	if (eat_name(&p, wkday_long, 7, &wd))
	{
		/* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
		if (!(eat(&p, ", ") && eat_num(&p, 2, &d) && eat(&p, "-") &&
			  eat_name(&p, month_names, 12, &mon) && eat(&p, "-") && eat_num(&p, 2, &y) &&
			  eat(&p, " ") && eat_time(&p, &h, &mi, &s) && eat(&p, " GMT")))
			return false;
		/* two-digit years: 70-99 are 19xx, 00-69 are 20xx (RFC 7231 leaves it to us) */
		y += (y >= 70) ? 1900 : 2000;
	}
	else if (eat_name(&p, wkday_short, 7, &wd))
	{
		if (eat(&p, ", "))
		{
			/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
			if (!(eat_num(&p, 2, &d) && eat(&p, " ") &&
				  eat_name(&p, month_names, 12, &mon) && eat(&p, " ") &&
				  eat_num(&p, 4, &y) && eat(&p, " ") && eat_time(&p, &h, &mi, &s) &&
				  eat(&p, " GMT")))
				return false;
		}
		else
		{
			/* asctime: Sun Nov  6 08:49:37 1994 */
			if (!(eat(&p, " ") && eat_name(&p, month_names, 12, &mon) && eat(&p, " ")))
				return false;
			if (*p == ' ')
			{
				p++;
				if (!eat_num(&p, 1, &d))
					return false;
			}
			else if (!eat_num(&p, 2, &d))
				return false;
			if (!(eat(&p, " ") && eat_time(&p, &h, &mi, &s) && eat(&p, " ") &&
				  eat_num(&p, 4, &y)))
				return false;
		}
	}
	else
		return false;

	if (*p != '\0' || !valid_date(y, mon, d))
		return false;
	*unix_s = days_from_civil(y, mon + 1, d) * 86400 + h * 3600 + mi * 60 + s;
	return true;
}

bool
s2s_parse_retry_after(const char *value, int64 now_unix_s, int64 *delay_ms)
{
	char		buf[RA_MAX_LEN + 1];
	const char *start;
	size_t		len;

	if (value == NULL)
		return false;

	/* trim optional whitespace around the field value */
	start = value;
	while (*start == ' ' || *start == '\t')
		start++;
	len = strnlen(start, RA_MAX_LEN + 1);
	if (len > RA_MAX_LEN)
		return false;
	while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t' ||
					   start[len - 1] == '\r' || start[len - 1] == '\n'))
		len--;
	if (len == 0)
		return false;
	memcpy(buf, start, len);
	buf[len] = '\0';

	if (is_digit(buf[0]))
	{
		int64		secs = 0;

		for (size_t i = 0; i < len; i++)
		{
			if (!is_digit(buf[i]))
				return false;
			if (secs < RA_MAX_DELTA_S)
				secs = secs * 10 + (buf[i] - '0');
		}
		if (secs > RA_MAX_DELTA_S)
			secs = RA_MAX_DELTA_S;
		*delay_ms = secs * 1000;
		return true;
	}
	else
	{
		int64		when;

		if (!parse_http_date(buf, &when))
			return false;
		*delay_ms = (when > now_unix_s) ? (when - now_unix_s) * 1000 : 0;
		return true;
	}
}

bool
s2s_retry_schedule(int64 first_attempt_us, int64 now_us, int64 delay_ms, int64 window_ms,
				   int64 *next_attempt_us)
{
	int64		end_us;
	int64		next;

	if (first_attempt_us == 0)
		first_attempt_us = now_us;
	if (window_ms < 0)
		window_ms = 0;
	if (delay_ms < 0)
		delay_ms = 0;
	/* saturate rather than overflow: windows and delays are at most years */
	if (window_ms > INT64CONST(1000000000000000) / 1000)
		window_ms = INT64CONST(1000000000000000) / 1000;
	if (delay_ms > INT64CONST(1000000000000000) / 1000)
		delay_ms = INT64CONST(1000000000000000) / 1000;

	end_us = first_attempt_us + window_ms * 1000;
	if (now_us >= end_us)
		return false;
	next = now_us + delay_ms * 1000;
	if (next > end_us)
		next = end_us;
	*next_attempt_us = next;
	return true;
}
