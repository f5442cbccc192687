/* Unit tests of the parent side of the sandboxed HTTP source: a fake helper
 * process (forked here) answers the fixed-size protocol correctly or
 * wrongly, and every wrong answer must end in a clean error, never in bytes
 * handed to the caller.  The real helper (libcurl as the sandbox user) is
 * tested end to end in tests/e2e/test_sandbox.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "abota/sandbox_source.h"

#define URL "http://user:pw@example.invalid/b.raucb?token=x"
#define SIZE 4096u

struct req {
	uint32_t op, len;
	uint64_t off;
};
struct reply {
	int32_t status;
	uint32_t len;
};

enum mode { GOOD, LONG_REPLY, POSITIVE_STATUS, ERROR_THEN_GOOD, DIE_ON_READ, OPEN_ERROR,
	    OPEN_EOF, SHORT_DATA, SILENT_STATS };

static void put(int fd, const void *p, size_t n)
{
	if (write(fd, p, n) != (ssize_t)n)
		_exit(9);
}

static bool get(int fd, void *p, size_t n)
{
	size_t d = 0;
	while (d < n) {
		ssize_t r = read(fd, (char *)p + d, n - d);
		if (r <= 0)
			return false;
		d += (size_t)r;
	}
	return true;
}

/* The fake helper's answers on one channel; the open is answered on
 * channel 0 only. */
static void helper(enum mode m, int fd, bool open_reply)
{
	if (!open_reply)
		goto serve;
	if (m == OPEN_EOF)
		_exit(0);
	if (m == OPEN_ERROR) {
		const char msg[] = "nope: HTTP 403";
		struct reply r = { -EACCES, sizeof(msg) - 1 };
		put(fd, &r, sizeof(r));
		put(fd, msg, sizeof(msg) - 1);
		_exit(1);
	}
	struct reply r = { 0, 8 };
	uint64_t size = SIZE;
	put(fd, &r, sizeof(r));
	put(fd, &size, sizeof(size));
serve:;
	struct req q;
	bool errored = false;
	while (get(fd, &q, sizeof(q))) {
		if (q.op == 2) { /* plan: swallow */
			uint8_t buf[16];
			for (uint32_t i = 0; i < q.len; i++)
				get(fd, buf, sizeof(buf));
			struct reply ack = { 0, 0 };
			put(fd, &ack, sizeof(ack));
			continue;
		}
		if (q.op == 3 && m == SILENT_STATS)
			continue; /* asked for its counters: never answers */
		if (m == DIE_ON_READ)
			_exit(3);
		if (m == POSITIVE_STATUS) {
			struct reply x = { 5, 0 };
			put(fd, &x, sizeof(x));
			continue;
		}
		if (m == ERROR_THEN_GOOD && !errored) {
			errored = true;
			const char msg[] = "bad\nthing\x01";
			struct reply x = { -ENOENT, sizeof(msg) - 1 };
			put(fd, &x, sizeof(x));
			put(fd, msg, sizeof(msg) - 1);
			continue;
		}
		uint32_t n = q.len + (m == LONG_REPLY ? 1 : 0);
		struct reply x = { 0, n };
		put(fd, &x, sizeof(x));
		uint8_t *buf = malloc(n);
		for (uint32_t i = 0; i < n; i++)
			buf[i] = (uint8_t)(q.off + i);
		put(fd, buf, m == SHORT_DATA ? n / 2 : n);
		free(buf);
		if (m == SHORT_DATA)
			_exit(4);
	}
	_exit(0);
}

struct chan1 {
	enum mode m;
	int fd;
};

static void *chan1_main(void *arg)
{
	struct chan1 *c = arg;
	if (c->m != OPEN_EOF && c->m != OPEN_ERROR)
		helper(c->m, c->fd, false);
	for (;;)
		pause();
	return NULL;
}

