/*
 * netcheck.c
 *		The ranges an endpoint may not reach unless s2s_tracking.allowed_networks lists
 *		them, and the parser of that list (see netcheck.h).
 *
 * Why these ranges: whoever may write s2s.endpoints chooses where the worker connects, and
 * the response is stored where that role can read it. Without a check the worker would be
 * a relay into the database server's own networks: loopback services, private and CGNAT
 * ranges, the cloud metadata service (169.254.169.254, fd00:ec2::254) that hands out the
 * machine's credentials. Multicast, broadcast and reserved ranges are no destination for a
 * postback either. IPv6 forms that carry an IPv4 address are judged by that address, so
 * that ::ffff:127.0.0.1 or 64:ff9b::a00:1 (NAT64) cannot be used to go around the rule.
 *
 * Plain C and libc only: no PostgreSQL, no name resolution, no allocation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "netcheck.h"

/* A refused range's description, and whether allow_link_local lets it through. */
typedef struct Category
{
	const char *what;
	bool		link_local;
} Category;

static const Category cat_this_net = {"a \"this network\" address (0.0.0.0/8)", false};
static const Category cat_private10 = {"a private address (10.0.0.0/8)", false};
static const Category cat_cgnat = {"a shared CGNAT address (100.64.0.0/10)", false};
static const Category cat_loopback4 = {"a loopback address (127.0.0.0/8)", false};
static const Category cat_metadata4 = {"a cloud metadata address (169.254.169.254, link-local)", true};
static const Category cat_link_local4 = {"a link-local address (169.254.0.0/16)", true};
static const Category cat_private172 = {"a private address (172.16.0.0/12)", false};
static const Category cat_ietf = {"an IETF protocol assignment address (192.0.0.0/24)", false};
static const Category cat_private192 = {"a private address (192.168.0.0/16)", false};
static const Category cat_multicast4 = {"a multicast address (224.0.0.0/4)", false};
static const Category cat_reserved4 = {"a reserved or broadcast address (240.0.0.0/4)", false};

static const Category cat_unspecified6 = {"the unspecified address (::)", false};
static const Category cat_loopback6 = {"a loopback address (::1)", false};
static const Category cat_nat64_local = {"a local-use NAT64 address (64:ff9b:1::/48)", false};
static const Category cat_metadata6 = {"a cloud metadata address (fd00:ec2::254)", false};
static const Category cat_unique_local = {"a unique local (private) address (fc00::/7)", false};
static const Category cat_link_local6 = {"a link-local address (fe80::/10)", true};
static const Category cat_site_local = {"a site-local address (fec0::/10)", false};
static const Category cat_multicast6 = {"a multicast address (ff00::/8)", false};

/* The category of an IPv4 address (host order), or NULL for a public one. */
static const Category *
classify4(unsigned long a)
{
	if (a == 0xA9FEA9FEul)
		return &cat_metadata4;
	switch (a >> 24)
	{
		case 0:
			return &cat_this_net;
		case 10:
			return &cat_private10;
		case 127:
			return &cat_loopback4;
	}
	if ((a & 0xFFC00000ul) == 0x64400000ul)
		return &cat_cgnat;
	if ((a & 0xFFFF0000ul) == 0xA9FE0000ul)
		return &cat_link_local4;
	if ((a & 0xFFF00000ul) == 0xAC100000ul)
		return &cat_private172;
	if ((a & 0xFFFFFF00ul) == 0xC0000000ul)
		return &cat_ietf;
	if ((a & 0xFFFF0000ul) == 0xC0A80000ul)
		return &cat_private192;
	if ((a & 0xF0000000ul) == 0xE0000000ul)
		return &cat_multicast4;
	if ((a & 0xF0000000ul) == 0xF0000000ul)
		return &cat_reserved4;
	return NULL;
}

static unsigned long
v4_value(const unsigned char *b)
{
	return ((unsigned long) b[0] << 24) | ((unsigned long) b[1] << 16) |
		((unsigned long) b[2] << 8) | (unsigned long) b[3];
}

