/*
 * worker_claim.c
 *		Claiming due deliveries for the delivery worker and handing them to the HTTP
 *		client: as many as there is room for under the global and per-endpoint caps,
 *		none for an endpoint being paused, none at all in a copy of production.
 *
 * A claim takes rows under a token of this worker and a lease (queue.c); its requests are
 * sent only once the claim has committed. Before claiming, a copy of production (a
 * restored dump, a promoted clone) pauses its endpoints (home.c), so that a copy never
 * sends what production sends.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "home.h"
#include "redact_copy.h"
#include "render.h"
#include "settings.h"
#include "worker_claim.h"
#include "worker_lease.h"
#include "worker_state.h"
#include "worker_write_back.h"

/* Claim tokens: random per worker, then a sequence, so that no two claims share one. */
static int64 token_base;
static int64 token_seq;

void
s2s_claim_tokens_init(void)
{
	if (!pg_strong_random(&token_base, sizeof(token_base)))
		token_base = ((int64) MyProcPid << 32) ^ GetCurrentTimestamp();
	token_base &= ~(int64) 0xFFFFFF;	/* the low bits count claims */
	if (token_base < 0)
		token_base = -token_base;
}

int64
s2s_next_claim_token(void)
{
	return token_base + (++token_seq);
}

/* The index of an endpoint in s2s_worker.endpoints, added when first seen. */
static int
endpoint_index(const char *name)
{
	for (int i = 0; i < s2s_worker.n_endpoints; i++)
		if (strcmp(s2s_worker.endpoints[i].name, name) == 0)
			return i;
	if (s2s_worker.n_endpoints == s2s_worker.max_endpoints)
	{
		s2s_worker.max_endpoints *= 2;
		s2s_worker.endpoints = repalloc(s2s_worker.endpoints,
										sizeof(EndpointLoad) * s2s_worker.max_endpoints);
	}
	s2s_worker.endpoints[s2s_worker.n_endpoints].name = MemoryContextStrdup(s2s_worker.cxt,
																			name);
	s2s_worker.endpoints[s2s_worker.n_endpoints].in_flight = 0;
	return s2s_worker.n_endpoints++;
}

/* Claims as many due deliveries as the pass has room for; endpoints being paused get none. */
static void
claim(WorkerPass *pass)
{
	QueueBusy	busy;
	MemoryContext old;

	busy.names = palloc(sizeof(char *) * Max(s2s_worker.n_endpoints, 1));
	busy.counts = palloc(sizeof(int) * Max(s2s_worker.n_endpoints, 1));
	busy.n = 0;
	for (int i = 0; i < s2s_worker.n_endpoints; i++)
	{
		int			n = s2s_worker.endpoints[i].in_flight;

		for (int p = 0; p < pass->n_pause; p++)
			if (pass->pause[p] == i)
				n = 1000000;
		if (n == 0)
			continue;
		busy.names[busy.n] = s2s_worker.endpoints[i].name;
		busy.counts[busy.n] = n;
		busy.n++;
	}
	/* A copy of production pauses its endpoints here, before anything is claimed. */
	(void) s2s_home_confirm(s2s_worker.args.database);
	pgstat_report_activity(STATE_RUNNING, "claiming due deliveries");
	/* now() + lease, as the claim writes it into lease_until */
	pass->claim_lease_until = GetCurrentTransactionStartTimestamp() +
		(int64) s2s_lease_s * USECS_PER_SEC;
	old = MemoryContextSwitchTo(s2s_worker.batch_cxt);
	pass->n_claims = s2s_queue_claim(pass->claim_token, pass->claim_limit, s2s_lease_s,
								 &busy, &pass->claims, &pass->next_due);
	MemoryContextSwitchTo(old);
}

/*
 * A transaction that writes back, then claims the room the results freed. Committed
 * synchronously (the write-back must be durable); the new claims are only sent after it,
 * so a crash can make duplicates only of what was in flight (at most max_concurrency).
 */
void
s2s_unit_write_back_and_claim(void *arg)
{
	WorkerPass *pass = (WorkerPass *) arg;

	s2s_write_back(pass);
	claim(pass);
}

/*
 * A transaction that only claims (nothing to write back), committed without waiting for
 * its WAL to reach disk (synchronous_commit off for this transaction only), so that no
 * fsync stands between a wake-up and the requests. A crash can lose such a claim only
 * while its requests are in flight (the next write-back's synchronous commit flushes it),
 * and those would be sent again anyway: the at-least-once bound does not change.
 */
