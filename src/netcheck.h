/*
 * netcheck.h
 *		Which network addresses an endpoint may reach: the ranges refused by default
 *		(loopback, private, CGNAT, link-local, cloud metadata, ...), and the CIDR list of
 *		s2s_tracking.allowed_networks that lets some of them through.
 *
 * Pure C (no PostgreSQL, no network access) so that it can be unit tested and fuzzed on
 * its own: the HTTP client (http.c) checks every address it is about to connect to, and
 * the endpoints guard (netcheck_sql.c, sql/install/35_networks.sql) checks a URL whose
 * host is written as a literal address.
 */
#ifndef S2S_NETCHECK_H
#define S2S_NETCHECK_H

#include <stdbool.h>
#include <stddef.h>

struct sockaddr;

/* Most networks s2s_tracking.allowed_networks may list. */
#define NET_MAX_ALLOWED 64

/* Room for the text of a refusal: "<address> is <category>". */
#define NET_REFUSAL_LEN 160

/* An address: IPv4 (4 bytes) or IPv6 (16 bytes), network byte order. */
typedef struct NetAddr
{
	int			family;			/* 4 or 6 */
	unsigned char b[16];
} NetAddr;

/* A CIDR network: the address with its host bits zero, and the prefix length. */
typedef struct NetCidr
{
	NetAddr		addr;
	int			bits;			/* 0..32 or 0..128 */
} NetCidr;

/* What an endpoint may reach besides the public Internet. */
typedef struct NetPolicy
{
	const NetCidr *allowed;		/* s2s_tracking.allowed_networks */
	int			n_allowed;
	bool		allow_link_local;	/* deprecated s2s_tracking.allow_link_local */
} NetPolicy;

/*
 * Parses a comma-separated list of CIDR networks ("127.0.0.0/8, ::1/128"; a bare address
 * is a /32 or /128; spaces around items are ignored; an empty or blank text is an empty
 * list) into out[0..max-1]. Returns the number of networks, or -1 with the reason in
 * err: an item that is not an address, a prefix out of range, host bits set
 * ("10.0.0.1/8": write 10.0.0.0/8), an empty item, more than max networks.
 */
extern int	net_parse_cidr_list(const char *text, NetCidr *out, int max,
								char *err, size_t errlen);

/* Parses one numeric address as inet_pton does (dotted IPv4, or IPv6). */
extern bool net_parse_addr(const char *text, NetAddr *out);

/* The address of a socket address (AF_INET or AF_INET6); false for another family. */
extern bool net_addr_from_sockaddr(const struct sockaddr *sa, NetAddr *out);

/* Whether addr is inside the network. */
extern bool net_cidr_contains(const NetCidr *net, const NetAddr *addr);

/*
 * Why addr may not be reached under policy, or NULL when it may. The reason is written
 * to why (at least NET_REFUSAL_LEN bytes) as "<address> is <category>", e.g.
 * "127.0.0.1 is a loopback address", "::ffff:10.0.0.1 is a private address (IPv4-mapped)".
 * An IPv6 form that carries an IPv4 address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4,
 * IPv4-compatible) is judged by that IPv4 address, and allowed when either form is in an
 * allowed network.
 */
extern const char *net_refusal(const NetAddr *addr, const NetPolicy *policy, char *why);

#endif							/* S2S_NETCHECK_H */
