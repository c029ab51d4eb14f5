/*
 * settings.h
 *		The s2s_tracking.* settings (GUCs), defined in s2s_tracking.c.
 *
 * Only the SQL-facing and worker code reads these; pure modules (click, render, retry)
 * receive the values they need as arguments so that they can be tested on their own.
 */
#ifndef S2S_SETTINGS_H
#define S2S_SETTINGS_H

#include "netcheck.h"

/*
 * The extension's version, for the User-Agent: the Makefile passes the control
 * file's default_version with -D, so that it is written in one place only.
 */
#ifndef S2S_VERSION
#error "S2S_VERSION is not defined: build with the Makefile (it takes default_version from s2s_tracking.control)"
#endif

extern char *s2s_database;			/* s2s_tracking.database */
extern int	s2s_max_databases;		/* s2s_tracking.max_databases */
extern bool s2s_http_thread;			/* s2s_tracking.http_thread */
extern bool s2s_allow_http;			/* s2s_tracking.allow_http */
extern int	s2s_retention_s;		/* s2s_tracking.retention */
extern int	s2s_click_ttl_s;		/* s2s_tracking.click_ttl */
extern int	s2s_click_max_skew_s;	/* s2s_tracking.click_max_skew */
extern int	s2s_cookie_max_ids;		/* s2s_tracking.cookie_max_ids */
extern int	s2s_max_concurrency;	/* s2s_tracking.max_concurrency */
extern int	s2s_endpoint_concurrency;	/* s2s_tracking.endpoint_concurrency */
extern int	s2s_batch_size;			/* s2s_tracking.batch_size */
extern int	s2s_connect_timeout_ms; /* s2s_tracking.connect_timeout */
extern int	s2s_request_timeout_ms; /* s2s_tracking.request_timeout */
extern int	s2s_retry_base_ms;		/* s2s_tracking.retry_base */
extern int	s2s_retry_max_ms;		/* s2s_tracking.retry_max */
extern int	s2s_retry_window_s;		/* s2s_tracking.retry_window */
extern int	s2s_lease_s;			/* s2s_tracking.lease */
extern int	s2s_poll_interval_ms;	/* s2s_tracking.poll_interval */
extern int	s2s_response_limit;		/* s2s_tracking.response_limit */
extern bool s2s_allow_link_local;	/* s2s_tracking.allow_link_local (deprecated) */
extern char *s2s_allowed_networks;	/* s2s_tracking.allowed_networks, as written */

/* s2s_tracking.allowed_networks parsed (by its check hook), and allow_link_local. */
extern NetPolicy s2s_network_policy(void);

#endif							/* S2S_SETTINGS_H */
