/*
 * s2s_tracking.c
 *		Module entry point: _PG_init defines every setting, reserves shared memory and
 *		registers the delivery worker.
 *
 * All s2s_tracking.* settings are defined here and nowhere else, so that a DBA reading
 * this file (or SHOW ALL) sees every knob at once.
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "settings.h"
#include "shared.h"
#include "worker.h"

PG_MODULE_MAGIC;

char	   *s2s_database = NULL;
bool		s2s_allow_http = false;
int			s2s_retention_s = 30 * 24 * 3600;
int			s2s_click_ttl_s = 30 * 24 * 3600;
int			s2s_click_max_skew_s = 300;
int			s2s_cookie_max_ids = 10;
int			s2s_max_concurrency = 64;
int			s2s_endpoint_concurrency = 32;
int			s2s_batch_size = 500;
int			s2s_connect_timeout_ms = 5000;
int			s2s_request_timeout_ms = 30000;
int			s2s_retry_base_ms = 10000;
int			s2s_retry_max_ms = 3600 * 1000;
int			s2s_retry_window_s = 72 * 3600;
int			s2s_lease_s = 300;
int			s2s_poll_interval_ms = 10000;
int			s2s_response_limit = 4096;
bool		s2s_allow_link_local = false;
bool		s2s_direct_insert = true;

void		_PG_init(void);

static void
define_settings(void)
{
	/*
	 * A postmaster-level setting can only be created while preloading; a server that
	 * loads the library later has no worker, so the setting would mean nothing there.
	 */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomStringVariable("s2s_tracking.database",
								   "Database whose delivery queue the s2s_tracking worker drains.",
								   NULL, &s2s_database, "postgres",
								   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("s2s_tracking.allow_http",
							 "Allows plain-HTTP endpoint URLs (for tests); HTTPS is required otherwise.",
							 NULL, &s2s_allow_http, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("s2s_tracking.retention",
							"How long finished deliveries (sent, failed, skipped) are kept before the worker purges them.",
							NULL, &s2s_retention_s, 30 * 24 * 3600, 60, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("s2s_tracking.click_ttl",
							"Attribution window: click IDs older than this are refused or dropped.",
							NULL, &s2s_click_ttl_s, 30 * 24 * 3600, 60, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("s2s_tracking.click_max_skew",
							"How far in the future a click ID's embedded time may be (clock skew allowance).",
							NULL, &s2s_click_max_skew_s, 300, 0, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("s2s_tracking.cookie_max_ids",
							"Most click IDs kept in one cookie value; the newest are kept.",
							NULL, &s2s_cookie_max_ids, 10, 1, 100,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("s2s_tracking.max_concurrency",
							"Most HTTP requests the worker has in flight at once, all endpoints together.",
							NULL, &s2s_max_concurrency, 64, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("s2s_tracking.endpoint_concurrency",
							"Most HTTP requests in flight to one endpoint (endpoints.max_concurrency overrides it).",
							NULL, &s2s_endpoint_concurrency, 32, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("s2s_tracking.batch_size",
							"Most deliveries the worker claims or writes back in one statement.",
							NULL, &s2s_batch_size, 500, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("s2s_tracking.connect_timeout",
							"Time allowed to connect to an endpoint (TCP and TLS).",
							NULL, &s2s_connect_timeout_ms, 5000, 1, 600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("s2s_tracking.request_timeout",
							"Time allowed for a whole request, connection included.",
							NULL, &s2s_request_timeout_ms, 30000, 1, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("s2s_tracking.retry_base",
							"First retry delay; each further retry doubles it (with jitter).",
							NULL, &s2s_retry_base_ms, 10000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("s2s_tracking.retry_max",
							"Longest delay between two retries.",
							NULL, &s2s_retry_max_ms, 3600 * 1000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("s2s_tracking.retry_window",
							"How long a delivery keeps being retried after its first attempt before it is failed.",
							NULL, &s2s_retry_window_s, 72 * 3600, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("s2s_tracking.lease",
							"How long a claim lasts; a delivery whose claim expired (worker died) is claimable again.",
							NULL, &s2s_lease_s, 300, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("s2s_tracking.poll_interval",
							"Safety-net poll of the queue; commits wake the worker at once.",
							NULL, &s2s_poll_interval_ms, 10000, 10, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("s2s_tracking.response_limit",
							"Most bytes of a response body that are read and kept.",
							NULL, &s2s_response_limit, 4096, 0, 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomBoolVariable("s2s_tracking.allow_link_local",
							 "Allows endpoints at link-local addresses (169.254.0.0/16, fe80::/10), where cloud metadata services answer.",
							 NULL, &s2s_allow_link_local, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	/*
	 * A developer's switch, not a tuning knob: the regression suite runs once with each
	 * write path and the benchmark compares them (doc/orders.md).
	 */
	DefineCustomBoolVariable("s2s_tracking.direct_insert",
							 "Writes the orders trigger's delivery row through the table access method; off: through the INSERT ... ON CONFLICT statement.",
							 NULL, &s2s_direct_insert, true,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);

	MarkGUCPrefixReserved("s2s_tracking");
}

void
_PG_init(void)
{
	define_settings();

	/*
	 * The worker, its shared state and wake-on-commit exist only when the library is
	 * preloaded; loaded later (CREATE EXTENSION in a server that does not preload it),
	 * the SQL functions still work and enqueued deliveries wait for a worker.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	s2s_shared_init();
	s2s_worker_register();
}
