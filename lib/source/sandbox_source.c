/* sandbox_source.c - the HTTP client in an unprivileged child (see
 * sandbox_source.h for the protocol and what the child gives up). */
#include "abota/sandbox_source.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "abota/fileio.h"
#include "abota/log.h"

#define CHANNELS SANDBOX_CHANNELS
#define MAX_READ (16u << 20)      /* one request; larger reads are split */
#define MAX_PLAN (1u << 20)       /* ranges per plan (16 MiB); more are dropped (a hint) */
#define MAX_MSG 512u              /* error message of a reply */
#define MAX_PEM (1u << 20)        /* a TLS file read before the drop */

enum { OP_READ = 1, OP_PLAN = 2, OP_STATS = 3 };

struct req {
	uint32_t op, len;
	uint64_t off;
};

struct reply {
	int32_t status;
	uint32_t len;
};

struct chan {
	int fd;
	bool busy;
};

struct sandbox_source {
	struct source base;
	pid_t pid;
	bool reaped;
	pthread_mutex_t lock;
	pthread_cond_t freed;
	bool lock_ready;
	struct chan ch[CHANNELS];
	/* A channel out of step (short message, bad header) or a dead child
	 * ends the source: every later read fails with this message. */
	int dead_code;
	char dead_msg[300];
};

static const struct source_ops sandbox_ops;

bool source_is_sandboxed(const struct source *src)
{
	return src && src->ops == &sandbox_ops;
}

pid_t sandbox_source_pid(const struct source *src)
{
	return source_is_sandboxed(src) ? ((const struct sandbox_source *)src)->pid : -1;
}

/* --- I/O helpers (both sides) ---------------------------------------- */

/* 1 = all, 0 = end of stream before the first byte, <0 = -errno (-EPIPE for
 * a stream that ended midway). */
static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t done = 0;
	while (done < len) {
		ssize_t n = recv(fd, p + done, len - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		if (n == 0)
			return done ? -EPIPE : 0;
		done += (size_t)n;
	}
	return 1;
}

static int write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* --- the child ---------------------------------------------------------- */

struct child_args {
	const char *url;
	struct http_opts opts;
	uid_t uid;
	gid_t gid;
	pid_t parent;
	int fds[CHANNELS];
};

static int send_error(int fd, int code, const char *msg)
{
	size_t n = strnlen(msg, MAX_MSG);
	struct reply r = { .status = code < 0 && code > -4096 ? code : -EIO, .len = (uint32_t)n };
	int ret = write_full(fd, &r, sizeof(r));
	return ret < 0 ? ret : write_full(fd, msg, n);
}

struct server {
	struct source *src;
	int fd;
};

/* Answers one channel's requests until the parent closes it. */
static void *serve(void *arg)
{
	struct server *sv = arg;
	uint8_t *buf = NULL;
	size_t cap = 0;
	struct req q;
	while (read_full(sv->fd, &q, sizeof(q)) == 1) {
		if (q.op == OP_PLAN) {
			if (q.len > MAX_PLAN)
				break;
			struct source_range *r = malloc(q.len ? q.len * sizeof(*r) : 1);
			if (!r || (q.len && read_full(sv->fd, r, q.len * sizeof(*r)) != 1)) {
				free(r);
				break;
			}
			source_plan(sv->src, r, q.len);
			free(r);
			/* acknowledged, so the reads that follow on any channel
			 * find the plan in place */
			struct reply ack = { 0, 0 };
			if (write_full(sv->fd, &ack, sizeof(ack)) < 0)
				break;
			continue;
		}
		if (q.op == OP_STATS) {
			struct http_stats st;
			http_source_stats(sv->src, &st);
			struct reply r = { .status = 0, .len = sizeof(st) };
			if (write_full(sv->fd, &r, sizeof(r)) < 0 ||
			    write_full(sv->fd, &st, sizeof(st)) < 0)
				break;
			continue;
		}
		if (q.op != OP_READ || q.len > MAX_READ)
			break;
		if (cap < q.len) {
			uint8_t *nb = realloc(buf, q.len);
			if (!nb) {
				if (send_error(sv->fd, -ENOMEM, "out of memory") < 0)
					break;
				continue;
			}
			buf = nb;
			cap = q.len;
		}
		struct abota_error e = { 0 };
		int ret = source_read_at(sv->src, buf, q.len, q.off, &e);
		if (ret < 0) {
			if (send_error(sv->fd, ret, e.msg) < 0)
				break;
			continue;
		}
		struct reply r = { .status = 0, .len = q.len };
		if (write_full(sv->fd, &r, sizeof(r)) < 0 || write_full(sv->fd, buf, q.len) < 0)
			break;
	}
	free(buf);
	return NULL;
}

