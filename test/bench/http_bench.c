/*
 * http_bench.c
 *		Raw throughput of the HTTP client (src/http.c) alone, driven as the worker drives
 *		it (wait on the descriptor, process, read results, keep the pipeline full).
 *
 *	  http_bench URL N CONCURRENCY
 *
 * Prints requests/s and the count of non-200 results; compare with wrk on the same URL to
 * see what the client costs, apart from PostgreSQL.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* nginx listens on loopback, which the client refuses unless allowed */
static NetCidr loopback[2];

int
main(int argc, char **argv)
{
	HttpClientOptions o;
	HttpClient *c;
	char		err[256];
	long		n,
				conc,
				submitted = 0,
				done = 0,
				bad = 0;
	double		t0,
				t1;

	if (argc < 4)
	{
		fprintf(stderr, "usage: http_bench URL N CONCURRENCY\n");
		return 2;
	}
	n = atol(argv[2]);
	conc = atol(argv[3]);
	if (net_parse_cidr_list("127.0.0.0/8, ::1/128", loopback, 2, err, sizeof(err)) != 2)
		return 1;
	memset(&o, 0, sizeof(o));
	o.max_connections = (int) conc;
	o.max_host_connections = (int) conc;
	o.connect_timeout_ms = 5000;
	o.total_timeout_ms = 30000;
	o.max_response_bytes = 4096;
	o.allow_http = true;
	o.allowed_networks = loopback;
	o.n_allowed_networks = 2;
	o.user_agent = "s2s_tracking/bench";
	c = s2s_http_client_create(&o, err, sizeof(err));
	if (!c)
	{
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	t0 = now_s();
	while (done < n && now_s() - t0 < 600)
	{
		HttpResult	r;
		struct pollfd pfd = {s2s_http_wait_fd(c), POLLIN, 0};
		long		t;

		/* keep CONCURRENCY requests submitted, as the worker keeps its slots full */
		while (submitted < n && s2s_http_in_flight(c) < conc)
		{
			HttpRequest req;
			char		url[512];

			snprintf(url, sizeof(url), "%s?id=%ld&key=0123456789abcdef01234567-89abcdef0123456789abcdef",
					 argv[1], submitted);
			memset(&req, 0, sizeof(req));
			req.method = "GET";
			req.url = url;
			if (!s2s_http_submit(c, &req, err, sizeof(err)))
				return 1;
			submitted++;
		}
		t = s2s_http_timeout_ms(c);
		if (t < 0 || t > 100)
			t = 100;
		if (t > 0)
			(void) poll(&pfd, 1, (int) t);
		s2s_http_process(c);
		while (s2s_http_next_result(c, &r))
		{
			if (r.http_status != 200)
				bad++;
			done++;
			s2s_http_result_release(&r);
		}
	}
	t1 = now_s();
	printf("http_bench: %ld requests, concurrency %ld: %.0f requests/s, %ld not 200\n",
		   done, conc, done / (t1 - t0), bad);
	s2s_http_client_destroy(c);
	return bad == 0 && done == n ? 0 : 1;
}
