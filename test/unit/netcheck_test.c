/*
 * netcheck_test.c
 *		Unit tests of src/netcheck.c: which addresses are refused by default and why, the
 *		IPv6 forms that carry an IPv4 address, s2s_tracking.allowed_networks parsing and
 *		matching, the deprecated allow_link_local. Standalone: built and run by
 *		"make check-unit".
 */
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "unit.h"
#include "netcheck.h"

static NetPolicy
policy_of(const char *list, NetCidr *nets, bool allow_link_local)
{
	NetPolicy	p;
	char		err[256];
	int			n = net_parse_cidr_list(list, nets, NET_MAX_ALLOWED, err, sizeof(err));

	if (n < 0)
	{
		printf("# bad test list \"%s\": %s\n", list, err);
		n = 0;
	}
	p.allowed = nets;
	p.n_allowed = n;
	p.allow_link_local = allow_link_local;
	return p;
}

/* The refusal text of an address under a policy, or NULL when allowed. */
static const char *
refusal(const char *text, const NetPolicy *p, char *why)
{
	NetAddr		a;

	if (!net_parse_addr(text, &a))
		return "(unparsable)";
	return net_refusal(&a, p, why);
}

static void
test_default_refusals(void)
{
	static const struct
	{
		const char *addr;
		const char *want;		/* substring of the reason; NULL: allowed */
	}			cases[] = {
		/* public addresses */
		{"8.8.8.8", NULL},
		{"1.1.1.1", NULL},
		{"93.184.216.34", NULL},
		{"9.255.255.255", NULL},
		{"11.0.0.0", NULL},
		{"100.63.255.255", NULL},
		{"100.128.0.0", NULL},
		{"126.255.255.255", NULL},
		{"128.0.0.0", NULL},
		{"169.253.255.255", NULL},
		{"169.255.0.0", NULL},
		{"172.15.255.255", NULL},
		{"172.32.0.0", NULL},
		{"192.0.1.0", NULL},
		{"192.167.255.255", NULL},
		{"192.169.0.0", NULL},
		{"223.255.255.255", NULL},
		{"2001:db8::1", NULL},
		{"2606:4700:4700::1111", NULL},
		{"fbff:ffff::1", NULL},
		{"fe7f::1", NULL},
		{"::ffff:8.8.8.8", NULL},
		{"64:ff9b::808:808", NULL},
		{"2002:808:808::1", NULL},
		/* IPv4 ranges */
		{"0.0.0.0", "0.0.0.0 is a \"this network\" address (0.0.0.0/8)"},
		{"0.255.255.255", "this network"},
		{"10.0.0.1", "10.0.0.1 is a private address (10.0.0.0/8)"},
		{"10.255.255.255", "private address (10.0.0.0/8)"},
		{"100.64.0.0", "CGNAT"},
		{"100.127.255.255", "CGNAT"},
		{"100.100.100.200", "CGNAT"},	/* Alibaba Cloud's metadata service */
		{"127.0.0.1", "127.0.0.1 is a loopback address (127.0.0.0/8)"},
		{"127.255.255.254", "loopback"},
		{"169.254.169.254", "169.254.169.254 is a cloud metadata address"},
		{"169.254.0.1", "link-local address (169.254.0.0/16)"},
		{"169.254.255.255", "link-local"},
		{"172.16.0.1", "private address (172.16.0.0/12)"},
		{"172.31.255.255", "private address (172.16.0.0/12)"},
		{"192.0.0.192", "IETF protocol assignment"},
		{"192.168.1.1", "private address (192.168.0.0/16)"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.255", "multicast"},
		{"240.0.0.1", "reserved or broadcast"},
		{"255.255.255.255", "reserved or broadcast"},
		/* IPv6 ranges */
		{"::", ":: is the unspecified address"},
		{"::1", "::1 is a loopback address (::1)"},
		{"fc00::1", "unique local"},
		{"fdff:ffff::1", "unique local"},
		{"fd00:ec2::254", "fd00:ec2::254 is a cloud metadata address"},
		{"fe80::1", "link-local address (fe80::/10)"},
		{"febf:ffff::1", "link-local"},
		{"fec0::1", "site-local"},
		{"ff02::1", "multicast"},
		{"64:ff9b:1::a00:1", "local-use NAT64"},
		/* IPv6 forms of refused IPv4 addresses */
		{"::ffff:127.0.0.1", "::ffff:127.0.0.1 is a loopback address (127.0.0.0/8) in IPv4-mapped form"},
		{"::ffff:169.254.169.254", "cloud metadata address (169.254.169.254, link-local) in IPv4-mapped form"},
		{"::ffff:10.1.2.3", "private address (10.0.0.0/8) in IPv4-mapped form"},
		{"::ffff:0.0.0.0", "this network"},
		{"64:ff9b::7f00:1", "loopback address (127.0.0.0/8) in NAT64 form"},
		{"64:ff9b::a9fe:a9fe", "cloud metadata address (169.254.169.254, link-local) in NAT64 form"},
		{"64:ff9b::c0a8:101", "private address (192.168.0.0/16) in NAT64 form"},
		{"::127.0.0.1", "loopback address (127.0.0.0/8) in IPv4-compatible form"},
		{"::10.0.0.1", "private address (10.0.0.0/8) in IPv4-compatible form"},
		{"2002:7f00:1::", "loopback address (127.0.0.0/8) in 6to4 form"},
		{"2002:a9fe:a9fe::1", "cloud metadata"},
	};
	NetCidr		nets[NET_MAX_ALLOWED];
	NetPolicy	p = policy_of("", nets, false);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char		why[NET_REFUSAL_LEN];
		const char *got = refusal(cases[i].addr, &p, why);

		bool		ok;

		if (cases[i].want == NULL)
			ok = CHECK(got == NULL, "%s is allowed by default", cases[i].addr);
		else
			ok = CHECK(got != NULL && strstr(got, cases[i].want) != NULL,
					   "%s is refused by default: %s", cases[i].addr, cases[i].want);
		if (!ok)
			printf("#   got: %s\n", got ? got : "(allowed)");
	}
}