void
s2s_unit_claim(void *arg)
{
	(void) set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	claim((WorkerPass *) arg);
}

/*
 * A claimed delivery that was not sent, added to the pass's results (s2s_collect_results
 * left room for them); the caller says what became of it.
 */
static QueueResult *
not_sent(WorkerPass *pass, const QueueClaim *c, TimestampTz now)
{
	QueueResult *r = &pass->results[pass->n_results];

	pass->leases[pass->n_results++] = pass->claim_lease_until;
	memset(r, 0, sizeof(*r));
	r->id = c->delivery.id;
	r->token = pass->claim_token;
	r->attempt = c->attempt;
	r->started_at = now;
	return r;
}

/*
 * Hands the claimed deliveries to the HTTP client (after the claim committed). A delivery
 * that cannot be rendered fails at once; one the client cannot take now is retried later.
 * Those are added to the pass's results.
 */
void
s2s_submit_claims(WorkerPass *pass, TimestampTz now)
{
	HttpHeader	headers[S2S_MAX_HEADERS];

	for (int i = 0; i < pass->n_claims; i++)
	{
		QueueClaim *c = &pass->claims[i];
		S2SRequest	rq;
		HttpRequest hr;
		const char *problem;
		char		errbuf[256];
		WorkerSlot *slot;
		QueueResult *r;
		int			ep = endpoint_index(c->delivery.endpoint);

		memset(&rq, 0, sizeof(rq));
		problem = s2s_render_request(&c->delivery.endpoint_conf, &c->delivery.data, false, &rq);
		if (problem != NULL)
		{
			/* The delivery's data cannot make a request: final. */
			r = not_sent(pass, c, now);
			r->outcome = QUEUE_FAILED;
			r->error = psprintf("cannot render the request: %s", problem);
			continue;
		}
		memset(&hr, 0, sizeof(hr));
		for (int h = 0; h < rq.nheaders; h++)
		{
			headers[h].name = rq.header_names[h];
			headers[h].value = rq.header_values[h];
		}
		slot = s2s_worker.free_slots;
		Assert(slot != NULL);
		hr.method = rq.method;
		hr.url = rq.url;
		hr.headers = headers;
		hr.nheaders = rq.nheaders;
		hr.body = rq.body;
		hr.body_len = rq.body ? (size_t) rq.body_len : 0;
		hr.total_timeout_ms = c->delivery.request_timeout_ms;
		hr.host_cap = c->endpoint_cap;
		hr.group = c->delivery.endpoint;
		hr.tag = slot;
		if (!s2s_http_driver_submit(s2s_worker.http, &hr, errbuf, sizeof(errbuf)))
		{
			/*
			 * Refused by the client before anything was sent (out of memory: the
			 * renderer's requests are otherwise always acceptable). Try again later.
			 */
			r = not_sent(pass, c, now);
			r->outcome = QUEUE_RETRY;
			r->error = s2s_redact_copy(psprintf("request not sent: %s", errbuf),
									   c->delivery.endpoint_conf.secret);
			r->next_attempt_at = TimestampTzPlusMilliseconds(now, s2s_retry_base_ms);
			continue;
		}
		s2s_worker.free_slots = slot->next_free;
		slot->used = true;
		slot->id = c->delivery.id;
		slot->token = pass->claim_token;
		slot->attempt = c->attempt;
		slot->endpoint = ep;
		slot->first_attempt_at = c->delivery.first_attempt_at;
		slot->retry_window_s = c->retry_window_s;
		slot->lease_until = pass->claim_lease_until;
		s2s_lease_note(slot->lease_until);
		slot->secret = c->delivery.endpoint_conf.secret != NULL ?
			MemoryContextStrdup(s2s_worker.cxt, c->delivery.endpoint_conf.secret) : NULL;
		slot->refused_pattern = c->delivery.refused_pattern != NULL ?
			MemoryContextStrdup(s2s_worker.cxt, c->delivery.refused_pattern) : NULL;
		s2s_worker.endpoints[ep].in_flight++;
		s2s_worker.in_flight++;
	}
	if (pass->n_claims > 0)
		s2s_http_driver_process(s2s_worker.http);
}
