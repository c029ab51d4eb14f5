/*
 * worker_result.c
 *		The delivery worker's judgement of a completed HTTP transfer: sent, retried later
 *		(when, by the backoff and the retry window), failed for good, or its endpoint
 *		paused; what of the answer is stored, the secret masked. Frees the transfer's
 *		slot.
 *
 * The rules are retry.c's and refused.c's (pure); this file applies them to one transfer
 * and builds the row the write-back stores (worker_write_back.c).
 */
#include "postgres.h"

#include <time.h>

#include "common/pg_prng.h"
#include "mb/pg_wchar.h"
#include "utils/timestamp.h"

#include "redact.h"
#include "refused.h"
#include "retry.h"
#include "settings.h"
#include "worker_result.h"
#include "worker_state.h"

static TimestampTz
unix_to_timestamptz(double unix_s)
{
	return (TimestampTz) ((unix_s - ((double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) *
									 SECS_PER_DAY)) * USECS_PER_SEC);
}

/*
 * A response body as text the database accepts, the request's secret masked: a receiver
 * may echo the request (an error page quoting the request line shows the Affilae key or
 * the Swaarm token). "cut": the client kept only the start of the body, which may end in
 * the middle of the secret. Masking works on the bytes received; then NUL bytes and byte
 * sequences invalid in the database encoding become '?'.
 */
static char *
response_text(const char *body, size_t len, const char *secret, bool cut)
{
	int			encoding = GetDatabaseEncoding();
	char	   *out;
	size_t		i = 0;

	if (body == NULL || len == 0)
		return NULL;
	out = palloc(len + 1);
	(void) s2s_redact(body, len, out, &secret, 1, cut);
	while (i < len)
	{
		int			ok = pg_encoding_verifymbstr(encoding, out + i, (int) (len - i));

		i += ok;
		if (i < len)
			out[i++] = '?';
	}
	out[len] = '\0';
	return out;
}

/*
 * What went wrong with an attempt, in words: the HTTP status or the transport error, then
 * the classification's reason. Neither should contain a URL; the secret is masked anyway,
 * since libcurl's words are not ours to promise. libcurl's text may quote what the server
 * sent (a certificate's subject name) and is cut at 256 bytes: it is made valid in the
 * database encoding like a response body.
 */
static char *
attempt_error(const HttpResult *res, const char *reason, const char *secret)
{
	if (res->http_status > 0)
		return psprintf("HTTP %ld: %s", res->http_status, reason);
	if (res->error[0] != '\0')
		return psprintf("%s (%s)", reason,
						response_text(res->error, strlen(res->error), secret, true));
	return pstrdup(reason);
}

/*
 * A 2xx whose body matches the endpoint's refused_pattern is the network saying no
 * (Affilae may answer 200 with an error text for an unknown click ID): the delivery fails,
 * for good, with the body (as stored: the secret masked, valid text) as the reason. Final,
 * not retried: the network has read the conversion and answered; sending it again would
 * get the same answer, or count it twice if it was in fact recorded. A pattern that
 * cannot be run leaves the 2xx sent, the reason recorded beside it.
 */
static void
judge_refusal(QueueResult *r, const WorkerSlot *slot)
{
	const char *body = r->response ? r->response : "";
	char	   *message = NULL;

	if (slot->refused_pattern == NULL)
		return;
	switch (s2s_refused_match(s2s_worker.endpoints[slot->endpoint].name,
							  slot->refused_pattern, body, strlen(body), &message))
	{
		case S2S_REFUSAL_NONE:
			break;
		case S2S_REFUSAL_MATCH:
			{
				int			keep = pg_mbcliplen(body, strlen(body), S2S_REFUSED_REASON_MAX);

				r->outcome = QUEUE_FAILED;
				r->error = psprintf("HTTP %d: refused: the answer matches the endpoint's refused_pattern: %.*s",
									r->http_status, keep, body);
				break;
			}
		case S2S_REFUSAL_UNKNOWN:
			r->error = psprintf("HTTP %d: counted as sent; refused_pattern could not be matched: %s",
								r->http_status, message);
			break;
	}
}