static bool
all_zero(const unsigned char *b, int n)
{
	for (int i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

/*
 * The IPv4 address an IPv6 address carries, if any, and in which form: IPv4-mapped
 * (::ffff:0:0/96), NAT64 (64:ff9b::/96), IPv4-compatible (::/96, deprecated but still
 * parsed by everything) and 6to4 (2002::/16, the address in bits 16-47).
 */
static const char *
embedded_v4(const NetAddr *a, NetAddr *v4)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
	static const unsigned char nat64[12] = {0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
	const unsigned char *src = NULL;
	const char *form = NULL;

	if (a->family != 6)
		return NULL;
	if (memcmp(a->b, mapped, 12) == 0)
		src = a->b + 12, form = "IPv4-mapped";
	else if (memcmp(a->b, nat64, 12) == 0)
		src = a->b + 12, form = "NAT64";
	else if (all_zero(a->b, 12) && v4_value(a->b + 12) > 1)	/* not :: nor ::1 */
		src = a->b + 12, form = "IPv4-compatible";
	else if (a->b[0] == 0x20 && a->b[1] == 0x02)
		src = a->b + 2, form = "6to4";
	if (src == NULL)
		return NULL;
	v4->family = 4;
	memset(v4->b, 0, sizeof(v4->b));
	memcpy(v4->b, src, 4);
	return form;
}

/* The category of an IPv6 address that carries no IPv4 address, or NULL. */
static const Category *
classify6(const NetAddr *a)
{
	static const unsigned char metadata[16] = {0xFD, 0, 0x0E, 0xC2, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0x02, 0x54};
	const unsigned char *b = a->b;

	if (all_zero(b, 16))
		return &cat_unspecified6;
	if (all_zero(b, 15) && b[15] == 1)
		return &cat_loopback6;
	if (b[0] == 0 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B && b[4] == 0 && b[5] == 1)
		return &cat_nat64_local;
	if (memcmp(b, metadata, 16) == 0)
		return &cat_metadata6;
	if ((b[0] & 0xFE) == 0xFC)
		return &cat_unique_local;
	if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80)
		return &cat_link_local6;
	if (b[0] == 0xFE && (b[1] & 0xC0) == 0xC0)
		return &cat_site_local;
	if (b[0] == 0xFF)
		return &cat_multicast6;
	return NULL;
}

bool
net_cidr_contains(const NetCidr *net, const NetAddr *addr)
{
	int			bits = net->bits;
	int			full = bits / 8;

	if (net->addr.family != addr->family)
		return false;
	if (memcmp(net->addr.b, addr->b, full) != 0)
		return false;
	if (bits % 8 != 0)
	{
		unsigned char mask = (unsigned char) (0xFF << (8 - bits % 8));

		if ((net->addr.b[full] & mask) != (addr->b[full] & mask))
			return false;
	}
	return true;
}

static bool
in_allowed(const NetPolicy *policy, const NetAddr *addr)
{
	for (int i = 0; i < policy->n_allowed; i++)
		if (net_cidr_contains(&policy->allowed[i], addr))
			return true;
	return false;
}

static void
format_addr(const NetAddr *a, char *out, size_t len)
{
	if (inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->b, out, (socklen_t) len) == NULL)
		snprintf(out, len, "(address)");
}

const char *
net_refusal(const NetAddr *addr, const NetPolicy *policy, char *why)
{
	NetAddr		v4;
	const char *form = embedded_v4(addr, &v4);
	const Category *cat;
	char		text[INET6_ADDRSTRLEN];

	if (form != NULL)
		cat = classify4(v4_value(v4.b));
	else if (addr->family == 4)
		cat = classify4(v4_value(addr->b));
	else
		cat = classify6(addr);
	if (cat == NULL)
		return NULL;
	if (cat->link_local && policy->allow_link_local)
		return NULL;
	if (in_allowed(policy, addr) || (form != NULL && in_allowed(policy, &v4)))
		return NULL;

	format_addr(addr, text, sizeof(text));
	if (form != NULL)
		snprintf(why, NET_REFUSAL_LEN, "%s is %s in %s form", text, cat->what, form);
	else
		snprintf(why, NET_REFUSAL_LEN, "%s is %s", text, cat->what);
	return why;
}