static void
test_allowed_networks(void)
{
	NetCidr		nets[NET_MAX_ALLOWED];
	NetPolicy	p = policy_of("127.0.0.0/8, ::1/128", nets, false);
	NetPolicy	q;
	NetPolicy	ll;
	char		why[NET_REFUSAL_LEN];
	NetCidr		nets2[NET_MAX_ALLOWED];
	NetCidr		nets3[NET_MAX_ALLOWED];

	CHECK(refusal("127.0.0.1", &p, why) == NULL, "127.0.0.1 allowed by 127.0.0.0/8");
	CHECK(refusal("127.1.2.3", &p, why) == NULL, "127.1.2.3 allowed by 127.0.0.0/8");
	CHECK(refusal("::1", &p, why) == NULL, "::1 allowed by ::1/128");
	CHECK(refusal("::ffff:127.0.0.1", &p, why) == NULL,
		  "::ffff:127.0.0.1 allowed by 127.0.0.0/8 (its IPv4 form)");
	CHECK(refusal("10.0.0.1", &p, why) != NULL, "10.0.0.1 still refused");
	CHECK(refusal("169.254.169.254", &p, why) != NULL, "metadata still refused");
	CHECK(refusal("8.8.8.8", &p, why) == NULL, "public still allowed");

	q = policy_of("10.1.0.0/16,fd00::/8", nets2, false);
	CHECK(refusal("10.1.255.255", &q, why) == NULL, "10.1.255.255 allowed by 10.1.0.0/16");
	CHECK(refusal("10.2.0.0", &q, why) != NULL, "10.2.0.0 not allowed by 10.1.0.0/16");
	CHECK(refusal("fd12::1", &q, why) == NULL, "fd12::1 allowed by fd00::/8");
	CHECK(refusal("fc00::1", &q, why) != NULL, "fc00::1 not allowed by fd00::/8");
	CHECK(refusal("127.0.0.1", &q, why) != NULL, "loopback not allowed by that list");

	/* odd prefix lengths */
	q = policy_of("100.64.0.0/10, 172.20.0.0/14", nets2, false);
	CHECK(refusal("100.127.1.1", &q, why) == NULL, "/10 covers 100.127.1.1");
	CHECK(refusal("172.23.255.255", &q, why) == NULL, "/14 covers 172.23.255.255");
	CHECK(refusal("172.24.0.0", &q, why) != NULL, "/14 stops before 172.24.0.0");

	/* 0.0.0.0/0 and ::/0 allow everything of their family */
	q = policy_of("0.0.0.0/0", nets2, false);
	CHECK(refusal("10.0.0.1", &q, why) == NULL && refusal("::1", &q, why) != NULL,
		  "0.0.0.0/0 allows every IPv4 address and no IPv6 one");
	CHECK(refusal("::ffff:10.0.0.1", &q, why) == NULL,
		  "0.0.0.0/0 allows IPv4-mapped forms too");

	/* the deprecated allow_link_local: link-local ranges (and so 169.254.169.254) only */
	ll = policy_of("", nets3, true);
	CHECK(refusal("169.254.169.254", &ll, why) == NULL, "allow_link_local allows 169.254.169.254");
	CHECK(refusal("169.254.1.1", &ll, why) == NULL, "allow_link_local allows 169.254/16");
	CHECK(refusal("fe80::1", &ll, why) == NULL, "allow_link_local allows fe80::/10");
	CHECK(refusal("::ffff:169.254.1.1", &ll, why) == NULL, "allow_link_local allows mapped link-local");
	CHECK(refusal("127.0.0.1", &ll, why) != NULL, "allow_link_local does not allow loopback");
	CHECK(refusal("fd00:ec2::254", &ll, why) != NULL,
		  "allow_link_local does not allow fd00:ec2::254 (unique local, not link-local)");
}

