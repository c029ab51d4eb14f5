/*
 * click.c
 *		Click IDs and the click-ID cookie (pure): see click.h for the accepted formats.
 *
 * No catalog, setting or ereport here: the SQL layer (click_sql.c) and the orders trigger
 * pass the settings in and report the messages returned.
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "click.h"
#include "hex.h"

/* Keeps "now - t" far from int64 overflow whatever a caller (or a fuzzer) passes. */
#define CLAMP_NOW(now) ((now) > (INT64CONST(1) << 62) ? (INT64CONST(1) << 62) : \
						(now) < -(INT64CONST(1) << 62) ? -(INT64CONST(1) << 62) : (now))

/*
 * How a refused byte is named in a message. Only the first refused byte is ever
 * described, and every byte before it is printable ASCII, so its 1-based byte position is
 * also its character position whatever the encoding.
 */
static char *
describe_byte(unsigned char c)
{
	switch (c)
	{
		case ' ':
			return pstrdup("a space");
		case '\r':
			return pstrdup("a carriage return (0x0D)");
		case '\n':
			return pstrdup("a line feed (0x0A)");
		case '\t':
			return pstrdup("a tab (0x09)");
		default:
			break;
	}
	if (c < 0x20 || c == 0x7f)
		return psprintf("a control character (0x%02X)", c);
	if (c >= 0x80)
		return pstrdup("a non-ASCII character");
	return psprintf("\"%c\"", c);
}

static bool
all_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char) s[i] >= 0x80)
			return false;
	return true;
}

char *
s2s_affilae_check_format(const char *id, size_t len)
{
	size_t		head = Min(len, S2S_AFFILAE_ID_LEN);

	if (len == 0)
		return pstrdup("The click ID is empty.");

	/* A wrong character among the first 24 is the clearest thing to report. */
	for (size_t i = 0; i < head; i++)
		if (s2s_hex_value((unsigned char) id[i]) < 0)
			return psprintf("Character %zu is %s, not a hexadecimal digit.",
							i + 1, describe_byte((unsigned char) id[i]));

	if (len < S2S_AFFILAE_ID_LEN || all_ascii(id, len))
	{
		if (len != S2S_AFFILAE_ID_LEN)
			return psprintf("Expected %d hexadecimal characters, got %zu.",
							S2S_AFFILAE_ID_LEN, len);
		return NULL;
	}
	return psprintf("Expected %d hexadecimal characters, got a longer value.",
					S2S_AFFILAE_ID_LEN);
}

int64
s2s_affilae_time(const char *id)
{
	uint32		t = 0;

	for (int i = 0; i < 8; i++)
		t = (t << 4) | (uint32) s2s_hex_value((unsigned char) id[i]);
	return (int64) t;
}

void
s2s_affilae_normalize(const char *id, char *out)
{
	for (int i = 0; i < S2S_AFFILAE_ID_LEN; i++)
	{
		char		c = id[i];

		out[i] = (c >= 'A' && c <= 'F') ? (char) (c - 'A' + 'a') : c;
	}
	out[S2S_AFFILAE_ID_LEN] = '\0';
}

char *
s2s_format_unix_time(int64 t)
{
	int64		days = t / 86400;
	int64		secs = t % 86400;
	int64		z,
				era,
				doe,
				yoe,
				y,
				doy,
				mp,
				d,
				m;

	if (secs < 0)
	{
		secs += 86400;
		days -= 1;
	}
	/* days since 1970-01-01 -> civil date (proleptic Gregorian, H. Hinnant's method) */
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	if (m <= 2)
		y++;
	return psprintf("%04lld-%02lld-%02lld %02lld:%02lld:%02lld UTC",
					(long long) y, (long long) m, (long long) d,
					(long long) (secs / 3600), (long long) (secs % 3600 / 60),
					(long long) (secs % 60));
}

