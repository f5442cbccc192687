/* abota-server's per-address rate limits (src/abota-server/dosfilter.c),
 * with a clock the test drives.  SC-174: above the configured reads/writes
 * per second an address is refused (429 in the server), others are not,
 * whitelisted ranges never are, and the limits refill with time. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "dosfilter.h"

static struct sockaddr_in v4(const char *ip)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	return a;
}

static struct sockaddr_in6 v6(const char *ip)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6};
	assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
	return a;
}

static unsigned burst(struct dosfilter *f, const void *sa, bool write, unsigned n, uint64_t now)
{
	unsigned ok = 0;
	for (unsigned i = 0; i < n; i++)
		ok += dosfilter_allow(f, (const struct sockaddr *)sa, write, now);
	return ok;
}

static struct dosfilter *make(unsigned rd, unsigned wr, const char *wl)
{
	struct dosfilter_config c = {.max_read = rd, .max_write = wr};
	char why[128];
	assert_int_equal(dosfilter_parse_whitelist(wl, &c, why, sizeof(why)), 0);
	struct dosfilter *f = dosfilter_new(&c);
	assert_non_null(f);
	return f;
}

/* SC-174: the limits per address and kind, and the refill */
static void test_limits(void **state)
{
	(void)state;
	struct dosfilter *f = make(20, 5, "none");
	struct sockaddr_in a = v4("203.0.113.7"), b = v4("203.0.113.8");
	uint64_t t = 1000000;
	assert_int_equal(burst(f, &a, false, 100, t), 20);
	assert_int_equal(burst(f, &a, true, 100, t), 5);  /* writes counted apart */
	assert_int_equal(burst(f, &b, false, 100, t), 20); /* another address is not hurt */
	/* 20 per second: one more token every 50 ms */
	assert_int_equal(burst(f, &a, false, 10, t + 49), 0);
	assert_int_equal(burst(f, &a, false, 10, t + 50), 1);
	assert_int_equal(burst(f, &a, false, 100, t + 2000), 20); /* full again, not more */
	/* a clock going backwards does not mint tokens */
	assert_int_equal(burst(f, &a, false, 10, t), 0);
	dosfilter_free(f);
	/* 0 = no limit */
	f = make(0, 1, "none");
	assert_int_equal(burst(f, &a, false, 5000, t), 5000);
	assert_int_equal(burst(f, &a, true, 5, t), 1);
	dosfilter_free(f);
}

static void test_whitelist(void **state)
{
	(void)state;
	struct dosfilter *f = make(2, 2, DOSFILTER_DEFAULT_WHITELIST);
	const char *exempt[] = {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255",
				"192.168.1.1", "169.254.9.9"};
	const char *limited[] = {"172.32.0.1", "8.8.8.8", "11.0.0.1", "192.169.0.1"};
	for (size_t i = 0; i < sizeof(exempt) / sizeof(exempt[0]); i++) {
		struct sockaddr_in a = v4(exempt[i]);
		assert_int_equal(burst(f, &a, false, 50, 5000), 50);
	}
	for (size_t i = 0; i < sizeof(limited) / sizeof(limited[0]); i++) {
		struct sockaddr_in a = v4(limited[i]);
		assert_int_equal(burst(f, &a, false, 50, 5000), 2);
	}
	/* as hawkBit: IPv6 loopback is not exempt; an IPv4 client on a
	 * dual-stack socket is judged by its IPv4 address */
	struct sockaddr_in6 lo6 = v6("::1"), mapped = v6("::ffff:127.0.0.1"),
			    mapped_pub = v6("::ffff:8.8.4.4");
	assert_int_equal(burst(f, &lo6, false, 50, 5000), 2);
	assert_int_equal(burst(f, &mapped, false, 50, 5000), 50);
	assert_int_equal(burst(f, &mapped_pub, false, 50, 5000), 2);
	dosfilter_free(f);
	f = make(2, 2, "2001:db8::/32,198.51.100.0/24");
	struct sockaddr_in6 in6 = v6("2001:db8:1::5"), out6 = v6("2001:db9::5");
	struct sockaddr_in in4 = v4("198.51.100.200"), out4 = v4("198.51.101.1");
	assert_int_equal(burst(f, &in6, false, 10, 1), 10);
	assert_int_equal(burst(f, &out6, false, 10, 1), 2);
	assert_int_equal(burst(f, &in4, false, 10, 1), 10);
	assert_int_equal(burst(f, &out4, false, 10, 1), 2);
	dosfilter_free(f);
}

static void test_bad_whitelists(void **state)
{
	(void)state;
	const char *bad[] = {"", ",", "127.0.0.1,", "300.0.0.1", "10.0.0.0/33", "::1/129",
			     "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "localhost", "10.0.0.0 /8",
			     "1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,"
			     "1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,"
			     "1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,"
			     "1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dosfilter_config c = {.n_whitelist = 7};
		char why[128] = "";
		assert_int_equal(dosfilter_parse_whitelist(bad[i], &c, why, sizeof(why)), -EINVAL);
		assert_true(why[0] != '\0');
		assert_int_equal(c.n_whitelist, 7); /* untouched on failure */
	}
}

/* More addresses than the table holds: old ones are forgotten, the ones
 * being limited right now stay limited. */
static void test_many_addresses(void **state)
{
	(void)state;
	struct dosfilter *f = make(3, 3, "none");
	struct sockaddr_in hot = v4("198.51.100.1");
	assert_int_equal(burst(f, &hot, false, 10, 100), 3);
	for (uint32_t i = 0; i < 20000; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET};
		a.sin_addr.s_addr = htonl(0x0a000000u + 0x01000000u + i); /* 11.x.x.x */
		assert_true(dosfilter_allow(f, (const struct sockaddr *)&a, false, 50));
	}
	/* still no token for the hot address at t=100 */
	assert_int_equal(burst(f, &hot, false, 10, 100), 0);
	dosfilter_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_whitelist),
		cmocka_unit_test(test_bad_whitelists),
		cmocka_unit_test(test_many_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
