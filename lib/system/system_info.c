/* system_info.c - the system's variant and the system-info handler's
 * variables.  See system_info.h. */
#include "abota/system_info.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "abota/fileio.h"
#include "abota/log.h"
#include "abota/slot_status.h"

/* The handler's output is a few lines; anything this large is a runaway. */
#define SYSTEM_INFO_MAX_OUTPUT (256u << 10)

void system_info_free(struct system_info *si)
{
	if (!si)
		return;
	free(si->variant);
	free(si->serial);
	free(si->version);
	for (size_t i = 0; i < si->n_vars; i++)
		free(si->vars[i]);
	free(si->vars);
	free(si);
}

/* Drops surrounding white space (RAUC warns and ignores it too). */
static char *trimmed(const char *s, size_t len, const char *what)
{
	size_t a = 0, b = len;
	while (a < b && (s[a] == ' ' || s[a] == '\t' || s[a] == '\n' || s[a] == '\r'))
		a++;
	while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\n' || s[b - 1] == '\r'))
		b--;
	/* a trailing newline is customary in a file; other white space is odd */
	if (a > 0 || (b < len && !(b == len - 1 && s[b] == '\n')))
		log_warning("ignoring white space around the system variant from %s", what);
	return strndup(s + a, b - a);
}

static int variant_from_file(const char *path, bool dtb, char **out)
{
	char *data = NULL;
	size_t len = 0;
	struct abota_error e = { 0 };
	if (fileio_read_all(path, 4096, &data, &len, &e) < 0) {
		log_warning("system variant: %s", e.msg);
		*out = NULL;
		return 0;
	}
	/* compatible: NUL-separated strings, the first one is the board's */
	size_t n = dtb ? strnlen(data, len) : len;
	*out = trimmed(data, n, path);
	free(data);
	return *out ? 0 : -ENOMEM;
}

