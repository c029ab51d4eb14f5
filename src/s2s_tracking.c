/*
 * s2s_tracking.c
 *		Module entry point: _PG_init defines every setting, reserves shared memory and
 *		registers the launcher of the delivery workers.
 *
 * All s2s_tracking.* settings are defined here and nowhere else, so that a DBA reading
 * this file (or SHOW ALL) sees every knob at once.
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/varlena.h"

#include "compat.h"
#include "launcher.h"
#include "settings.h"
#include "shared.h"

PG_MODULE_MAGIC;

char	   *s2s_database = NULL;
int			s2s_max_databases = 8;
bool		s2s_http_thread = false;
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
char	   *s2s_allowed_networks = NULL;

/* The parsed list: the check hook's "extra", installed by the assign hook. */
typedef struct AllowedNetworks
{
	int			n;
	NetCidr		nets[NET_MAX_ALLOWED];
} AllowedNetworks;

static const AllowedNetworks *allowed_networks = NULL;

void		_PG_init(void);

/*
 * s2s_tracking.allowed_networks is parsed once, here, so that a bad list is refused
 * where it is set (SET, ALTER SYSTEM, postgresql.conf) with the reason, and the worker
 * and the endpoints guard only ever see a valid one.
 */
static bool
check_allowed_networks(char **newval, void **extra, GucSource source)
{
	AllowedNetworks *list;
	char		err[256];

	/* "extra" is freed by the GUC machinery: guc_malloc from 16 on, malloc before */
	list = (AllowedNetworks *) s2s_guc_extra_alloc(sizeof(AllowedNetworks));
	if (list == NULL)
		return false;
	list->n = net_parse_cidr_list(*newval, list->nets, NET_MAX_ALLOWED, err, sizeof(err));
	if (list->n < 0)
	{
		GUC_check_errmsg("invalid value for s2s_tracking.allowed_networks: %s", err);
		GUC_check_errdetail("The value is a comma-separated list of CIDR networks, such as \"127.0.0.0/8, ::1/128\".");
		s2s_guc_extra_free(list);
		return false;
	}
	*extra = list;
	return true;
}

static void
assign_allowed_networks(const char *newval, void *extra)
{
	allowed_networks = (const AllowedNetworks *) extra;
}

/*
 * s2s_tracking.database: one database name, a comma-separated list of them (a name with
 * a comma or spaces in double quotes), or "*". Refused where it is set when it cannot be
 * split, so that the launcher only ever reads a list it can use.
 */
static bool
check_database_list(char **newval, void **extra, GucSource source)
{
	char	   *raw = pstrdup(*newval);
	List	   *names = NIL;
	bool		ok = SplitGUCList(raw, ',', &names);

	list_free(names);
	pfree(raw);
	if (!ok)
	{
		GUC_check_errmsg("invalid value for s2s_tracking.database: \"%s\"", *newval);
		GUC_check_errdetail("The value is a database name, a comma-separated list of them, or \"*\" for every database that has the extension.");
		return false;
	}
	return true;
}

NetPolicy
s2s_network_policy(void)
{
	NetPolicy	p;

	p.allowed = allowed_networks ? allowed_networks->nets : NULL;
	p.n_allowed = allowed_networks ? allowed_networks->n : 0;
	p.allow_link_local = s2s_allow_link_local;
	return p;
}

static void
define_settings(void)
{
	/*
	 * The launcher's settings: defined only while preloading, since a server that loads
	 * the library later has no launcher and no workers (and a postmaster-level setting can
	 * only be created then).
	 */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomStringVariable("s2s_tracking.database",
								   "Databases whose delivery queues s2s_tracking drains, one worker each: a name, a comma-separated list, or * for every database that has the extension.",
								   NULL, &s2s_database, "postgres",
								   PGC_SIGHUP, GUC_LIST_INPUT,
								   check_database_list, NULL, NULL);
		DefineCustomIntVariable("s2s_tracking.max_databases",
								"Most databases served at once (one delivery worker each, counted in max_worker_processes).",
								NULL, &s2s_max_databases, 8, 1, 1024,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
		DefineCustomBoolVariable("s2s_tracking.http_thread",
								 "Runs each delivery worker's HTTP client on a thread of its own, so that a worker uses two cores.",
								 "Off by default: it raises the drain of a worker that is the limit (doc/performance.md).",
								 &s2s_http_thread, false,
								 PGC_POSTMASTER, 0, NULL, NULL, NULL);
	}
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
	DefineCustomStringVariable("s2s_tracking.allowed_networks",
							   "Networks (comma-separated CIDR list) an endpoint may reach although they are loopback, private, CGNAT, link-local or otherwise refused.",
							   NULL, &s2s_allowed_networks, "",
							   PGC_SUSET, 0,
							   check_allowed_networks, assign_allowed_networks, NULL);
	DefineCustomBoolVariable("s2s_tracking.allow_link_local",
							 "Deprecated: allows endpoints at link-local addresses (169.254.0.0/16, fe80::/10) as if s2s_tracking.allowed_networks listed them.",
							 NULL, &s2s_allow_link_local, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);

	MarkGUCPrefixReserved("s2s_tracking");
}

void
_PG_init(void)
{
	define_settings();

	/*
	 * The workers, their shared state and wake-on-commit exist only when the library is
	 * preloaded; loaded later (CREATE EXTENSION in a server that does not preload it),
	 * the SQL functions still work and enqueued deliveries wait for a worker.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	s2s_shared_init();
	s2s_launcher_register();
}