/* Reads a TLS file while still root. */
static int slurp(const char *what, const char *path, struct http_blob *out, struct abota_error *err)
{
	char *data = NULL;
	size_t len = 0;
	int ret = fileio_read_all(path, MAX_PEM, &data, &len, err);
	if (ret < 0) {
		abota_error_prefix(err, "%s", what);
		return ret;
	}
	out->data = data;
	out->len = len;
	return 0;
}

static int drop_privileges(uid_t uid, gid_t gid, struct abota_error *err)
{
	if (setgroups(0, NULL) < 0)
		return abota_error_set(err, -errno, "setgroups: %s", strerror(errno));
	if (setresgid(gid, gid, gid) < 0)
		return abota_error_set(err, -errno, "setresgid(%u): %s", (unsigned)gid, strerror(errno));
	if (setresuid(uid, uid, uid) < 0)
		return abota_error_set(err, -errno, "setresuid(%u): %s", (unsigned)uid, strerror(errno));
	/* Paranoia: the way back must be closed. */
	if (setresuid(0, 0, 0) == 0 || getuid() != uid || geteuid() != uid)
		return abota_error_set(err, -EPERM, "could regain root after dropping privileges");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) < 0)
		return abota_error_set(err, -errno, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	/* not ptrace-able by other processes of the sandbox user */
	if (prctl(PR_SET_DUMPABLE, 0L, 0L, 0L, 0L) < 0)
		return abota_error_set(err, -errno, "PR_SET_DUMPABLE: %s", strerror(errno));
	return 0;
}

__attribute__((noreturn)) static void child_main(struct child_args *a)
{
	struct abota_error e = { 0 };
	/* Dies with the parent (and if the parent is gone already). */
	/* (The signal follows the thread that forked: the installer opens and
	 * closes a bundle in one thread.) */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0L, 0L, 0L);
	if (getppid() != a->parent)
		_exit(1);
	/* The parent's handlers write to descriptors closed below. */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigset_t all;
	sigemptyset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	/* stdin/stdout from /dev/null, stderr kept (log messages), the
	 * channels on 3.., everything else closed. */
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
	}
	int tmp[CHANNELS];
	for (int i = 0; i < CHANNELS; i++)
		if ((tmp[i] = fcntl(a->fds[i], F_DUPFD_CLOEXEC, 64)) < 0)
			_exit(1);
	for (int i = 0; i < CHANNELS; i++)
		if (dup2(tmp[i], 3 + i) < 0)
			_exit(1);
	if (close_range(3 + CHANNELS, ~0u, 0) < 0)
		for (int fd = 3 + CHANNELS; fd < 65536; fd++)
			close(fd);
	int fd0 = 3;
	if (chdir("/") < 0)
		_exit(1);

	int ret = 0;
	struct http_opts o = a->opts;
	if (o.ca_file && !o.ca_pem.data)
		ret = slurp("tls-ca", o.ca_file, &o.ca_pem, &e);
	if (ret == 0 && o.client_cert && !o.client_cert_pem.data)
		ret = slurp("tls-cert", o.client_cert, &o.client_cert_pem, &e);
	if (ret == 0 && o.client_key && !o.client_key_pem.data)
		ret = slurp("tls-key", o.client_key, &o.client_key_pem, &e);
	o.ca_file = o.client_cert = o.client_key = NULL;
	if (ret == 0)
		ret = drop_privileges(a->uid, a->gid, &e);
	if (ret < 0) {
		abota_error_prefix(&e, "streaming sandbox");
		send_error(fd0, ret, e.msg);
		_exit(1);
	}
	/* From here on network input is parsed, unprivileged. */
	struct source *src = NULL;
	ret = source_open_http(a->url, &o, &src, &e);
	/* libcurl has its copies (CURL_BLOB_COPY); the key goes now */
	if (o.client_key_pem.data) {
		explicit_bzero((void *)(uintptr_t)o.client_key_pem.data, o.client_key_pem.len);
		free((void *)(uintptr_t)o.client_key_pem.data);
	}
	if (ret < 0) {
		send_error(fd0, ret, e.msg);
		_exit(1);
	}
	uint64_t size = source_size(src);
	struct reply r = { .status = 0, .len = sizeof(size) };
	if (write_full(fd0, &r, sizeof(r)) < 0 || write_full(fd0, &size, sizeof(size)) < 0)
		_exit(1);
	struct server sv[CHANNELS];
	for (int i = 0; i < CHANNELS; i++)
		sv[i] = (struct server){ .src = src, .fd = 3 + i };
	for (int i = 1; i < CHANNELS; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, serve, &sv[i]) != 0)
			_exit(1);
		pthread_detach(t);
	}
	serve(&sv[0]);
	/* The parent closed channel 0: it is done (or gone). */
	_exit(0);
}

