/* boot_custom.c - RAUC's custom bootloader backend protocol.
 *
 * [handlers] bootloader-custom-backend=<script> is run (fork/exec, no
 * shell) as
 *   <script> get-primary            -> prints the bootname
 *   <script> set-primary <bootname>
 *   <script> get-state <bootname>   -> prints good | bad
 *   <script> set-state <bootname> good|bad
 *   <script> get-current            -> prints the booted bootname
 * A non-zero exit status is a failure.  stdout is captured (bounded),
 * stderr is passed through so the script's messages reach the user.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "abota/boot_backend.h"
#include "abota/log.h"

/* The protocol answers are one word; anything much longer is garbage. */
#define CUSTOM_OUTPUT_MAX 4096

static int run_handler(const char *handler, const char *a1, const char *a2, const char *a3,
		       char **output, struct abota_error *err)
{
	char *argv[] = { (char *)handler, (char *)a1, (char *)a2, (char *)a3, NULL };
	char *buf = NULL;
	size_t len = 0;
	int pfd[2] = { -1, -1 };
	pid_t pid = -1;
	int ret = 0;
	if (output && pipe2(pfd, O_CLOEXEC) < 0)
		return abota_error_set(err, -errno, "pipe: %s", strerror(errno));
	if (output && !(buf = malloc(CUSTOM_OUTPUT_MAX + 1))) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		ret = abota_error_set(err, -errno, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		if (output && dup2(pfd[1], STDOUT_FILENO) < 0)
			_exit(127);
		execv(handler, argv);
		_exit(127);
	}
	bool overflow = false;
	if (output) {
		close(pfd[1]);
		pfd[1] = -1;
		for (;;) {
			char tmp[512];
			ssize_t n = read(pfd[0], tmp, sizeof(tmp));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			/* keep draining so the child never blocks on a full pipe */
			size_t take = (size_t)n;
			if (take > CUSTOM_OUTPUT_MAX - len) {
				take = CUSTOM_OUTPUT_MAX - len;
				overflow = true;
			}
			memcpy(buf + len, tmp, take);
			len += take;
		}
	}
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			ret = abota_error_set(err, -errno, "waitpid: %s", strerror(errno));
			goto out;
		}
	}
	pid = -1;
	if (WIFSIGNALED(status)) {
		ret = abota_error_set(err, -EIO, "'%s %s' killed by signal %d", handler, a1,
				      WTERMSIG(status));
		goto out;
	}
	if (WEXITSTATUS(status) == 127) {
		ret = abota_error_set(err, -ENOEXEC, "'%s %s' failed (exit 127: cannot execute?)",
				      handler, a1);
		goto out;
	}
	if (WEXITSTATUS(status) != 0) {
		ret = abota_error_set(err, -EIO, "'%s %s%s%s%s%s' failed with exit status %d", handler,
				      a1, a2 ? " " : "", a2 ? a2 : "", a3 ? " " : "", a3 ? a3 : "",
				      WEXITSTATUS(status));
		goto out;
	}
	if (overflow) {
		ret = abota_error_set(err, -EMSGSIZE, "'%s %s' printed more than %d bytes", handler,
				      a1, CUSTOM_OUTPUT_MAX);
		goto out;
	}
	if (output) {
		while (len && isspace((unsigned char)buf[len - 1]))
			len--;
		buf[len] = '\0';
		if (memchr(buf, '\0', len)) {
			ret = abota_error_set(err, -EINVAL, "'%s %s' printed a NUL byte", handler,
					      a1);
			goto out;
		}
		*output = buf;
		buf = NULL;
	}
out:
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	free(buf);
	return ret;
}

static const char *handler(struct boot_backend *b)
{
	return b->cfg->custom_backend;
}

static int custom_get_booted(struct boot_backend *b, char **bootname, struct abota_error *err)
{
	char *out = NULL;
	int ret = run_handler(handler(b), "get-current", NULL, NULL, &out, err);
	if (ret < 0)
		return ret;
	if (!out[0]) {
		free(out);
		return abota_error_set(err, -EINVAL, "get-current printed nothing");
	}
	*bootname = out;
	return 0;
}

static int custom_get_primary(struct boot_backend *b, struct slot **primary,
			      struct abota_error *err)
{
	char *out = NULL;
	int ret = run_handler(handler(b), "get-primary", NULL, NULL, &out, err);
	if (ret < 0)
		return ret;
	struct slot *s = slot_find_bootname(b->cfg, out);
	if (!s)
		ret = abota_error_set(err, -ENOENT, "get-primary returned unknown bootname '%s'",
				      out);
	else
		*primary = s;
	free(out);
	return ret;
}

static int custom_set_primary(struct boot_backend *b, const struct slot *s,
			      struct abota_error *err)
{
	return run_handler(handler(b), "set-primary", s->bootname, NULL, NULL, err);
}

static int custom_get_state(struct boot_backend *b, const struct slot *s, bool *good,
			    struct abota_error *err)
{
	char *out = NULL;
	int ret = run_handler(handler(b), "get-state", s->bootname, NULL, &out, err);
	if (ret < 0)
		return ret;
	if (!strcmp(out, "good"))
		*good = true;
	else if (!strcmp(out, "bad"))
		*good = false;
	else
		ret = abota_error_set(err, -EINVAL, "get-state %s returned '%s' (want good|bad)",
				      s->bootname, out);
	free(out);
	return ret;
}

static int custom_set_state(struct boot_backend *b, const struct slot *s, bool good,
			    struct abota_error *err)
{
	return run_handler(handler(b), "set-state", s->bootname, good ? "good" : "bad", NULL,
			   err);
}

static bool custom_is_atomic(struct boot_backend *b)
{
	(void)b;
	return false; /* unknown: the script decides */
}

static const struct boot_backend_ops custom_ops = {
	.name = "custom",
	.get_booted = custom_get_booted,
	.get_primary = custom_get_primary,
	.set_primary = custom_set_primary,
	.get_state = custom_get_state,
	.set_state = custom_set_state,
	.is_atomic = custom_is_atomic,
};

int boot_custom_open(const struct system_config *cfg, struct boot_backend **out,
		     struct abota_error *err)
{
	if (!cfg->custom_backend)
		return abota_error_set(err, -EINVAL,
				       "custom: no [handlers] bootloader-custom-backend configured");
	if (access(cfg->custom_backend, X_OK) < 0)
		return abota_error_set(err, -errno, "custom: %s: %s", cfg->custom_backend,
				       strerror(errno));
	struct boot_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return abota_error_set(err, -ENOMEM, "out of memory");
	b->ops = &custom_ops;
	b->cfg = cfg;
	*out = b;
	return 0;
}