static int start(enum mode m, struct source **out, struct abota_error *err)
{
	int parent[SANDBOX_CHANNELS], child[SANDBOX_CHANNELS];
	for (int i = 0; i < SANDBOX_CHANNELS; i++) {
		int sv[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		parent[i] = sv[0];
		child[i] = sv[1];
	}
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < SANDBOX_CHANNELS; i++)
			close(parent[i]);
		/* channel 1 by a thread: one process, as the real helper, so
		 * its exit closes both channels */
		static struct chan1 c1;
		c1.m = m;
		c1.fd = child[1];
		pthread_t t;
		if (pthread_create(&t, NULL, chan1_main, &c1) != 0)
			_exit(8);
		helper(m, child[0], true);
	}
	for (int i = 0; i < SANDBOX_CHANNELS; i++)
		close(child[i]);
	return sandbox_source_adopt(parent, pid, URL, out, err);
}

static void test_good_helper(void **state)
{
	(void)state;
	struct source *s = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(start(GOOD, &s, &err), 0);
	assert_true(source_is_sandboxed(s));
	assert_true(sandbox_source_pid(s) > 0);
	assert_true(source_size(s) == SIZE);
	/* credentials and query are not shown in messages */
	assert_string_equal(source_name(s), "http://example.invalid/b.raucb");
	struct source_range r = { 0, 100 };
	source_plan(s, &r, 1);
	uint8_t buf[300];
	assert_int_equal(source_read_at(s, buf, sizeof(buf), 1000, &err), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], (uint8_t)(1000 + i));
	/* beyond the size: refused before the helper is asked */
	assert_true(source_read_at(s, buf, 10, SIZE - 5, &err) < 0);
	source_close(s);
}

struct reader {
	struct source *s;
	int fails;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint8_t buf[777];
	for (uint64_t off = 0; off + sizeof(buf) <= SIZE; off += 331) {
		struct abota_error err = { 0 };
		if (source_read_at(r->s, buf, sizeof(buf), off, &err) < 0 ||
		    buf[0] != (uint8_t)off || buf[776] != (uint8_t)(off + 776))
			r->fails++;
	}
	return NULL;
}

/* Two readers at once use both channels (the squashfs workers). */
static void test_concurrent_readers(void **state)
{
	(void)state;
	struct source *s = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(start(GOOD, &s, &err), 0);
	struct reader r[2] = { { s, 0 }, { s, 0 } };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(r[0].fails + r[1].fails, 0);
	source_close(s);
}

/* SC-181: the privileged side takes from the network process only replies
 * of the size it asked for; a longer one is refused, nothing is copied to
 * the caller, and the source stays failed. */
static void test_reply_longer_than_asked(void **state)
{
	(void)state;
	struct source *s = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(start(LONG_REPLY, &s, &err), 0);
	uint8_t buf[100];
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(source_read_at(s, buf, sizeof(buf), 0, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "reply of 101 bytes to a request for 100"));
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xee); /* nothing taken */
	/* the channel is out of step: the source stays failed */
	abota_error_clear(&err);
	assert_true(source_read_at(s, buf, 10, 0, &err) < 0);
	assert_non_null(strstr(err.msg, "reply of 101 bytes"));
	source_close(s);
}

static void test_positive_status(void **state)
{
	(void)state;
	struct source *s = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(start(POSITIVE_STATUS, &s, &err), 0);
	uint8_t buf[10];
	assert_int_equal(source_read_at(s, buf, sizeof(buf), 0, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "malformed reply (status 5"));
	source_close(s);
}

static void test_error_reply_is_cleaned_and_channel_reusable(void **state)
{
	(void)state;
	struct source *s = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(start(ERROR_THEN_GOOD, &s, &err), 0);
	uint8_t buf[10];
	/* both channels answer their first read with an error */
	int r = source_read_at(s, buf, sizeof(buf), 0, &err);
	assert_int_equal(r, -ENOENT);
	assert_string_equal(err.msg, "bad?thing?");
	for (int i = 0; i < 4; i++) {
		abota_error_clear(&err);
		r = source_read_at(s, buf, sizeof(buf), 7, &err);
		if (r == 0)
			break;
		assert_int_equal(r, -ENOENT);
	}
	assert_int_equal(r, 0);
	assert_int_equal(buf[0], 7);
	source_close(s);
}