/* Judges one completed transfer and turns it into a write-back row (batch memory). */
static void
judge_result(WorkerPass *pass, HttpResult *res, TimestampTz now)
{
	WorkerSlot	   *slot = (WorkerSlot *) res->tag;
	QueueResult *r = &pass->results[pass->n_results++];
	const char *reason;
	S2SOutcome	outcome;

	outcome = s2s_classify_attempt(res->http_status, res->error_kind, &reason);

	pass->leases[pass->n_results - 1] = slot->lease_until;
	r->id = slot->id;
	r->token = slot->token;
	r->attempt = slot->attempt;
	r->http_status = (int) res->http_status;
	r->started_at = unix_to_timestamptz(res->started_at);
	r->duration_ms = res->duration_ms;
	r->response = response_text(res->body, res->body_len, slot->secret,
								res->body_truncated);
	r->error = NULL;
	r->next_attempt_at = 0;

	switch (outcome)
	{
		case S2S_OUTCOME_SENT:
			r->outcome = QUEUE_SENT;
			judge_refusal(r, slot);
			break;
		case S2S_OUTCOME_RETRY:
			{
				int64		retry_after_ms = -1;
				int64		delay_ms;
				int64		next_us;

				if (res->retry_after != NULL &&
					!s2s_parse_retry_after(res->retry_after, (int64) time(NULL),
										   &retry_after_ms))
					retry_after_ms = -1;
				delay_ms = s2s_retry_delay_ms(slot->attempt, s2s_retry_base_ms,
											  s2s_retry_max_ms, pg_prng_double(&pg_global_prng_state),
											  retry_after_ms);
				r->error = attempt_error(res, reason, slot->secret);
				if (s2s_retry_schedule(slot->first_attempt_at, now, delay_ms,
									   (int64) slot->retry_window_s * 1000, &next_us))
				{
					r->outcome = QUEUE_RETRY;
					r->next_attempt_at = (TimestampTz) next_us;
					if (pass->retry_due == 0 || r->next_attempt_at < pass->retry_due)
						pass->retry_due = r->next_attempt_at;
				}
				else
				{
					r->outcome = QUEUE_FAILED;
					r->error = psprintf("retry window over: %s", r->error);
				}
				break;
			}
		case S2S_OUTCOME_FAILED:
			r->outcome = QUEUE_FAILED;
			r->error = attempt_error(res, reason, slot->secret);
			break;
		case S2S_OUTCOME_PAUSE:
			{
				bool		seen = false;

				/* a request refused before sending says why (e.g. a link-local address) */
				if (res->error_kind == HTTP_ERROR_REFUSED && res->error[0] != '\0')
					reason = attempt_error(res, reason, slot->secret);
				r->outcome = QUEUE_GIVE_BACK;
				r->error = psprintf("endpoint paused: %s", reason);
				for (int i = 0; i < pass->n_pause; i++)
					seen |= (pass->pause[i] == slot->endpoint);
				if (!seen)
				{
					pass->pause[pass->n_pause] = slot->endpoint;
					pass->pause_reason[pass->n_pause] = pstrdup(reason);
					pass->n_pause++;
				}
				break;
			}
	}

	/* The slot is free again; no copy of the secret outlives the request. */
	if (slot->secret != NULL)
	{
		explicit_bzero(slot->secret, strlen(slot->secret));
		pfree(slot->secret);
		slot->secret = NULL;
	}
	if (slot->refused_pattern != NULL)
	{
		pfree(slot->refused_pattern);
		slot->refused_pattern = NULL;
	}
	s2s_worker.endpoints[slot->endpoint].in_flight--;
	s2s_worker.in_flight--;
	slot->used = false;
	slot->next_free = s2s_worker.free_slots;
	s2s_worker.free_slots = slot;
}

/*
 * Collects up to "max" completed transfers into pass->results, which has room for "extra"
 * more (the claims of this pass that cannot be sent).
 */
void
s2s_collect_results(WorkerPass *pass, int max, int extra, TimestampTz now)
{
	HttpResult	res;

	pass->results = palloc(sizeof(QueueResult) * Max(max + extra, 1));
	pass->leases = palloc(sizeof(TimestampTz) * Max(max + extra, 1));
	pass->pause = palloc(sizeof(int) * Max(max, 1));
	pass->pause_reason = palloc(sizeof(char *) * Max(max, 1));
	while (pass->n_results < max && s2s_http_driver_next_result(s2s_worker.http, &res))
	{
		judge_result(pass, &res, now);
		s2s_http_result_release(&res);
	}
}
