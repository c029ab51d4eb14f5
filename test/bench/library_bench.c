/*
 * library_bench.c
 *		Hand-written or library, measured (doc/transport.md): our percent-encoder and URL
 *		building (src/render.c) against what libcurl offers for the same job
 *		(curl_easy_escape, the curl_url API) on the values of one delivery, http.c's
 *		host key against curl_url's parse, and retry.c's Retry-After dates against
 *		curl_getdate. Prints, per variant, the time per delivery and whether its output is
 *		byte for byte what we send (the wire format is the contract), and for the dates
 *		which values the two read differently.
 *
 *   make PG_CONFIG=... test/bench/library_bench && test/bench/library_bench [ROUNDS]
 *
 * Runs outside the server: palloc is test/fuzz/shim.c's, StringInfo comes from the frontend
 * libpgcommon. Each variant runs ROUNDS (default 200,000) times, three times over, and the
 * best run counts (the machine is shared).
 */
#include "postgres.h"

#include <time.h>

#include <curl/curl.h>

#include "lib/stringinfo.h"

#include "fuzz.h"
#include "render.h"
#include "retry.h"

/* What one Affilae delivery carries (test/fuzz/seeds.py's "full" delivery). */
static const S2SEndpointConf affilae = {S2S_KIND_AFFILAE, "https://lb.affilae.com/", "aaaa-bbbb",
NULL, false};
static const S2SDeliveryData delivery = {
	"c-42", "123.45", "EUR", "online", "cust 1", "cv&x=1", "V1;V2",
	"65a1b2c3d4e5f60718293a4b-65a1b2c3d4e5f60718293a4c", "user-1", "purchase", "ev=1", "9.5",
	"203.0.113.7", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
	"https://shop.example/p?q=1"
};

/* The parameters render_affilae() sends, in its order (the amount as amount.c shows it). */
static const char *const names[] = {"key", "id", "amount", "currency", "payment", "customer",
"cv", "voucher", "cids"};
static const char *values[9];

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Ours: name=value pairs appended to the URL, each value through s2s_append_percent_encoded. */
static void
query_ours(StringInfo url)
{
	appendStringInfoString(url, affilae.url);
	appendStringInfoChar(url, '?');
	for (int i = 0; i < 9; i++)
	{
		if (i > 0)
			appendStringInfoChar(url, '&');
		appendStringInfoString(url, names[i]);
		appendStringInfoChar(url, '=');
		s2s_append_percent_encoded(url, values[i]);
	}
}

/* The same with curl_easy_escape: one malloc'd copy per value, freed with curl_free. */
static void
query_curl_escape(StringInfo url)
{
	appendStringInfoString(url, affilae.url);
	appendStringInfoChar(url, '?');
	for (int i = 0; i < 9; i++)
	{
		char	   *enc = curl_easy_escape(NULL, values[i], 0);

		if (i > 0)
			appendStringInfoChar(url, '&');
		appendStringInfoString(url, names[i]);
		appendStringInfoChar(url, '=');
		appendStringInfoString(url, enc);
		curl_free(enc);
	}
}

/* The curl_url API: the base URL parsed, each pair appended encoded, the URL read back. */
static void
query_curl_url(StringInfo url)
{
	CURLU	   *h = curl_url();
	char		pair[512];
	char	   *out;

	curl_url_set(h, CURLUPART_URL, affilae.url, 0);
	for (int i = 0; i < 9; i++)
	{
		snprintf(pair, sizeof(pair), "%s=%s", names[i], values[i]);
		curl_url_set(h, CURLUPART_QUERY, pair, CURLU_APPENDQUERY | CURLU_URLENCODE);
	}
	curl_url_get(h, CURLUPART_URL, &out, 0);
	appendStringInfoString(url, out);
	curl_free(out);
	curl_url_cleanup(h);
}

/*
 * What http.c's url_host_key() does by hand (the host and port that group connections,
 * a strcspn over the URL), asked of the curl_url API: parse, then read both parts.
 */
static void
host_key_curl_url(StringInfo key)
{
	CURLU	   *h = curl_url();
	char	   *host = NULL;
	char	   *port = NULL;

	curl_url_set(h, CURLUPART_URL, "https://lb.affilae.com:8443/postback?key=k", 0);
	curl_url_get(h, CURLUPART_HOST, &host, 0);
	curl_url_get(h, CURLUPART_PORT, &port, 0);
	appendStringInfo(key, "%s:%s", host, port);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(h);
}

/* The whole request as the worker renders it, for scale. */
static void
render_whole(StringInfo url)
{
	S2SRequest	rq;

	s2s_render_request(&affilae, &delivery, false, &rq);
	appendStringInfoString(url, rq.url);
}

