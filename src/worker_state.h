/*
 * worker_state.h
 *		What one database's delivery worker keeps from one pass of its loop to the next
 *		(the transfers in flight, the endpoints' loads, the results held back), and the
 *		work one pass hands from phase to phase. Shared by the worker's files only.
 *
 * The worker is one process: none of this is in shared memory (shared.h holds what the
 * launcher and the backends see of it).
 */
#ifndef S2S_WORKER_STATE_H
#define S2S_WORKER_STATE_H

#include "datatype/timestamp.h"
#include "utils/palloc.h"

#include "http_driver.h"
#include "queue.h"
#include "shared.h"
#include "worker.h"

/* Upper bound of s2s_tracking.max_concurrency: the in-flight slots are allocated once. */
#define MAX_SLOTS 1000

/* One transfer in flight. */
typedef struct WorkerSlot
{
	bool		used;
	int64		id;
	int64		token;
	int32		attempt;
	int			endpoint;		/* index in s2s_worker.endpoints[] */
	TimestampTz first_attempt_at;
	int64		retry_window_s;
	char	   *secret;			/* the endpoint's secret as sent (s2s_worker.cxt), to mask
								 * it in what is stored; NULL when none */
	char	   *refused_pattern;	/* the endpoint's refused_pattern (s2s_worker.cxt);
									 * NULL: none */
	TimestampTz lease_until;	/* the row's lease_until, as committed */
	struct WorkerSlot *next_free;
} WorkerSlot;

/* Endpoints seen so far and how many transfers each has in flight. */
typedef struct EndpointLoad
{
	char	   *name;
	int			in_flight;
} EndpointLoad;

/*
 * A result whose write-back failed on its own (an error in its transaction, e.g. a lock
 * timeout, or a trigger that refuses it), held until it can be written back: its row stays
 * 'sending' under our claim with its lease renewed, as for a request in flight, so an
 * error never turns a sent delivery into a resent one. Held results take room from
 * max_concurrency, so there are never more than MAX_SLOTS. Strings in s2s_worker.cxt.
 */
typedef struct HeldResult
{
	QueueResult r;
	TimestampTz lease_until;	/* the row's lease_until, as committed */
} HeldResult;

/* The worker's state that outlives a pass. */
typedef struct S2SWorker
{
	MemoryContext cxt;			/* lives as long as the worker */
	MemoryContext batch_cxt;	/* reset after every pass */
	HttpDriver *http;
	S2SDbSlot  *db_slot;		/* this database's slot in shared memory */
	S2SWorkerArgs args;			/* from the launcher */
	Oid			extension_owner;	/* looked up at the start of every unit */

	/* transfers in flight: MAX_SLOTS slots, the free ones chained */
	WorkerSlot *slots;
	WorkerSlot *free_slots;
	int			in_flight;
	EndpointLoad *endpoints;
	int			n_endpoints;
	int			max_endpoints;

	/* results held back (worker_write_back.c) */
	HeldResult *held;
	int			n_held;
	TimestampTz next_held_retry;

	/* when the next lease renewal is due: the earliest lease's half-life; 0: none */
	TimestampTz next_renewal;
} S2SWorker;

extern S2SWorker s2s_worker;

/* Work handed from one phase of a pass to the next (in s2s_worker.batch_cxt). */
typedef struct WorkerPass
{
	QueueResult *results;
	int			n_results;
	QueueCounts counts;			/* what the write-back changed */
	int		   *pause;			/* endpoint indexes to pause */
	const char **pause_reason;
	int			n_pause;
	bool		reconcile_expired;
	TimestampTz *leases;		/* lease_until of each result's row */
	bool		renew;			/* renew the leases of requests in flight */
	TimestampTz **renewed;		/* the leases the unit renewed (of slots, held results) */
	int			n_renewed;
	TimestampTz renewed_until;
	int			claim_limit;
	int64		claim_token;
	TimestampTz claim_lease_until;	/* lease_until of the rows the claim took */
	QueueClaim *claims;
	int			n_claims;
	TimestampTz next_due;		/* from the claim: earliest waiting delivery */
	TimestampTz retry_due;		/* earliest retry among this pass's results */
} WorkerPass;

#endif							/* S2S_WORKER_STATE_H */
