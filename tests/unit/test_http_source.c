/* Unit tests of the HTTP range source: the Content-Range parser, and the
 * read-ahead windows against a small range server in a thread (what is
 * fetched, how often, and how much is held).  Installs over HTTP are
 * covered end to end in tests/e2e/test_http.py (nginx). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "abota/http_source.h"
#include "abota/source.h"

static void test_content_range_ok(void **state)
{
	(void)state;
	uint64_t a, b, t;
	assert_true(http_parse_content_range("bytes 0-0/1", &a, &b, &t));
	assert_true(a == 0 && b == 0 && t == 1);
	assert_true(http_parse_content_range("bytes 4096-8191/17829", &a, &b, &t));
	assert_true(a == 4096 && b == 8191 && t == 17829);
	assert_true(http_parse_content_range(
		"bytes 18446744073709551613-18446744073709551614/18446744073709551615", &a, &b, &t));
	assert_true(t == UINT64_MAX && b == UINT64_MAX - 1);
}

/* Found by fuzz/fuzz_http_range.c: sscanf("%llu") saturated an overflowing
 * total to 2^64-1 and took signs and spaces. */
static void test_content_range_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"bytes 18446744073709551614-18446744073709551614/18446744077903551615",
		"bytes 0-0/18446744073709551616",
		"bytes 0-0/-1",
		"bytes -0-0/5",
		"bytes +0-0/5",
		"bytes  0-0/5",
		"bytes 0- 0/5",
		"bytes 0-0/ 5",
		"bytes 0-0/5 ",
		"bytes 0-0/5x",
		"bytes 0-0/",
		"bytes 0-/5",
		"bytes */5",
		"bytes 5-4/10",
		"bytes 0-10/10",
		"Bytes 0-0/1",
		"bytes0-0/1",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t a = 7, b = 7, t = 7;
		if (http_parse_content_range(bad[i], &a, &b, &t))
			fail_msg("accepted '%s'", bad[i]);
		assert_true(a == 7 && b == 7 && t == 7); /* untouched */
	}
}


/* --- the transfer, against a small range server in a thread --- */

/* The served file: TOTAL bytes, byte i a function of i (no buffer). */
#define TOTAL (42u << 20)
#define MiB (1u << 20)

static uint8_t byte_at(uint64_t i)
{
	return (uint8_t)((i * 2654435761u) >> 13 ^ i >> 9);
}

struct server {
	int fd;
	uint16_t port;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t requests, bytes; /* range responses, body bytes sent */
	/* stall_at > 0: a response stops before that offset until released
	 * (or 10 s pass: timed_out) */
	uint64_t stall_at;
	bool stalled, released, timed_out;
};

/* Sends up to the stall point, then waits to be released. */
static void stall(struct server *s)
{
	pthread_mutex_lock(&s->lock);
	s->stalled = true;
	pthread_cond_broadcast(&s->cond);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	while (!s->released && !s->timed_out)
		if (pthread_cond_timedwait(&s->cond, &s->lock, &until) != 0)
			s->timed_out = true;
	s->stall_at = 0;
	pthread_mutex_unlock(&s->lock);
}

static bool send_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w <= 0)
			return false;
		b += w;
		n -= (size_t)w;
	}
	return true;
}

struct client {
	struct server *s;
	int fd;
};

/* One keep-alive connection: answers "Range: bytes=A-B" with a 206. */
static void *serve_conn(void *p)
{
	struct client *c = p;
	char req[8192];
	size_t have = 0;
	for (;;) {
		char *end = NULL;
		while (!(end = memmem(req, have, "\r\n\r\n", 4))) {
			if (have == sizeof(req))
				goto out;
			ssize_t r = recv(c->fd, req + have, sizeof(req) - have, 0);
			if (r <= 0)
				goto out;
			have += (size_t)r;
		}
		size_t hlen = (size_t)(end - req) + 4;
		char head[8192];
		memcpy(head, req, hlen - 4);
		head[hlen - 4] = '\0';
		memmove(req, req + hlen, have - hlen);
		have -= hlen;
		unsigned long long a = 0, b = TOTAL - 1;
		const char *rg = strcasestr(head, "\r\nRange: bytes=");
		if (rg)
			sscanf(rg + 15, "%llu-%llu", &a, &b);
		if (b >= TOTAL)
			b = TOTAL - 1;
		char hdr[256];
		int n = snprintf(hdr, sizeof(hdr),
				 "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %llu-%llu/%u\r\n"
				 "Content-Length: %llu\r\nETag: \"t1\"\r\n\r\n",
				 a, b, TOTAL, b - a + 1);
		if (!send_all(c->fd, hdr, (size_t)n))
			goto out;
		uint8_t chunk[65536];
		for (unsigned long long o = a; o <= b;) {
			size_t k = b - o + 1 < sizeof(chunk) ? (size_t)(b - o + 1) : sizeof(chunk);
			pthread_mutex_lock(&c->s->lock);
			uint64_t st = c->s->stall_at;
			pthread_mutex_unlock(&c->s->lock);
			if (st && o == st)
				stall(c->s);
			else if (st && o < st && o + k > st)
				k = (size_t)(st - o); /* up to the stall point */
			for (size_t i = 0; i < k; i++)
				chunk[i] = byte_at(o + i);
			if (!send_all(c->fd, chunk, k))
				goto out;
			o += k;
		}
		pthread_mutex_lock(&c->s->lock);
		c->s->requests++;
		c->s->bytes += b - a + 1;
		pthread_mutex_unlock(&c->s->lock);
	}
out:
	close(c->fd);
	free(c);
	return NULL;
}

