/* dosfilter.c - per-address request rate limits (see dosfilter.h). */
#include "dosfilter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 4096 /* power of two */
#define PROBE 16
#define MILLI 1000u /* tokens are counted in thousandths */

struct slot {
	uint8_t key[17]; /* family byte + address */
	bool used;
	uint64_t last_ms;
	uint64_t read_m, write_m; /* tokens x 1000 */
};

struct dosfilter {
	struct dosfilter_config c;
	pthread_mutex_t lock;
	struct slot slots[SLOTS];
};

static int parse_cidr(const char *s, size_t len, struct dosfilter_cidr *out)
{
	char buf[64];
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	char *slash = strchr(buf, '/');
	unsigned prefix = 0;
	if (slash) {
		*slash = '\0';
		const char *p = slash + 1;
		if (!*p || strlen(p) > 3)
			return -EINVAL;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			prefix = prefix * 10 + (unsigned)(*p - '0');
		}
	}
	struct dosfilter_cidr c = {0};
	if (inet_pton(AF_INET, buf, c.addr) == 1) {
		c.family = AF_INET;
		c.prefix = slash ? prefix : 32;
		if (c.prefix > 32)
			return -EINVAL;
	} else if (inet_pton(AF_INET6, buf, c.addr) == 1) {
		c.family = AF_INET6;
		c.prefix = slash ? prefix : 128;
		if (c.prefix > 128)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	*out = c;
	return 0;
}

int dosfilter_parse_whitelist(const char *list, struct dosfilter_config *c, char *why,
			      size_t why_size)
{
	struct dosfilter_cidr w[DOSFILTER_MAX_CIDRS] = {{0}};
	size_t n = 0;
	if (strcmp(list, "none") != 0) {
		const char *p = list;
		for (;;) {
			size_t len = strcspn(p, ",");
			if (n == DOSFILTER_MAX_CIDRS) {
				snprintf(why, why_size, "more than %d entries", DOSFILTER_MAX_CIDRS);
				return -EINVAL;
			}
			if (parse_cidr(p, len, &w[n]) < 0) {
				snprintf(why, why_size,
					 "'%.*s' is not ADDRESS[/PREFIX] (numeric IPv4 or IPv6)",
					 (int)(len > 60 ? 60 : len), p);
				return -EINVAL;
			}
			n++;
			if (!p[len])
				break;
			p += len + 1;
		}
	}
	memcpy(c->whitelist, w, n * sizeof(w[0]));
	c->n_whitelist = n;
	return 0;
}

struct dosfilter *dosfilter_new(const struct dosfilter_config *c)
{
	struct dosfilter *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->c = *c;
	pthread_mutex_init(&f->lock, NULL);
	return f;
}

void dosfilter_free(struct dosfilter *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned bytes = bits / 8, rest = bits % 8;
	if (memcmp(a, b, bytes) != 0)
		return false;
	if (!rest)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

static uint64_t refill(uint64_t tokens, uint64_t elapsed_ms, unsigned limit)
{
	uint64_t cap = (uint64_t)limit * MILLI;
	/* limit tokens per second = limit milli-tokens per millisecond */
	if (elapsed_ms >= 1000 || tokens + elapsed_ms * limit >= cap)
		return cap;
	return tokens + elapsed_ms * limit;
}

bool dosfilter_allow(struct dosfilter *f, const struct sockaddr *sa, bool write, uint64_t now_ms)
{
	unsigned limit = write ? f->c.max_write : f->c.max_read;
	if (!limit || !sa)
		return true;
	uint8_t key[17] = {0};
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(a, mapped, 12) == 0) { /* IPv4 client on a dual-stack socket */
			key[0] = 4;
			memcpy(key + 1, a + 12, 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, a, 16);
		}
	} else {
		return true;
	}
	for (size_t i = 0; i < f->c.n_whitelist; i++) {
		const struct dosfilter_cidr *w = &f->c.whitelist[i];
		if ((w->family == AF_INET) == (key[0] == 4) && prefix_match(key + 1, w->addr, w->prefix))
			return true;
	}
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < sizeof(key); i++)
		h = (h ^ key[i]) * 16777619u;
	pthread_mutex_lock(&f->lock);
	struct slot *s = NULL, *victim = NULL;
	for (unsigned i = 0; i < PROBE; i++) {
		struct slot *x = &f->slots[(h + i) & (SLOTS - 1)];
		if (x->used && memcmp(x->key, key, sizeof(key)) == 0) {
			s = x;
			break;
		}
		if (!victim || !x->used || (victim->used && x->last_ms < victim->last_ms))
			victim = x;
	}
	if (!s) {
		s = victim;
		memcpy(s->key, key, sizeof(key));
		s->used = true;
		s->last_ms = now_ms;
		s->read_m = (uint64_t)f->c.max_read * MILLI;
		s->write_m = (uint64_t)f->c.max_write * MILLI;
	}
	uint64_t elapsed = now_ms > s->last_ms ? now_ms - s->last_ms : 0;
	s->read_m = refill(s->read_m, elapsed, f->c.max_read);
	s->write_m = refill(s->write_m, elapsed, f->c.max_write);
	if (now_ms > s->last_ms)
		s->last_ms = now_ms;
	uint64_t *t = write ? &s->write_m : &s->read_m;
	bool ok = *t >= MILLI;
	if (ok)
		*t -= MILLI;
	pthread_mutex_unlock(&f->lock);
	return ok;
}