/* --- the parent --------------------------------------------------------- */

/* Why the child is gone, if it is (reaps it). */
static void describe_end(struct sandbox_source *s, char *out, size_t cap)
{
	int status = 0;
	pid_t r = 0;
	/* the sockets close a moment before the child becomes a zombie */
	for (int i = 0; i < 50 && !s->reaped; i++) {
		r = waitpid(s->pid, &status, WNOHANG);
		if (r == s->pid) {
			s->reaped = true;
			break;
		}
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (r != s->pid)
		snprintf(out, cap, "the streaming helper (pid %d) stopped answering", (int)s->pid);
	else if (WIFSIGNALED(status))
		snprintf(out, cap, "the streaming helper (pid %d) was killed by signal %d",
			 (int)s->pid, WTERMSIG(status));
	else
		snprintf(out, cap, "the streaming helper (pid %d) exited with status %d", (int)s->pid,
			 WEXITSTATUS(status));
}

/* Marks the source broken (lock held). */
static int fail_locked(struct sandbox_source *s, int code, const char *what, struct abota_error *err)
{
	if (!s->dead_code) {
		char why[200];
		if (code == -EPIPE || code == -ECONNRESET || code == 0)
			describe_end(s, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "%s", strerror(-code));
		s->dead_code = code == 0 || code == -EPIPE || code == -ECONNRESET ? -EIO : code;
		snprintf(s->dead_msg, sizeof(s->dead_msg), "%s: %s", what, why);
		/* readers waiting for a channel see it too */
		pthread_cond_broadcast(&s->freed);
	}
	return abota_error_set(err, s->dead_code, "%s: %s", s->base.name, s->dead_msg);
}

/* A reply's error message: printable ASCII only (it comes from the
 * unprivileged side and ends up in logs and D-Bus properties). */
static void clean_message(char *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)m[i] < 0x20 || (unsigned char)m[i] > 0x7e)
			m[i] = '?';
	m[n] = '\0';
}

/* Receives a reply header and, for an error, its message into err.  1 =
 * data of want bytes follows, <0 = error (channel still in step when the
 * child reported the error, else marked dead). */