static void *serve_accept(void *p)
{
	struct server *s = p;
	for (;;) {
		int fd = accept(s->fd, NULL, NULL);
		if (fd < 0)
			return NULL; /* the listening socket was shut down */
		struct client *c = malloc(sizeof(*c));
		pthread_t t;
		if (!c) {
			close(fd);
			continue;
		}
		*c = (struct client){ s, fd };
		if (pthread_create(&t, NULL, serve_conn, c) != 0) {
			close(fd);
			free(c);
			continue;
		}
		pthread_detach(t);
	}
}

static int server_setup(void **state)
{
	struct server *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->fd >= 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->fd, 8), 0);
	socklen_t sl = sizeof(sa);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sa, &sl), 0);
	s->port = ntohs(sa.sin_port);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, serve_accept, s), 0);
	pthread_detach(t);
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("all_proxy");
	*state = s;
	return 0;
}

static struct source *open_served(struct server *s)
{
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/f", (unsigned)s->port);
	struct source *src = NULL;
	struct abota_error err = { 0 };
	if (source_open_http(url, NULL, &src, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(source_size(src), TOTAL);
	return src;
}

static void read_check(struct source *src, uint64_t off, size_t len)
{
	static uint8_t buf[MiB];
	assert_true(len <= sizeof(buf));
	struct abota_error err = { 0 };
	if (source_read_at(src, buf, len, off, &err) < 0)
		fail_msg("read %zu at %llu: %s", len, (unsigned long long)off, err.msg);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != byte_at(off + i))
			fail_msg("byte %llu wrong", (unsigned long long)(off + i));
}

/* A planned image read front to back with the hash blocks read alongside,
 * as a streamed verity install does: each byte comes once, in about one
 * request per 8 MiB, and what is held at once is one window (plus a
 * segment of the last one and the hash blocks' own small window), not the
 * last four windows. */
static void test_planned_stream_holds_one_window(void **state)
{
	struct server *s = *state;
	struct source *src = open_served(s);
	const uint64_t data = 40 * (uint64_t)MiB, hash = data + 16384, hash_len = 5 * 65536;
	const struct source_range plan[] = { { 0, data }, { hash, hash_len } };
	source_plan(src, plan, 2);
	uint64_t h = hash;
	for (uint64_t off = 0; off < data;) {
		size_t n = data - off < 100000 ? (size_t)(data - off) : 100000;
		read_check(src, off, n);
		off += n;
		/* 64 KiB of hash blocks per 8 MiB of data, ahead of the data */
		while (h < hash + hash_len && (h - hash) / 65536 * 8 * MiB <= off) {
			read_check(src, h, 65536);
			h += 65536;
		}
	}
	while (h < hash + hash_len) {
		read_check(src, h, 65536);
		h += 65536;
	}
	struct http_stats st;
	http_source_stats(src, &st);
	source_close(src);
	assert_int_equal(st.retries, 0);
	/* every planned byte once (the open's 4 bytes are not counted) */
	assert_int_equal(st.bytes, data + hash_len);
	assert_true(st.requests <= 1 + data / (8 * MiB) + 1 + 1);
	assert_true(st.held_max <= 8 * MiB + 2 * MiB);
	pthread_mutex_lock(&s->lock);
	assert_int_equal(s->requests, st.requests);
	pthread_mutex_unlock(&s->lock);
}

/* Bytes a window already gave back are fetched again when read again:
 * right bytes, one more request. */
static void test_given_back_bytes_are_fetched_again(void **state)
{
	struct server *s = *state;
	struct source *src = open_served(s);
	const struct source_range plan[] = { { 0, 16 * (uint64_t)MiB } };
	source_plan(src, plan, 1);
	for (uint64_t off = 0; off < 16 * (uint64_t)MiB; off += 131072)
		read_check(src, off, 131072);
	struct http_stats before;
	http_source_stats(src, &before);
	read_check(src, MiB + 1000, 100000);
	read_check(src, 9 * (uint64_t)MiB - 5000, 10000);
	struct http_stats after;
	http_source_stats(src, &after);
	source_close(src);
	assert_true(after.requests > before.requests);
}

struct reader {
	struct source *src;
	uint64_t off;
	size_t len;
};

static void *read_thread(void *p)
{
	struct reader *r = p;
	read_check(r->src, r->off, r->len);
	return NULL;
}

/* A window that is still arriving hands out what has arrived: while the
 * server holds back everything after 2 MiB of an 8 MiB window one worker
 * asked for, another reads its first MiB without waiting for the rest. */
static void test_filling_window_hands_out_what_arrived(void **state)
{
	struct server *s = *state;
	struct source *src = open_served(s);
	const struct source_range plan[] = { { 0, 16 * (uint64_t)MiB } };
	source_plan(src, plan, 1);
	pthread_mutex_lock(&s->lock);
	s->stall_at = 2 * (uint64_t)MiB;
	s->stalled = s->released = s->timed_out = false;
	pthread_mutex_unlock(&s->lock);
	struct reader a = { src, 0, 65536 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, read_thread, &a), 0);
	pthread_mutex_lock(&s->lock);
	while (!s->stalled && !s->timed_out)
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
	read_check(src, MiB, 100000); /* before the stall point: there already */
	pthread_mutex_lock(&s->lock);
	bool timed_out = s->timed_out;
	s->released = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(t, NULL);
	read_check(src, 3 * (uint64_t)MiB, 100000);
	source_close(src);
	assert_false(timed_out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_content_range_ok),
		cmocka_unit_test(test_content_range_malformed),
		cmocka_unit_test(test_planned_stream_holds_one_window),
		cmocka_unit_test(test_given_back_bytes_are_fetched_again),
		cmocka_unit_test(test_filling_window_hands_out_what_arrived),
	};
	/* one server for the transfer tests; it lives until the process ends */
	return cmocka_run_group_tests(tests, server_setup, NULL);
}