static void test_helper_dies(void **state)
{
	(void)state;
	struct source *s = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(start(DIE_ON_READ, &s, &err), 0);
	uint8_t buf[10];
	assert_int_equal(source_read_at(s, buf, sizeof(buf), 0, &err), -EIO);
	assert_non_null(strstr(err.msg, "exited with status 3"));
	source_close(s);
}

/* Closing asks the helper for its counters (for the log); one that does not
 * answer is not waited for: the channel's timeout is made for downloads. */
static void test_close_does_not_wait_for_silent_helper(void **state)
{
	(void)state;
	struct source *s = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(start(SILENT_STATS, &s, &err), 0);
	uint8_t buf[10];
	assert_int_equal(source_read_at(s, buf, sizeof(buf), 0, &err), 0);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	source_close(s);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(b.tv_sec - a.tv_sec < 30);
}

static void test_short_data(void **state)
{
	(void)state;
	struct source *s = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(start(SHORT_DATA, &s, &err), 0);
	uint8_t buf[100];
	assert_true(source_read_at(s, buf, sizeof(buf), 0, &err) < 0);
	assert_non_null(strstr(err.msg, "streaming helper"));
	source_close(s);
}

static void test_open_error(void **state)
{
	(void)state;
	struct source *s = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(start(OPEN_ERROR, &s, &err), -EACCES);
	assert_null(s);
	assert_string_equal(err.msg, "nope: HTTP 403");
}

static void test_open_eof(void **state)
{
	(void)state;
	struct source *s = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(start(OPEN_EOF, &s, &err), -EIO);
	assert_null(s);
	assert_non_null(strstr(err.msg, "exited with status 0"));
}

static void test_missing_user(void **state)
{
	(void)state;
	struct source *s = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(source_open_http_sandboxed("http://127.0.0.1:1/x", NULL,
						    "abota-no-such-user", &s, &err),
			 -ENOENT);
	assert_null(s);
	assert_non_null(strstr(err.msg, "[streaming] sandbox-user: user 'abota-no-such-user' does not exist"));
	abota_error_clear(&err);
	assert_int_equal(source_open_http_sandboxed("http://127.0.0.1:1/x", NULL, "root", &s, &err),
			 -EPERM);
	assert_non_null(strstr(err.msg, "uid 0"));
	abota_error_clear(&err);
	assert_int_equal(source_open_http_sandboxed("/local/file", NULL, NULL, &s, &err), -EINVAL);
}

/* The real helper up to the network: as root it drops and then fails to
 * connect (nothing listens on port 1); as anyone else the drop itself
 * fails, and says so. */
static void test_real_helper_errors_reach_the_parent(void **state)
{
	(void)state;
	struct source *s = NULL;
	struct abota_error err = { 0 };
	struct http_opts o = { .max_retries = 1, .connect_timeout_s = 2 };
	int r = source_open_http_sandboxed("http://127.0.0.1:1/x", &o, NULL, &s, &err);
	assert_true(r < 0);
	assert_null(s);
	if (geteuid() == 0)
		assert_non_null(strstr(err.msg, "http://127.0.0.1:1/x"));
	else
		assert_non_null(strstr(err.msg, "streaming sandbox: setgroups"));
	/* no helper left behind */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_helper),
		cmocka_unit_test(test_concurrent_readers),
		cmocka_unit_test(test_reply_longer_than_asked),
		cmocka_unit_test(test_positive_status),
		cmocka_unit_test(test_error_reply_is_cleaned_and_channel_reusable),
		cmocka_unit_test(test_helper_dies),
		cmocka_unit_test(test_short_data),
		cmocka_unit_test(test_open_error),
		cmocka_unit_test(test_open_eof),
		cmocka_unit_test(test_missing_user),
		cmocka_unit_test(test_real_helper_errors_reach_the_parent),
		cmocka_unit_test(test_close_does_not_wait_for_silent_helper),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
