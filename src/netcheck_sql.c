/*
 * netcheck_sql.c
 *		s2s_private.address_refusal(inet): the endpoints guard's question "may an endpoint
 *		be written with this literal address?", answered by netcheck.c under the
 *		server's s2s_tracking.allowed_networks.
 *
 * The guard (sql/install/35_networks.sql) reads the URL's host and calls this for a host
 * written as an address; the same rules and the same parsed setting as the HTTP client's
 * connect-time check, so that a URL the worker would refuse is refused when it is
 * written. Being C, the call also loads the library in the backend, so the setting read
 * is the real, superuser-only one (never a placeholder a session made up).
 */
#include "postgres.h"

#include <sys/socket.h>

#include "fmgr.h"

#include "compat.h"			/* before utils/inet.h: varatt.h on 16+ */
#include "utils/builtins.h"
#include "utils/inet.h"

#include "netcheck.h"
#include "settings.h"

PG_FUNCTION_INFO_V1(s2s_address_refusal);

/* Why the address may not be an endpoint's (e.g. "10.0.0.1 is a private address ..."), or NULL. */
Datum
s2s_address_refusal(PG_FUNCTION_ARGS)
{
	inet	   *ip = PG_GETARG_INET_PP(0);
	NetAddr		addr;
	NetPolicy	policy = s2s_network_policy();
	char		why[NET_REFUSAL_LEN];

	memset(&addr, 0, sizeof(addr));
	if (ip_family(ip) == PGSQL_AF_INET)
	{
		addr.family = 4;
		memcpy(addr.b, ip_addr(ip), 4);
	}
	else
	{
		addr.family = 6;
		memcpy(addr.b, ip_addr(ip), 16);
	}
	if (net_refusal(&addr, &policy, why) == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(why));
}
