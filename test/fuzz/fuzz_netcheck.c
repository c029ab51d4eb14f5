/*
 * fuzz_netcheck.c
 *		libFuzzer target for src/netcheck.c: the s2s_tracking.allowed_networks parser and
 *		the address classification.
 *
 * Input: one byte of mode, 16 bytes of an address, then the text of an allowed-networks
 * list. Checked: the parser returns -1 (with a reason) or 0..NET_MAX_ALLOWED networks,
 * each with its host bits zero and containing itself; a refusal always names the address
 * first; an IPv4-mapped address is refused exactly when its IPv4 address is; every
 * address is allowed once 0.0.0.0/0 and ::/0 are listed; a listed network's own address
 * is always allowed.
 */
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "netcheck.h"
#include "fuzz.h"

static void
check_refusal(const NetAddr *a, const NetPolicy *p)
{
	char		why[NET_REFUSAL_LEN];
	char		text[INET6_ADDRSTRLEN];
	const char *r = net_refusal(a, p, why);

	if (r == NULL)
		return;
	FUZZ_CHECK(r == why, "refusal not written to why");
	inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->b, text, sizeof(text));
	FUZZ_CHECK(strncmp(why, text, strlen(text)) == 0 && strstr(why, " is ") != NULL,
			   "refusal \"%s\" does not start with the address %s", why, text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static NetCidr nets[NET_MAX_ALLOWED];
	static NetCidr all[2];
	int			mode = (int) fuzz_take(&data, &size, 1);
	NetAddr		a4;
	NetAddr		a6;
	NetAddr		mapped;
	NetPolicy	none = {NULL, 0, (mode & 1) != 0};
	NetPolicy	everything;
	NetPolicy	listed;
	char		err[256];
	char	   *text;
	int			n;

	memset(&a4, 0, sizeof(a4));
	memset(&a6, 0, sizeof(a6));
	a4.family = 4;
	a6.family = 6;
	for (int i = 0; i < 16; i++)
	{
		unsigned char b = (unsigned char) fuzz_take(&data, &size, 1);

		a6.b[i] = b;
		if (i < 4)
			a4.b[i] = b;
	}
	text = fuzz_cstring(data, size);

	/* classification of arbitrary addresses, and the IPv4-mapped rule */
	check_refusal(&a4, &none);
	check_refusal(&a6, &none);
	mapped = a6;
	memset(mapped.b, 0, 10);
	mapped.b[10] = mapped.b[11] = 0xFF;
	memcpy(mapped.b + 12, a4.b, 4);
	{
		char		w1[NET_REFUSAL_LEN];
		char		w2[NET_REFUSAL_LEN];

		FUZZ_CHECK((net_refusal(&a4, &none, w1) == NULL) == (net_refusal(&mapped, &none, w2) == NULL),
				   "IPv4 and its mapped form judged differently");
	}
	if (all[0].addr.family == 0 &&
		net_parse_cidr_list("0.0.0.0/0, ::/0", all, 2, err, sizeof(err)) != 2)
		abort();
	everything.allowed = all;
	everything.n_allowed = 2;
	everything.allow_link_local = false;
	{
		char		w[NET_REFUSAL_LEN];

		FUZZ_CHECK(net_refusal(&a4, &everything, w) == NULL &&
				   net_refusal(&a6, &everything, w) == NULL, "0.0.0.0/0, ::/0 refuses %s", w);
	}

	/* the list parser */
	err[0] = '\0';
	n = net_parse_cidr_list(text, nets, NET_MAX_ALLOWED, err, sizeof(err));
	FUZZ_CHECK(n >= -1 && n <= NET_MAX_ALLOWED, "count %d", n);
	if (n < 0)
	{
		FUZZ_CHECK(err[0] != '\0', "no reason for a refused list");
		fuzz_reset();
		return 0;
	}
	listed.allowed = nets;
	listed.n_allowed = n;
	listed.allow_link_local = false;
	for (int i = 0; i < n; i++)
	{
		NetCidr    *c = &nets[i];
		int			max = c->addr.family == 4 ? 32 : 128;
		char		w[NET_REFUSAL_LEN];

		FUZZ_CHECK(c->addr.family == 4 || c->addr.family == 6, "family %d", c->addr.family);
		FUZZ_CHECK(c->bits >= 0 && c->bits <= max, "bits %d", c->bits);
		for (int bit = c->bits; bit < max; bit++)
			FUZZ_CHECK((c->addr.b[bit / 8] & (0x80 >> (bit % 8))) == 0, "host bit %d set", bit);
		FUZZ_CHECK(net_cidr_contains(c, &c->addr), "network does not contain itself");
		FUZZ_CHECK(net_refusal(&c->addr, &listed, w) == NULL, "listed %s refused", w);
		check_refusal(&a4, &listed);
		check_refusal(&a6, &listed);
	}
	fuzz_reset();
	return 0;
}