char *
s2s_format_duration(int64 s)
{
	static const struct
	{
		uint64		secs;
		const char *name;
	}			units[] = {{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};
	uint64		a = s < 0 ? (uint64) 0 - (uint64) s : (uint64) s;
	bool		first = true;
	StringInfoData buf;

	initStringInfo(&buf);
	if (s < 0)
		appendStringInfoChar(&buf, '-');
	if (a == 0)
		appendStringInfoString(&buf, "0 seconds");
	for (int i = 0; i < lengthof(units); i++)
	{
		uint64		n = a / units[i].secs;

		a %= units[i].secs;
		if (n > 0)
		{
			appendStringInfo(&buf, "%s%llu %s%s", first ? "" : " ",
							 (unsigned long long) n, units[i].name, n == 1 ? "" : "s");
			first = false;
		}
	}
	return buf.data;
}

/* Where t stands against the window [now - ttl, now + skew]; now already clamped. */
static inline S2SClickProblem
check_window(int64 t, int64 now_s, int64 ttl_s, int64 skew_s)
{
	int64		age = now_s - t;

	if (age < 0 && -age > skew_s)
		return S2S_CLICK_FUTURE;
	if (age > ttl_s)
		return S2S_CLICK_EXPIRED;
	return S2S_CLICK_OK;
}

char *
s2s_affilae_check(const char *id, size_t len, int64 now_s, int64 ttl_s, int64 skew_s,
				  int64 *clicked_s, S2SClickProblem *problem)
{
	char	   *msg = s2s_affilae_check_format(id, len);
	int64		t;
	S2SClickProblem p;

	if (msg != NULL)
	{
		if (problem)
			*problem = S2S_CLICK_MALFORMED;
		return msg;
	}
	t = s2s_affilae_time(id);
	if (clicked_s)
		*clicked_s = t;
	now_s = CLAMP_NOW(now_s);
	p = check_window(t, now_s, ttl_s, skew_s);
	if (problem)
		*problem = p;
	if (p == S2S_CLICK_FUTURE)
		return psprintf("Its embedded time, %s, is %s ahead of the server's clock; the allowance for clock skew is %s.",
						s2s_format_unix_time(t), s2s_format_duration(t - now_s),
						s2s_format_duration(skew_s));
	if (p == S2S_CLICK_EXPIRED)
		return psprintf("Its embedded time, %s, is %s old; the attribution window is %s.",
						s2s_format_unix_time(t), s2s_format_duration(now_s - t),
						s2s_format_duration(ttl_s));
	return NULL;
}

/*
 * A Swaarm click ID is whatever Swaarm's /click answers (swaarm_click.c checks its answer
 * with s2s_swaarm_check too): one rule for both. Visible ASCII only, so that no space,
 * control character or non-ASCII byte (which no percent-decoded clkid should carry) is
 * stored; every value sent is percent-encoded anyway.
 */
static inline bool
swaarm_char(unsigned char c)
{
	return c >= 0x21 && c <= 0x7E;
}

char *
s2s_swaarm_check(const char *id, size_t len)
{
	size_t		head = Min(len, S2S_SWAARM_ID_MAX);

	if (len == 0)
		return pstrdup("The click ID is empty.");
	for (size_t i = 0; i < head; i++)
		if (!swaarm_char((unsigned char) id[i]))
			return psprintf("Character %zu is %s; a Swaarm click ID is made of visible ASCII characters.",
							i + 1, describe_byte((unsigned char) id[i]));
	if (len > S2S_SWAARM_ID_MAX)
	{
		if (all_ascii(id, len))
			return psprintf("Expected at most %d characters, got %zu.", S2S_SWAARM_ID_MAX, len);
		return psprintf("Expected at most %d characters, got a longer value.", S2S_SWAARM_ID_MAX);
	}
	return NULL;
}

/*
 * Cookie parsing. Lower-case hex sorts like the number it spells, and the first 8 digits
 * are the time, so plain byte order of the normalised IDs is "oldest first" and the
 * newest max_ids are the last ones after sorting: no separate time key is needed.
 */
typedef char ClickKey[S2S_AFFILAE_ID_LEN];

static int
key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, S2S_AFFILAE_ID_LEN);
}

/* Sorts, drops duplicates and keeps the last (newest) keep entries; returns the count. */
static int
compact(ClickKey *keys, int n, int keep)
{
	int			u = 0;

	if (n == 0)
		return 0;
	qsort(keys, n, sizeof(ClickKey), key_cmp);
	for (int i = 1; i < n; i++)
		if (memcmp(keys[i], keys[u], S2S_AFFILAE_ID_LEN) != 0)
			memcpy(keys[++u], keys[i], S2S_AFFILAE_ID_LEN);
	n = u + 1;
	if (keep > 0 && n > keep)
	{
		memmove(keys[0], keys[n - keep], (size_t) keep * sizeof(ClickKey));
		n = keep;
	}
	return n;
}

/* Parses the value into sorted, distinct keys; returns the count, *out the array. */
static int
collect_keys(const char *value, size_t len, int64 now_s, int64 ttl_s, int64 skew_s,
			 int max_ids, ClickKey **out)
{
	const char *p = value;
	const char *end = value + len;
	int64		limit;
	int			cap;
	int			n = 0;
	ClickKey   *keys;

	now_s = CLAMP_NOW(now_s);

	/*
	 * With a cap, compact whenever the buffer holds 2 * max_ids entries: memory stays
	 * O(max_ids) and the work O(n log max_ids) however long the value. The buffer grows
	 * by doubling up to that limit (without a cap: as far as the value needs; a value of
	 * n bytes holds at most n / 25 + 1 IDs, so an int counts them).
	 */
	limit = max_ids > 0 ? 2 * (int64) max_ids : PG_INT64_MAX;
	cap = (int) Min(limit, 64);
	keys = (ClickKey *) palloc((size_t) cap * sizeof(ClickKey));

	while (p <= end && value != NULL)
	{
		const char *dash = memchr(p, '-', end - p);
		const char *stop = dash ? dash : end;
		bool		ok = (stop - p == S2S_AFFILAE_ID_LEN);

		for (int i = 0; ok && i < S2S_AFFILAE_ID_LEN; i++)
			ok = s2s_hex_value((unsigned char) p[i]) >= 0;
		if (ok)
		{
			char		norm[S2S_AFFILAE_ID_LEN + 1];

			s2s_affilae_normalize(p, norm);
			if (check_window(s2s_affilae_time(norm), now_s, ttl_s, skew_s) == S2S_CLICK_OK)
			{
				if (n == cap)
				{
					if (cap >= limit)
						n = compact(keys, n, max_ids);
					else
					{
						cap = (int) Min(limit, 2 * (int64) cap);
						keys = (ClickKey *) repalloc_huge(keys, (size_t) cap * sizeof(ClickKey));
					}
				}
				memcpy(keys[n++], norm, S2S_AFFILAE_ID_LEN);
			}
		}
		if (dash == NULL)
			break;
		p = dash + 1;
	}
	*out = keys;
	return compact(keys, n, max_ids);
}