bool
net_parse_addr(const char *text, NetAddr *out)
{
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, text, out->b) == 1)
	{
		out->family = 4;
		return true;
	}
	if (inet_pton(AF_INET6, text, out->b) == 1)
	{
		out->family = 6;
		return true;
	}
	return false;
}

bool
net_addr_from_sockaddr(const struct sockaddr *sa, NetAddr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET)
	{
		out->family = 4;
		memcpy(out->b, &((const struct sockaddr_in *) sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6)
	{
		out->family = 6;
		memcpy(out->b, &((const struct sockaddr_in6 *) sa)->sin6_addr, 16);
		return true;
	}
	return false;
}

/* One item of the list, NUL-terminated, without surrounding blanks. */
static bool
parse_cidr(const char *item, NetCidr *out, char *err, size_t errlen)
{
	char		addr[64];
	const char *slash = strchr(item, '/');
	size_t		alen = slash ? (size_t) (slash - item) : strlen(item);
	int			max_bits;
	int			bits;

	if (alen == 0 || alen >= sizeof(addr))
	{
		snprintf(err, errlen, "\"%s\" is not a network address", item);
		return false;
	}
	memcpy(addr, item, alen);
	addr[alen] = '\0';
	if (!net_parse_addr(addr, &out->addr))
	{
		snprintf(err, errlen, "\"%s\" is not an IPv4 or IPv6 address", addr);
		return false;
	}
	max_bits = out->addr.family == 4 ? 32 : 128;
	bits = max_bits;
	if (slash != NULL)
	{
		const char *p = slash + 1;

		if (*p == '\0' || strlen(p) > 3 || strspn(p, "0123456789") != strlen(p))
		{
			snprintf(err, errlen, "\"%s\" has no valid prefix length after \"/\"", item);
			return false;
		}
		bits = atoi(p);
		if (bits > max_bits)
		{
			snprintf(err, errlen, "prefix length of \"%s\" is out of range (0 to %d)",
					 item, max_bits);
			return false;
		}
	}
	out->bits = bits;

	/* Host bits set is a typo more often than not ("10.0.0.1/8"): say so, as cidr does. */
	for (int i = 0; i < max_bits / 8; i++)
	{
		int			keep = bits - i * 8;
		unsigned char mask = keep >= 8 ? 0xFF : keep <= 0 ? 0 : (unsigned char) (0xFF << (8 - keep));

		if ((out->addr.b[i] & ~mask) != 0)
		{
			snprintf(err, errlen, "\"%s\" has bits set to the right of its prefix length", item);
			return false;
		}
	}
	return true;
}

int
net_parse_cidr_list(const char *text, NetCidr *out, int max, char *err, size_t errlen)
{
	const char *p = text ? text : "";
	int			n = 0;

	/* An empty or blank list allows nothing. */
	if (p[strspn(p, " \t\r\n")] == '\0')
		return 0;
	for (;;)
	{
		const char *end = strchr(p, ',');
		size_t		len = end ? (size_t) (end - p) : strlen(p);
		char		item[128];

		while (len > 0 && strchr(" \t\r\n", *p) != NULL)
			p++, len--;
		while (len > 0 && strchr(" \t\r\n", p[len - 1]) != NULL)
			len--;
		if (len == 0)
		{
			snprintf(err, errlen, "the list has an empty item");
			return -1;
		}
		if (len >= sizeof(item))
		{
			snprintf(err, errlen, "item %d is too long to be a network", n + 1);
			return -1;
		}
		if (n == max)
		{
			snprintf(err, errlen, "the list has more than %d networks", max);
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (!parse_cidr(item, &out[n], err, errlen))
			return -1;
		n++;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return n;
}