static void
run(const char *label, void (*variant) (StringInfo), const char *expected, long rounds)
{
	StringInfoData url;
	double		best = 0;
	bool		same;

	initStringInfo(&url);
	variant(&url);
	same = strcmp(url.data, expected) == 0;
	for (int run = 0; run < 3; run++)
	{
		double		t0 = now_ns();

		for (long r = 0; r < rounds; r++)
		{
			resetStringInfo(&url);
			variant(&url);
			if ((r & 1023) == 1023)
			{
				fuzz_reset();	/* what a memory context reset per batch does */
				initStringInfo(&url);
			}
		}
		if (run == 0 || now_ns() - t0 < best)
			best = now_ns() - t0;
		fuzz_reset();
		initStringInfo(&url);
	}
	printf("%-36s %8.0f ns per delivery   %s\n", label, best / rounds,
		   same ? "byte-identical" : "DIFFERENT bytes");
	if (!same)
	{
		resetStringInfo(&url);
		variant(&url);
		printf("    ours:   %s\n    theirs: %s\n", expected, url.data);
	}
}

/*
 * Retry-After dates: the three forms RFC 9110 defines, then malformed ones. Returns how
 * many values s2s_parse_retry_after and curl_getdate read differently.
 */
static int
compare_dates(void)
{
	static const char *const dates[] = {
		"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
		"Sun Nov  6 08:49:37 1994", "Sunday, 06-Nov-30 08:49:37 GMT",
		"Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 08:49:37", "06 Nov 1994 08:49:37 GMT",
		"Sun, 6 Nov 1994 08:49:37 GMT", "sun, 06 nov 1994 08:49:37 gmt",
		"Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 +0200", "Nov 6 1994",
		"Sun,  06 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49 GMT",
		"Sun, 06 Nov 1994 08:49:37 GMT junk", "Sun, 06 Nov 1994 25:49:37 GMT",
		"1994-11-06T08:49:37Z", "tomorrow"
	};
	int			differ = 0;

	for (int i = 0; i < (int) lengthof(dates); i++)
	{
		int64		ours_ms = -1;
		bool		ours = s2s_parse_retry_after(dates[i], 0, &ours_ms);
		time_t		theirs = curl_getdate(dates[i], NULL);

		if (ours ? (theirs == -1 || (int64) theirs * 1000 != ours_ms) : theirs != -1)
		{
			differ++;
			printf("    %-36s ours: %s, curl_getdate: %s\n", dates[i],
				   ours ? "read" : "refused", theirs == -1 ? "refused" : "read");
		}
	}
	return differ;
}

int
main(int argc, char **argv)
{
	long		rounds = argc > 1 ? atol(argv[1]) : 200000;
	StringInfoData expected;
	char	   *expected_url;
	S2SRequest	rq;
	int			bytes_differ = 0;

	curl_global_init(CURL_GLOBAL_DEFAULT);

	/* the values exactly as render_affilae() encodes them (amount formatted by amount.c) */
	s2s_render_request(&affilae, &delivery, false, &rq);
	values[0] = affilae.secret;
	values[1] = delivery.conversion_id;
	values[2] = "123.45";		/* EUR: two decimals */
	values[3] = delivery.currency;
	values[4] = delivery.payment;
	values[5] = delivery.customer;
	values[6] = delivery.cv;
	values[7] = delivery.voucher;
	values[8] = delivery.click_ids;

	initStringInfo(&expected);
	query_ours(&expected);
	if (strcmp(expected.data, rq.url) != 0)
	{
		printf("the benchmark's own rendering differs from s2s_render_request:\n%s\n%s\n",
			   expected.data, rq.url);
		return 1;
	}
	expected_url = strdup(expected.data);	/* outlives every fuzz_reset() */

	/* every byte value, alone: does curl_easy_escape encode it as we do? */
	for (int c = 1; c < 256; c++)
	{
		char		in[2] = {(char) c, '\0'};
		StringInfoData ours;
		char	   *theirs = curl_easy_escape(NULL, in, 0);

		initStringInfo(&ours);
		s2s_append_percent_encoded(&ours, in);
		bytes_differ += strcmp(ours.data, theirs) != 0;
		curl_free(theirs);
	}
	printf("curl_easy_escape vs ours, bytes 0x01-0xFF: %d differ\n", bytes_differ);
	fuzz_reset();

	run("s2s_render_request (whole, affilae)", render_whole, expected_url, rounds);
	run("query: s2s_append_percent_encoded", query_ours, expected_url, rounds);
	run("query: curl_easy_escape", query_curl_escape, expected_url, rounds);
	run("query: curl_url APPENDQUERY|URLENCODE", query_curl_url, expected_url, rounds);
	run("host key: curl_url parse + HOST + PORT", host_key_curl_url, "lb.affilae.com:8443", rounds);
	printf("Retry-After dates read differently by curl_getdate:\n");
	printf("%d of 18\n", compare_dates());
	free(expected_url);

	curl_global_cleanup();
	return 0;
}