static int add_var(struct system_info *si, const char *line, size_t len)
{
	char **n = realloc(si->vars, (si->n_vars + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	si->vars = n;
	if (!(si->vars[si->n_vars] = strndup(line, len)))
		return -ENOMEM;
	si->n_vars++;
	return 0;
}

/* RAUC_KEY=value lines, as RAUC reads them: other lines are not variables
 * (a handler may print messages), a later key replaces an earlier one. */
static int parse_output(struct system_info *si, char *out, const char *handler,
			struct abota_error *err)
{
	for (char *line = out, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		size_t len = next ? (size_t)(next - line) : strlen(line);
		if (next)
			*next++ = '\0';
		char *eq = strchr(line, '=');
		if (strncmp(line, "RAUC_", 5) != 0 || !eq) {
			if (len)
				log_debug("system-info %s: not a variable: %s", handler, line);
			continue;
		}
		const char *key = line, *value = eq + 1;
		size_t klen = (size_t)(eq - line);
		bool valid = klen > 5;
		for (size_t i = 0; i < klen && valid; i++)
			valid = (line[i] >= 'A' && line[i] <= 'Z') || (line[i] >= '0' && line[i] <= '9') ||
				line[i] == '_';
		if (!valid)
			return abota_error_set(err, -EINVAL,
					       "system-info handler %s: '%.*s' is not a variable name",
					       handler, (int)klen, key);
		char **slot = NULL;
		if (klen == 18 && !strncmp(key, "RAUC_SYSTEM_SERIAL", klen))
			slot = &si->serial;
		else if (klen == 19 && !strncmp(key, "RAUC_SYSTEM_VARIANT", klen))
			slot = &si->variant;
		else if (klen == 19 && !strncmp(key, "RAUC_SYSTEM_VERSION", klen))
			slot = &si->version;
		if (slot) {
			free(*slot);
			if (!(*slot = strdup(value)))
				return abota_error_set(err, -ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < si->n_vars; i++) {
			if (!strncmp(si->vars[i], key, klen + 1)) {
				free(si->vars[i]);
				si->vars[i] = si->vars[--si->n_vars];
				break;
			}
		}
		if (add_var(si, line, len) < 0)
			return abota_error_set(err, -ENOMEM, "out of memory");
	}
	return 0;
}

static int run_handler(const char *handler, char **out, struct abota_error *err)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return abota_error_set(err, -errno, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return abota_error_set(err, -e, "fork: %s", strerror(e));
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		if (null >= 0)
			dup2(null, 0);
		dup2(pipefd[1], 1); /* stderr stays the caller's, for the handler's messages */
		char *argv[] = { (char *)handler, NULL };
		execv(handler, argv);
		fprintf(stderr, "abota: system-info handler: cannot execute %s: %s\n", handler,
			strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int ret = 0;
	for (;;) {
		if (cap - len < 4096) {
			if (cap >= SYSTEM_INFO_MAX_OUTPUT) {
				ret = abota_error_set(err, -E2BIG, "system-info handler %s: more than %u bytes of output",
						      handler, SYSTEM_INFO_MAX_OUTPUT);
				kill(pid, SIGKILL);
				break;
			}
			char *n = realloc(buf, cap + 16384 + 1);
			if (!n) {
				ret = abota_error_set(err, -ENOMEM, "out of memory");
				kill(pid, SIGKILL);
				break;
			}
			buf = n;
			cap += 16384;
		}
		ssize_t r = read(pipefd[0], buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(pipefd[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (ret == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		ret = abota_error_set(err, -ECANCELED, "system-info handler %s failed (%s %d)", handler,
				      WIFEXITED(status) ? "exit code" : "signal",
				      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	if (ret < 0) {
		free(buf);
		return ret;
	}
	if (!buf && !(buf = malloc(1)))
		return abota_error_set(err, -ENOMEM, "out of memory");
	buf[len] = '\0';
	*out = buf;
	return 0;
}

int system_info_load(const struct system_config *cfg, const char *dtb_path,
		     struct system_info **out, struct abota_error *err)
{
	struct system_info *si = calloc(1, sizeof(*si));
	int ret = 0;
	char *output = NULL;
	if (!si)
		return abota_error_set(err, -ENOMEM, "out of memory");
	if (cfg->variant_name)
		ret = (si->variant = strdup(cfg->variant_name)) ? 0 : -ENOMEM;
	else if (cfg->variant_file)
		ret = variant_from_file(cfg->variant_file, false, &si->variant);
	else if (cfg->variant_dtb)
		ret = variant_from_file(dtb_path ? dtb_path : SYSTEM_INFO_DTB_COMPATIBLE, true,
					&si->variant);
	if (ret < 0) {
		ret = abota_error_set(err, ret, "out of memory");
		goto out;
	}
	if (cfg->system_info_handler) {
		const char *h = cfg->system_info_handler;
		if (access(h, X_OK) != 0) {
			ret = abota_error_set(err, -errno, "system-info handler %s: %s", h, strerror(errno));
			goto out;
		}
		if ((ret = run_handler(h, &output, err)) < 0 ||
		    (ret = parse_output(si, output, h, err)) < 0)
			goto out;
	}
	*out = si;
	si = NULL;
out:
	free(output);
	system_info_free(si);
	return ret;
}

/* First line of a small file, without the newline; NULL if unreadable. */
static char *first_line(const char *path)
{
	char *data = NULL;
	size_t len = 0;
	struct abota_error e = { 0 };
	if (fileio_read_all(path, 4096, &data, &len, &e) < 0)
		return NULL;
	data[strcspn(data, "\n")] = '\0';
	return data;
}

/* The value of one send-headers name; NULL when the system has none. */
static char *header_value(const struct system_config *cfg, const struct system_info *si,
			  const char *transaction, const char *which, const char **name)
{
	char buf[64];
	if (!strcmp(which, "boot-id")) {
		*name = "Boot-ID";
		return slot_status_read_boot_id(cfg->boot_id_file, buf, sizeof(buf)) == 0
			       ? strdup(buf)
			       : NULL;
	}
	if (!strcmp(which, "machine-id")) {
		*name = "Machine-ID";
		return first_line("/etc/machine-id");
	}
	if (!strcmp(which, "uptime")) {
		*name = "Uptime";
		char *v = first_line("/proc/uptime");
		if (v)
			v[strcspn(v, " ")] = '\0'; /* seconds up; the idle time is not asked for */
		return v;
	}
	const char *v = NULL;
	if (!strcmp(which, "system-version")) {
		*name = "System-Version";
		v = si->version;
	} else if (!strcmp(which, "serial")) {
		*name = "Serial";
		v = si->serial;
	} else if (!strcmp(which, "variant")) {
		*name = "Variant";
		v = si->variant;
	} else if (!strcmp(which, "transaction-id")) {
		*name = "Transaction-ID";
		v = transaction;
	}
	return v ? strdup(v) : NULL;
}

int system_info_http_headers(const struct system_config *cfg, const struct system_info *si,
			     const char *transaction, char **out, size_t cap,
			     struct abota_error *err)
{
	size_t n = 0;
	if (cap == 0)
		return 0;
	out[0] = NULL;
	for (const char *const *h = cfg->streaming.send_headers; h && *h && n + 1 < cap; h++) {
		const char *name = NULL;
		char *value = header_value(cfg, si, transaction, *h, &name);
		if (!value)
			continue;
		char *hdr = NULL;
		int r = asprintf(&hdr, "RAUC-%s: %s", name, value);
		free(value);
		if (r < 0) /* hdr is undefined then: out stays NULL-terminated */
			return abota_error_set(err, -ENOMEM, "out of memory");
		out[n++] = hdr;
		out[n] = NULL;
	}
	for (size_t i = 0; i < si->n_vars && n + 1 < cap; i++) {
		const char *v = si->vars[i];
		size_t klen = strcspn(v, "=");
		if (strncmp(v, "RAUC_HTTP_", 10) != 0 || klen <= 10)
			continue;
		char *hdr = NULL;
		if (asprintf(&hdr, "RAUC-%.*s: %s", (int)(klen - 10), v + 10, v + klen + 1) < 0)
			return abota_error_set(err, -ENOMEM, "out of memory");
		for (char *p = hdr + 5; *p != ':'; p++)
			if (*p == '_')
				*p = '-';
		out[n++] = hdr;
		out[n] = NULL;
	}
	return 0;
}
