/*
 * queue.h
 *		The delivery worker's SQL: claim, write-back, reconcile, pause and purge.
 *
 * Every statement is prepared once (SPI_prepare + SPI_keepplan) and handles a whole batch:
 * one statement claims up to a batch of due deliveries under a lease, one statement writes a
 * batch of results back together with their s2s.attempts rows. The caller owns the
 * transaction (and SPI connection): each function here runs inside it.
 */
#ifndef S2S_QUEUE_H
#define S2S_QUEUE_H

#include "datatype/timestamp.h"

#include "delivery_read.h"

/* One claimed delivery, everything the worker needs to send it and judge the result. */
typedef struct QueueClaim
{
	S2SReadDelivery delivery;		/* the row, for s2s_render_request() */
	int32		attempt;		/* this attempt's number (attempts after the claim) */
	int			endpoint_cap;	/* the endpoint's concurrency cap */
	int64		retry_window_s; /* endpoint's, else s2s_tracking.retry_window */
} QueueClaim;

/* How a result is written back. */
typedef enum QueueOutcome
{
	QUEUE_SENT,					/* 2xx: done */
	QUEUE_RETRY,				/* retry at next_attempt_at */
	QUEUE_FAILED,				/* final: failed with the reason */
	QUEUE_GIVE_BACK				/* not counted: waiting again (endpoint paused) */
} QueueOutcome;

typedef struct QueueResult
{
	int64		id;
	int64		token;
	int32		attempt;
	QueueOutcome outcome;
	int			http_status;	/* 0: no HTTP answer */
	const char *error;			/* NULL: none */
	const char *response;		/* NULL: none; already capped and valid text */
	TimestampTz next_attempt_at;	/* QUEUE_RETRY only */
	TimestampTz started_at;
	double		duration_ms;
} QueueResult;

/* The endpoints with deliveries in flight, and how many each (for the claim's room). */
typedef struct QueueBusy
{
	int			n;
	const char **names;
	int		   *counts;
} QueueBusy;

/* Forgets the prepared plans (after an error that may have come from a dropped object). */
extern void s2s_queue_forget_plans(void);

/*
 * Gives back every 'sending' delivery (all_sending) or those whose lease expired: they
 * belong to a dead worker. Attempts are not counted. Returns how many. The expired ones
 * are looked for in a chunk of the waiting rows per call, the next call going on where
 * this one stopped (a backlog of any size costs each call the same).
 */
extern uint64 s2s_queue_reconcile(bool all_sending);

/*
 * Claims at most "limit" due deliveries of enabled, unpaused endpoints, each endpoint
 * limited to its cap minus busy's count, under claim token "token" for lease_s seconds.
 * Results are palloc'd in the current memory context (not SPI's). When nothing was
 * claimed, *next_due is set to the earliest next_attempt_at still waiting (0 when none, or
 * when something was claimed).
 */
extern int	s2s_queue_claim(int64 token, int limit, int lease_s, const QueueBusy *busy,
						QueueClaim **claims, TimestampTz *next_due);

/* What a write-back changed: deliveries now sent, retrying, failed. */
typedef struct QueueCounts
{
	int64		sent;
	int64		retried;
	int64		failed;
} QueueCounts;

/*
 * Writes back n results in one statement (guarded by claim token and status 'sending', so
 * a stale worker never overwrites a newer claim) and inserts their s2s.attempts rows.
 * Adds to *counts what it changed (a stale result changes nothing and is not counted).
 */
extern void s2s_queue_write_back(const QueueResult *results, int n, QueueCounts *counts);

/*
 * Moves the end of the lease of the n deliveries (ids, with the claim tokens they were
 * claimed under, still 'sending') to lease_until: their requests are still in flight.
 */
extern void s2s_queue_renew_leases(const int64 *ids, const int64 *tokens, int n,
							   TimestampTz lease_until);

/* Pauses an endpoint (unless already paused) with the reason. */
extern void s2s_queue_pause_endpoint(const char *endpoint, const char *reason);

/* Deletes at most "limit" finished deliveries older than retention, and their attempts. */
extern uint64 s2s_queue_purge(int retention_s, int limit);

/*
 * Purges the first-seen times of orders never validated (s2s_private.order_first_seen)
 * older than retention_s, at most limit rows. Returns how many went.
 */
extern uint64 s2s_queue_purge_first_seen(int retention_s, int limit);

#endif							/* S2S_QUEUE_H */