static void
test_parse(void)
{
	static const struct
	{
		const char *text;
		int			want;		/* networks, or -1 */
		const char *err;		/* substring of the error */
	}			cases[] = {
		{"", 0, NULL},
		{"   ", 0, NULL},
		{"127.0.0.0/8", 1, NULL},
		{"127.0.0.0/8, ::1/128", 2, NULL},
		{" 10.0.0.0/8 ,\t192.168.0.0/16 ", 2, NULL},
		{"10.0.0.1", 1, NULL},
		{"::1", 1, NULL},
		{"0.0.0.0/0", 1, NULL},
		{"::/0", 1, NULL},
		{"10.0.0.0/8,", -1, "empty item"},
		{",10.0.0.0/8", -1, "empty item"},
		{"10.0.0.0/8,,::1", -1, "empty item"},
		{"10.0.0.1/8", -1, "bits set to the right"},
		{"::1/64", -1, "bits set to the right"},
		{"10.0.0.0/33", -1, "out of range (0 to 32)"},
		{"::/129", -1, "out of range (0 to 128)"},
		{"10.0.0.0/", -1, "no valid prefix length"},
		{"10.0.0.0/-1", -1, "no valid prefix length"},
		{"10.0.0.0/8/8", -1, "no valid prefix length"},
		{"10.0.0.0/ 8", -1, "no valid prefix length"},
		{"10.0.0.0/0x8", -1, "no valid prefix length"},
		{"10.0.0.0/0008", -1, "no valid prefix length"},
		{"localhost", -1, "not an IPv4 or IPv6 address"},
		{"10.0.0", -1, "not an IPv4 or IPv6 address"},
		{"0x7f000001", -1, "not an IPv4 or IPv6 address"},
		{"10.0.0.0 8", -1, "not an IPv4 or IPv6 address"},
		{"/8", -1, "not a network address"},
		{"fe80::1%eth0", -1, "not an IPv4 or IPv6 address"},
		{"127.0.0.0/8; ::1/128", -1, "no valid prefix length"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		NetCidr		nets[NET_MAX_ALLOWED];
		char		err[256] = "";
		int			n = net_parse_cidr_list(cases[i].text, nets, NET_MAX_ALLOWED, err, sizeof(err));

		bool		ok;

		if (cases[i].want >= 0)
			ok = CHECK(n == cases[i].want, "\"%s\" parses to %d networks", cases[i].text,
					   cases[i].want);
		else
			ok = CHECK(n == -1 && strstr(err, cases[i].err) != NULL,
					   "\"%s\" is refused: %s", cases[i].text, cases[i].err);
		if (!ok)
			printf("#   got %d: %s\n", n, err);
	}

	/* the cap on the number of networks */
	{
		char		text[NET_MAX_ALLOWED * 16 + 64];
		NetCidr		nets[NET_MAX_ALLOWED];
		char		err[256];
		size_t		len = 0;

		for (int i = 0; i <= NET_MAX_ALLOWED; i++)
			len += (size_t) snprintf(text + len, sizeof(text) - len, "%s10.%d.0.0/16",
									 i ? "," : "", i);
		CHECK(net_parse_cidr_list(text, nets, NET_MAX_ALLOWED, err, sizeof(err)) == -1 &&
			  strstr(err, "more than") != NULL, "more than NET_MAX_ALLOWED networks is refused");
		text[strrchr(text, ',') - text] = '\0';
		CHECK(net_parse_cidr_list(text, nets, NET_MAX_ALLOWED, err, sizeof(err)) == NET_MAX_ALLOWED,
			  "exactly NET_MAX_ALLOWED networks is accepted");
	}

	/* a very long item is refused without overflowing anything */
	{
		char		text[600];
		NetCidr		nets[1];
		char		err[256];

		memset(text, '1', sizeof(text) - 1);
		text[sizeof(text) - 1] = '\0';
		CHECK(net_parse_cidr_list(text, nets, 1, err, sizeof(err)) == -1, "a 600-byte item is refused");
	}
}

static void
test_sockaddr(void)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr sun;
	NetAddr		a;
	NetCidr		nets[NET_MAX_ALLOWED];
	NetPolicy	p = policy_of("", nets, false);
	char		why[NET_REFUSAL_LEN];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	CHECK(net_addr_from_sockaddr((struct sockaddr *) &sin, &a) && a.family == 4 &&
		  net_refusal(&a, &p, why) != NULL && strcmp(why, "127.0.0.1 is a loopback address (127.0.0.0/8)") == 0,
		  "a sockaddr_in of 127.0.0.1 is refused with its reason");
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:192.168.0.1", &sin6.sin6_addr);
	CHECK(net_addr_from_sockaddr((struct sockaddr *) &sin6, &a) && a.family == 6 &&
		  net_refusal(&a, &p, why) != NULL, "a sockaddr_in6 of ::ffff:192.168.0.1 is refused");
	memset(&sun, 0, sizeof(sun));
	sun.sa_family = AF_UNIX;
	CHECK(!net_addr_from_sockaddr(&sun, &a), "another family is not an address");
}

int
main(void)
{
	test_default_refusals();
	test_allowed_networks();
	test_parse();
	test_sockaddr();
	return unit_done("netcheck_test");
}
