/*
 * fuzz_click.c
 *		libFuzzer target for src/click.c: click IDs, cookie values and the Set-Cookie header.
 *
 * Input: 13 bytes of settings (mode, now, ttl, skew, max_ids), then the value. Besides
 * "no crash, no sanitizer report", it checks the properties that click.h promises:
 * a valid ID has the documented shape; the normalised cookie is canonical (idempotent,
 * independent of the order of its parts), sorted oldest first, capped, and made of IDs
 * that are each valid; a Set-Cookie header is never built from a value that could inject
 * an attribute or a header.
 */
#include "postgres.h"

#include "click.h"
#include "fuzz.h"

static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The parts of value in reverse order, joined by '-'. */
static char *
reversed_parts(const char *value, size_t len)
{
	char	   *out = palloc(len + 1);
	size_t		w = 0;
	size_t		end = len;

	while (true)
	{
		size_t		start = end;

		while (start > 0 && value[start - 1] != '-')
			start--;
		memcpy(out + w, value + start, end - start);
		w += end - start;
		if (start == 0)
			break;
		out[w++] = '-';
		end = start - 1;
	}
	out[w] = '\0';
	return out;
}

static void
check_cookie(const char *value, size_t len, int64 now, int64 ttl, int64 skew, int max_ids)
{
	int			n;
	int			n2;
	char	  **ids;
	char	   *norm = s2s_cookie_normalize(value, len, now, ttl, skew, max_ids, &n);
	char	   *again;
	char	   *rev;

	FUZZ_CHECK(n >= 0 && (max_ids <= 0 || n <= max_ids), "n=%d max_ids=%d", n, max_ids);
	FUZZ_CHECK(strlen(norm) == (n == 0 ? 0 : (size_t) n * 25 - 1), "len %zu n %d", strlen(norm), n);

	n2 = s2s_cookie_ids(value, len, now, ttl, skew, max_ids, &ids);
	FUZZ_CHECK(n2 == n, "cookie_ids %d, normalize %d", n2, n);
	for (int i = 0; i < n; i++)
	{
		int64		t;
		S2SClickProblem p;
		char	   *msg = s2s_affilae_check(ids[i], strlen(ids[i]), now, ttl, skew, &t, &p);

		FUZZ_CHECK(msg == NULL && p == S2S_CLICK_OK, "kept an invalid id %s", ids[i]);
		FUZZ_CHECK(strncmp(norm + i * 25, ids[i], 24) == 0, "normalize and cookie_ids differ");
		for (int k = 0; k < 24; k++)
			FUZZ_CHECK(is_hex(ids[i][k]) && !(ids[i][k] >= 'A' && ids[i][k] <= 'F'),
					   "not lower-case hex: %s", ids[i]);
		if (i > 0)
		{
			FUZZ_CHECK(s2s_affilae_time(ids[i - 1]) <= t, "not oldest first");
			FUZZ_CHECK(strcmp(ids[i - 1], ids[i]) != 0, "duplicate %s", ids[i]);
		}
	}

	/* canonical: normalising again changes nothing; the order of the parts does not matter */
	again = s2s_cookie_normalize(norm, strlen(norm), now, ttl, skew, max_ids, &n2);
	FUZZ_CHECK(strcmp(again, norm) == 0 && n2 == n, "not idempotent: %s -> %s", norm, again);
	rev = reversed_parts(value, len);
	again = s2s_cookie_normalize(rev, len, now, ttl, skew, max_ids, NULL);
	FUZZ_CHECK(strcmp(again, norm) == 0, "order matters: %s vs %s", norm, again);
}