static int recv_reply(int fd, uint32_t want, struct abota_error *err,
		      bool *broken)
{
	struct reply r;
	int ret = read_full(fd, &r, sizeof(r));
	if (ret <= 0) {
		*broken = true;
		return ret ? ret : -EPIPE;
	}
	if (r.status == 0) {
		if (r.len != want) {
			*broken = true;
			return abota_error_set(err, -EPROTO, "reply of %u bytes to a request for %u",
					       r.len, want);
		}
		return 1;
	}
	if (r.status > 0 || r.status <= -4096 || r.len > MAX_MSG) {
		*broken = true;
		return abota_error_set(err, -EPROTO, "malformed reply (status %d, length %u)",
				       (int)r.status, r.len);
	}
	char msg[MAX_MSG + 1];
	ret = read_full(fd, msg, r.len);
	if (r.len && ret != 1) {
		*broken = true;
		return ret ? ret : -EPIPE;
	}
	clean_message(msg, r.len);
	return abota_error_set(err, r.status, "%s", msg);
}

static struct chan *chan_get(struct sandbox_source *s)
{
	for (;;) {
		if (s->dead_code)
			return NULL;
		for (unsigned i = 0; i < CHANNELS; i++)
			if (!s->ch[i].busy) {
				s->ch[i].busy = true;
				return &s->ch[i];
			}
		pthread_cond_wait(&s->freed, &s->lock);
	}
}

static void chan_put(struct sandbox_source *s, struct chan *c)
{
	pthread_mutex_lock(&s->lock);
	c->busy = false;
	pthread_cond_broadcast(&s->freed);
	pthread_mutex_unlock(&s->lock);
}

/* One request of at most MAX_READ bytes. */
static int read_piece(struct sandbox_source *s, uint8_t *dst, uint32_t len, uint64_t off,
		      struct abota_error *err)
{
	pthread_mutex_lock(&s->lock);
	struct chan *c = chan_get(s);
	if (!c) {
		int ret = abota_error_set(err, s->dead_code, "%s: %s", s->base.name, s->dead_msg);
		pthread_mutex_unlock(&s->lock);
		return ret;
	}
	pthread_mutex_unlock(&s->lock);
	struct req q = { .op = OP_READ, .len = len, .off = off };
	bool broken = false;
	struct abota_error e = { 0 };
	int ret = write_full(c->fd, &q, sizeof(q));
	if (ret < 0)
		broken = true;
	else
		ret = recv_reply(c->fd, len, &e, &broken);
	if (ret == 1) {
		ret = read_full(c->fd, dst, len);
		if (ret != 1) {
			broken = true;
			ret = ret ? ret : -EPIPE;
		} else {
			ret = 0;
		}
	}
	if (broken) {
		pthread_mutex_lock(&s->lock);
		if (e.msg[0] && !s->dead_code) {
			s->dead_code = ret;
			snprintf(s->dead_msg, sizeof(s->dead_msg), "streaming helper: %.250s", e.msg);
		}
		ret = fail_locked(s, ret, "reading from the streaming helper", err);
		pthread_cond_broadcast(&s->freed);
		pthread_mutex_unlock(&s->lock);
		/* the channel stays busy: it is out of step */
		return ret;
	}
	if (ret < 0) /* the child's own error, e.g. HTTP 404 after retries */
		abota_error_set(err, ret, "%s", e.msg);
	chan_put(s, c);
	return ret;
}

static int sandbox_read_at(struct source *src, void *buf, size_t len, uint64_t off,
			   struct abota_error *err)
{
	struct sandbox_source *s = (struct sandbox_source *)src;
	uint8_t *dst = buf;
	while (len > 0) {
		uint32_t n = len > MAX_READ ? MAX_READ : (uint32_t)len;
		int ret = read_piece(s, dst, n, off, err);
		if (ret < 0)
			return ret;
		dst += n;
		off += n;
		len -= n;
	}
	return 0;
}