int
s2s_cookie_ids(const char *value, size_t len, int64 now_s, int64 ttl_s, int64 skew_s,
			   int max_ids, char ***ids)
{
	ClickKey   *keys;
	int			n = collect_keys(value, len, now_s, ttl_s, skew_s, max_ids, &keys);
	char	  **res = NULL;

	if (n > 0)
	{
		char	   *strings = palloc_extended((size_t) n * (S2S_AFFILAE_ID_LEN + 1),
											  MCXT_ALLOC_HUGE);

		res = palloc_extended((size_t) n * sizeof(char *), MCXT_ALLOC_HUGE);
		for (int i = 0; i < n; i++)
		{
			res[i] = strings + (size_t) i * (S2S_AFFILAE_ID_LEN + 1);
			memcpy(res[i], keys[i], S2S_AFFILAE_ID_LEN);
			res[i][S2S_AFFILAE_ID_LEN] = '\0';
		}
	}
	pfree(keys);
	*ids = res;
	return n;
}

char *
s2s_cookie_normalize(const char *value, size_t len, int64 now_s, int64 ttl_s,
					 int64 skew_s, int max_ids, int *n_kept)
{
	ClickKey   *keys;
	int			n = collect_keys(value, len, now_s, ttl_s, skew_s, max_ids, &keys);
	size_t		size = n > 0 ? (size_t) n * (S2S_AFFILAE_ID_LEN + 1) : 1;
	char	   *res = palloc_extended(size, MCXT_ALLOC_HUGE);
	char	   *w = res;

	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			*w++ = '-';
		memcpy(w, keys[i], S2S_AFFILAE_ID_LEN);
		w += S2S_AFFILAE_ID_LEN;
	}
	*w = '\0';
	pfree(keys);
	if (n_kept)
		*n_kept = n;
	return res;
}

/* RFC 6265 token characters (cookie-name). */
static inline bool
token_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("()<>@,;:\\\"/[]?={}", c) == NULL;
}

/* RFC 6265 cookie-octet: visible ASCII except DQUOTE, comma, semicolon, backslash. */
static inline bool
cookie_octet(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '"' && c != ',' && c != ';' && c != '\\';
}

char *
s2s_cookie_name_check(const char *name, size_t len)
{
	if (len == 0)
		return pstrdup("The cookie name is empty.");
	for (size_t i = 0; i < len; i++)
		if (!token_char((unsigned char) name[i]))
			return psprintf("Character %zu of the cookie name is %s, which a cookie name cannot contain.",
							i + 1, describe_byte((unsigned char) name[i]));
	return NULL;
}

char *
s2s_cookie_value_check(const char *value, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!cookie_octet((unsigned char) value[i]))
			return psprintf("Character %zu of the cookie value is %s, which a cookie value cannot contain.",
							i + 1, describe_byte((unsigned char) value[i]));
	return NULL;
}

char *
s2s_cookie_header(const char *name, size_t name_len, const char *value, size_t value_len,
				  int64 max_age_s, char **error)
{
	char	   *msg;
	StringInfoData buf;

	*error = NULL;
	if ((msg = s2s_cookie_name_check(name, name_len)) != NULL ||
		(msg = s2s_cookie_value_check(value, value_len)) != NULL)
	{
		*error = msg;
		return NULL;
	}
	if (name_len + value_len > S2S_COOKIE_MAX_BYTES)
	{
		*error = psprintf("The cookie name and value are %zu bytes long; browsers keep at most %d.",
						  name_len + value_len, S2S_COOKIE_MAX_BYTES);
		return NULL;
	}
	if (max_age_s < 0 || max_age_s > S2S_COOKIE_MAX_AGE_S)
	{
		*error = psprintf("Max-Age must be between 0 and 400 days (%d seconds), got %lld seconds.",
						  S2S_COOKIE_MAX_AGE_S, (long long) max_age_s);
		return NULL;
	}
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, name, (int) name_len);
	appendStringInfoChar(&buf, '=');
	appendBinaryStringInfo(&buf, value, (int) value_len);
	appendStringInfo(&buf, "; Path=/; Max-Age=%lld; HttpOnly; Secure; SameSite=Lax",
					 (long long) max_age_s);
	return buf.data;
}