static void
check_one_id(const char *value, size_t len, int64 now, int64 ttl, int64 skew)
{
	char	   *fmt = s2s_affilae_check_format(value, len);
	int64		t = -1;
	S2SClickProblem p;
	char	   *msg = s2s_affilae_check(value, len, now, ttl, skew, &t, &p);

	if (fmt == NULL)
	{
		char		out[S2S_AFFILAE_ID_LEN + 1];

		FUZZ_CHECK(len == 24, "valid format of length %zu", len);
		for (size_t i = 0; i < len; i++)
			FUZZ_CHECK(is_hex(value[i]), "valid format with a non-hex byte");
		FUZZ_CHECK(t == s2s_affilae_time(value) && t >= 0 && t <= 0xFFFFFFFFLL, "time %lld", (long long) t);
		s2s_affilae_normalize(value, out);
		FUZZ_CHECK(strlen(out) == 24 && strncasecmp(out, value, 24) == 0, "normalize");
		FUZZ_CHECK((msg == NULL) == (p == S2S_CLICK_OK), "message and problem disagree");
		/* a single valid ID is its own cookie */
		if (msg == NULL)
			FUZZ_CHECK(strcmp(s2s_cookie_normalize(value, len, now, ttl, skew, 10, NULL), out) == 0,
					   "a valid id is not its own cookie");
	}
	else
		FUZZ_CHECK(msg != NULL && p == S2S_CLICK_MALFORMED, "format refused, check accepted");

	if (s2s_swaarm_check(value, len) == NULL)
	{
		FUZZ_CHECK(len >= 1 && len <= S2S_SWAARM_ID_MAX, "swaarm length %zu", len);
		for (size_t i = 0; i < len; i++)
			FUZZ_CHECK((unsigned char) value[i] >= 0x21 && (unsigned char) value[i] <= 0x7e,
					   "swaarm byte 0x%02x", (unsigned char) value[i]);
	}
}

static void
check_header(const char *value, size_t len, int64 max_age)
{
	const char *eq = memchr(value, '=', len);
	size_t		name_len = eq ? (size_t) (eq - value) : len;
	const char *v = eq ? eq + 1 : "";
	size_t		v_len = eq ? len - name_len - 1 : 0;
	char	   *error;
	char	   *h = s2s_cookie_header(value, name_len, v, v_len, max_age, &error);

	if (h == NULL)
	{
		FUZZ_CHECK(error != NULL && error[0] != '\0', "refused without a reason");
		return;
	}
	FUZZ_CHECK(error == NULL, "both a header and an error");
	for (const char *p = h; *p; p++)
		FUZZ_CHECK((unsigned char) *p >= 0x20 && (unsigned char) *p < 0x7f,
				   "control or non-ASCII byte 0x%02x in the header", (unsigned char) *p);
	FUZZ_CHECK(strncmp(h, value, name_len) == 0 && h[name_len] == '=' &&
			   strncmp(h + name_len + 1, v, v_len) == 0 && h[name_len + 1 + v_len] == ';',
			   "header does not start with name=value;");
	/* the attributes are ours: the value added no ';' */
	FUZZ_CHECK(strstr(h + name_len + 1 + v_len, "; HttpOnly; Secure; SameSite=Lax") != NULL &&
			   memchr(value, ';', len) == NULL, "attributes");
	FUZZ_CHECK(max_age >= 0 && max_age <= S2S_COOKIE_MAX_AGE_S, "max-age %lld", (long long) max_age);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int			mode = (int) fuzz_take(&data, &size, 1);
	/* settings in the ranges the GUCs allow; now anywhere in 0 .. 2^40 s */
	int64		now = (int64) fuzz_take(&data, &size, 5);
	int64		ttl = 60 + (int64) (fuzz_take(&data, &size, 4) % ((uint64) PG_INT32_MAX - 59));
	int64		skew = (int64) (fuzz_take(&data, &size, 2) % 86401);
	int			max_ids = (int) (fuzz_take(&data, &size, 1) % 102) - 1;	/* -1 .. 100 */
	char	   *value = fuzz_cstring(data, size);

	switch (mode % 4)
	{
		case 0:
			check_cookie(value, size, now, ttl, skew, max_ids);
			break;
		case 1:
			check_one_id(value, size, now, ttl, skew);
			break;
		case 2:
			check_header(value, size, (int64) (now % (2 * S2S_COOKIE_MAX_AGE_S)) - 1000);
			break;
		case 3:
			/* the message helpers take any int64 */
			(void) s2s_format_unix_time((int64) (((uint64) now << 24) ^ (uint64) ttl));
			(void) s2s_format_duration((int64) (((uint64) now << 24) ^ ~(uint64) ttl));
			(void) s2s_cookie_name_check(value, size);
			(void) s2s_cookie_value_check(value, size);
			break;
	}
	fuzz_reset();
	return 0;
}