static void sandbox_plan(struct source *src, const struct source_range *r, size_t n)
{
	struct sandbox_source *s = (struct sandbox_source *)src;
	if (n > MAX_PLAN)
		n = MAX_PLAN; /* a hint: the rest is read without one */
	pthread_mutex_lock(&s->lock);
	struct chan *c = chan_get(s);
	pthread_mutex_unlock(&s->lock);
	if (!c)
		return;
	struct req q = { .op = OP_PLAN, .len = (uint32_t)n };
	struct abota_error ae = { 0 };
	bool broken = false;
	if (write_full(c->fd, &q, sizeof(q)) < 0 ||
	    (n && write_full(c->fd, r, n * sizeof(*r)) < 0) ||
	    recv_reply(c->fd, 0, &ae, &broken) != 1) {
		pthread_mutex_lock(&s->lock);
		struct abota_error e = { 0 };
		fail_locked(s, -EPIPE, "sending a plan to the streaming helper", &e);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	chan_put(s, c);
}

/* The child's HTTP statistics, logged as the source closes (nothing reads
 * through it any more).  Nothing depends on the answer: a helper that has
 * not started it within STATS_WAIT_MS is not waited for (the channel's own
 * timeout is minutes, made for a download). */
#define STATS_WAIT_MS 2000
static void log_child_stats(struct sandbox_source *s)
{
	if (s->dead_code || s->ch[0].fd < 0 || s->ch[0].busy)
		return;
	struct req q = { .op = OP_STATS };
	struct http_stats st;
	struct abota_error e = { 0 };
	bool broken = false;
	struct pollfd pfd = { .fd = s->ch[0].fd, .events = POLLIN };
	if (write_full(s->ch[0].fd, &q, sizeof(q)) < 0 || poll(&pfd, 1, STATS_WAIT_MS) != 1 ||
	    recv_reply(s->ch[0].fd, sizeof(st), &e, &broken) != 1 ||
	    read_full(s->ch[0].fd, &st, sizeof(st)) != 1)
		return;
	http_stats_log(s->base.name, &st);
}

static void sandbox_close(struct source *src)
{
	struct sandbox_source *s = (struct sandbox_source *)src;
	log_child_stats(s);
	for (unsigned i = 0; i < CHANNELS; i++)
		if (s->ch[i].fd >= 0)
			close(s->ch[i].fd);
	if (s->pid > 0 && !s->reaped) {
		/* It may be inside a transfer nobody waits for any more. */
		kill(s->pid, SIGKILL);
		while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (s->lock_ready) {
		pthread_cond_destroy(&s->freed);
		pthread_mutex_destroy(&s->lock);
	}
}

static const struct source_ops sandbox_ops = {
	.read_at = sandbox_read_at,
	.close = sandbox_close,
	.plan = sandbox_plan,
};

/* How long a reply may take: the child's own limits for one request with
 * every retry, plus slack.  Only a wedged child runs into it. */
static time_t reply_timeout(const struct http_opts *o)
{
	long conn = o && o->connect_timeout_s ? o->connect_timeout_s : 20;
	long slow = o && o->low_speed_time_s ? o->low_speed_time_s : 60;
	long tries = (o && o->max_retries ? (long)o->max_retries : 5) + 1;
	return (time_t)(tries * (conn + slow + 35) + 60);
}

/* The answer to the open: the size, or why not. */
static int handshake(struct sandbox_source *s, struct abota_error *err)
{
	bool broken = false;
	struct abota_error e = { 0 };
	int ret = recv_reply(s->ch[0].fd, sizeof(uint64_t), &e, &broken);
	uint64_t size = 0;
	if (ret == 1 && read_full(s->ch[0].fd, &size, sizeof(size)) != 1)
		ret = -EPIPE;
	if (ret < 0 && !e.msg[0]) {
		char why[200];
		describe_end(s, why, sizeof(why));
		return abota_error_set(err, -EIO, "%s: %s", s->base.name, why);
	}
	if (ret < 0)
		return abota_error_set(err, ret, "%s", e.msg);
	s->base.size = size;
	return 0;
}

/* The parent's object, no channels yet. */
static struct sandbox_source *new_source(const char *name, struct abota_error *err)
{
	struct sandbox_source *s = source_alloc(sizeof(*s), &sandbox_ops, 0, name);
	if (!s)
		return NULL;
	s->pid = -1;
	for (unsigned i = 0; i < CHANNELS; i++)
		s->ch[i].fd = -1;
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		abota_error_set(err, -ENOMEM, "cannot create a mutex");
		source_close(&s->base);
		return NULL;
	}
	if (pthread_cond_init(&s->freed, NULL) != 0) {
		pthread_mutex_destroy(&s->lock);
		abota_error_set(err, -ENOMEM, "cannot create a condition variable");
		source_close(&s->base);
		return NULL;
	}
	s->lock_ready = true;
	return s;
}

static int lookup_user(const char *user, uid_t *uid, gid_t *gid, struct abota_error *err)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int r = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
	if (r != 0 || !res)
		return abota_error_set(err, -ENOENT,
				       "[streaming] sandbox-user: user '%s' does not exist%s%s (the download runs as this user; create it or set sandbox-user)",
				       user, r ? ": " : "", r ? strerror(r) : "");
	if (pw.pw_uid == 0)
		return abota_error_set(err, -EPERM,
				       "[streaming] sandbox-user: '%s' has uid 0, which is no sandbox",
				       user);
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

int source_open_http_sandboxed(const char *url, const struct http_opts *opts, const char *user,
			       struct source **out, struct abota_error *err)
{
	if (!http_is_url(url))
		return abota_error_set(err, -EINVAL, "%s: not an http:// or https:// URL", url);
	struct child_args a = { .url = url, .parent = getpid() };
	if (opts)
		a.opts = *opts;
	int ret = lookup_user(user ? user : SANDBOX_DEFAULT_USER, &a.uid, &a.gid, err);
	if (ret < 0)
		return ret;
	char *name = http_url_display_name(url);
	struct abota_error e0 = { 0 };
	struct sandbox_source *s = name ? new_source(name, &e0) : NULL;
	free(name);
	if (!s)
		return abota_error_set(err, -ENOMEM, "%s", e0.msg[0] ? e0.msg : "out of memory");
	struct timeval tv = { .tv_sec = reply_timeout(opts) };
	for (unsigned i = 0; i < CHANNELS; i++) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
			ret = abota_error_set(err, -errno, "socketpair: %s", strerror(errno));
			for (unsigned j = 0; j < i; j++)
				close(a.fds[j]);
			goto fail;
		}
		setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		s->ch[i].fd = sv[0];
		a.fds[i] = sv[1];
	}
	fflush(NULL); /* nothing buffered is written twice */
	/* fork, not exec: the child runs this library's HTTP source, and
	 * glibc's fork makes malloc and stdio usable in the child of a
	 * threaded parent (the D-Bus service installs in a worker thread). */
	pid_t pid = fork();
	if (pid == 0)
		child_main(&a);
	int saved = errno;
	for (unsigned i = 0; i < CHANNELS; i++)
		close(a.fds[i]);
	if (pid < 0) {
		ret = abota_error_set(err, -saved, "fork: %s", strerror(saved));
		goto fail;
	}
	s->pid = pid;
	log_debug("%s: HTTP client in process %d as '%s'", s->base.name, (int)pid,
		  user ? user : SANDBOX_DEFAULT_USER);
	ret = handshake(s, err);
	if (ret < 0)
		goto fail;
	*out = &s->base;
	return 0;
fail:
	source_close(&s->base);
	return ret;
}

int sandbox_source_adopt(const int fds[SANDBOX_CHANNELS], pid_t pid, const char *url,
			 struct source **out, struct abota_error *err)
{
	char *name = http_url_display_name(url);
	struct sandbox_source *s = name ? new_source(name, err) : NULL;
	free(name);
	if (!s) {
		for (unsigned i = 0; i < CHANNELS; i++)
			close(fds[i]);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	s->pid = pid;
	for (unsigned i = 0; i < CHANNELS; i++)
		s->ch[i].fd = fds[i];
	int ret = handshake(s, err);
	if (ret < 0) {
		source_close(&s->base);
		return ret;
	}
	*out = &s->base;
	return 0;
}

int source_open_remote(const char *url, const struct http_opts *opts, const char *user,
		       struct source **out, struct abota_error *err)
{
	if (geteuid() == 0)
		return source_open_http_sandboxed(url, opts, user, out, err);
	return source_open_http(url, opts, out, err);
}
