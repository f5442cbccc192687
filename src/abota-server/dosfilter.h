/* dosfilter.h - requests per second per client address on the device API,
 * as hawkBit's DoS filter (hawkbit-ddi.md §1.11): by default 200 reads
 * (GET/HEAD) and 50 writes per second per IP, 429 beyond; private,
 * loopback and link-local IPv4 addresses are exempt by default (hawkBit's
 * whitelist), IPv6 ::1 is not.
 *
 * Each address has a token bucket per kind (capacity = the limit, refilled at
 * the limit per second), so a burst of twice the limit is cut whatever its
 * alignment to a clock second.  Addresses live in a fixed table; when it is
 * full, the least recently seen address in the probed window is forgotten
 * (a flood from thousands of addresses is not what a per-address limit
 * stops).  Pure apart from a mutex: the clock is passed in.
 */
#ifndef ABOTA_SERVER_DOSFILTER_H
#define ABOTA_SERVER_DOSFILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DOSFILTER_DEFAULT_READ 200
#define DOSFILTER_DEFAULT_WRITE 50
#define DOSFILTER_DEFAULT_WHITELIST \
	"127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,169.254.0.0/16"
#define DOSFILTER_MAX_LIMIT 1000000
#define DOSFILTER_MAX_CIDRS 32

struct dosfilter_cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
};

struct dosfilter_config {
	unsigned max_read, max_write; /* per second; 0 = no limit */
	struct dosfilter_cidr whitelist[DOSFILTER_MAX_CIDRS];
	size_t n_whitelist;
};

/* "none" or a comma-separated list of ADDRESS[/PREFIX] (IPv4 or IPv6).
 * 0, or -EINVAL with the reason in why (c untouched). */
int dosfilter_parse_whitelist(const char *list, struct dosfilter_config *c, char *why,
			      size_t why_size);

struct dosfilter;
/* NULL on allocation failure. */
struct dosfilter *dosfilter_new(const struct dosfilter_config *c);
void dosfilter_free(struct dosfilter *f);

/* One request from sa (IPv4, IPv6 or IPv4-mapped IPv6) at now_ms: true when
 * it may be served, false when it is over the limit (429). */
bool dosfilter_allow(struct dosfilter *f, const struct sockaddr *sa, bool write, uint64_t now_ms);

#endif
