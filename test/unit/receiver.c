/*
 * receiver.c
 *		The test receiver (test/receiver/receiver.py) for the C unit tests that send
 *		requests: started on 127.0.0.1, driven through its control paths with blocking
 *		libcurl easy calls (never through the client under test), and stopped.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "receiver.h"

pid_t		receiver_pid;
int			receiver_port;
char		base_url[64];

static NetCidr loopback[2];

HttpClientOptions
receiver_client_options(void)
{
	HttpClientOptions o;
	char		err[128];

	if (loopback[0].addr.family == 0 &&
		net_parse_cidr_list("127.0.0.0/8, ::1/128", loopback, 2, err, sizeof(err)) != 2)
		abort();
	memset(&o, 0, sizeof(o));
	o.max_connections = 8;
	o.max_host_connections = 8;
	o.connect_timeout_ms = 2000;
	o.total_timeout_ms = 10000;
	o.max_response_bytes = 4096;
	o.allow_http = true;
	o.allowed_networks = loopback;
	o.n_allowed_networks = 2;
	o.user_agent = "s2s_tracking/test";
	return o;
}

double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

typedef struct Buf
{
	char	   *p;
	size_t		len;
} Buf;

static size_t
buf_write(char *data, size_t size, size_t nmemb, void *userp)
{
	Buf		   *b = userp;
	size_t		n = size * nmemb;
	char	   *p = realloc(b->p, b->len + n + 1);

	if (p == NULL)
		return 0;
	b->p = p;
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

/* GET (json NULL) or POST json to a control path; returns the malloc'd answer body. */
char *
control(const char *path, const char *json)
{
	CURL	   *e = curl_easy_init();
	Buf			b = {calloc(1, 1), 0};
	char		url[128];

	snprintf(url, sizeof(url), "%s%s", base_url, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, buf_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	if (json)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
	if (curl_easy_perform(e) != CURLE_OK)
	{
		printf("# control request %s failed\n", path);
		exit(2);
	}
	curl_easy_cleanup(e);
	return b.p;
}

void
behave(const char *json)
{
	free(control("/__behave", json));
}

void
receiver_reset(void)
{
	free(control("/__reset", ""));
}

long
stat_value(const char *name)
{
	char	   *s = control("/__stats", NULL);
	char		key[64];
	char	   *p;
	long		v = -1;

	snprintf(key, sizeof(key), "\"%s\": ", name);
	p = strstr(s, key);
	if (p)
		v = strtol(p + strlen(key), NULL, 10);
	free(s);
	return v;
}

void
receiver_start(const char *script)
{
	char		port_file[] = "/tmp/s2s_http_test_XXXXXX";
	int			fd = mkstemp(port_file);
	double		deadline = now_ms() + 30000;

	close(fd);
	unlink(port_file);
	receiver_pid = fork();
	if (receiver_pid == 0)
	{
		execlp("python3", "python3", script, "--port-file", port_file, (char *) NULL);
		_exit(127);
	}
	while (now_ms() < deadline)
	{
		FILE	   *f = fopen(port_file, "r");

		if (f)
		{
			int			ok = fscanf(f, "%d", &receiver_port);

			fclose(f);
			if (ok == 1 && receiver_port > 0)
				break;
		}
		if (waitpid(receiver_pid, NULL, WNOHANG) == receiver_pid)
			break;
		usleep(20000);
	}
	unlink(port_file);
	if (receiver_port <= 0)
	{
		printf("Bail out! the test receiver did not start\n");
		exit(2);
	}
	snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", receiver_port);
}

void
receiver_stop(void)
{
	double		deadline = now_ms() + 10000;

	if (receiver_pid <= 0)
		return;
	kill(receiver_pid, SIGTERM);
	while (now_ms() < deadline)
	{
		if (waitpid(receiver_pid, NULL, WNOHANG) == receiver_pid)
		{
			receiver_pid = 0;
			return;
		}
		usleep(20000);
	}
	kill(receiver_pid, SIGKILL);
	waitpid(receiver_pid, NULL, 0);
	receiver_pid = 0;
}
