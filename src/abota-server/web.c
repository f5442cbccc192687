/* web.c - the static web UI (web/ of the source tree, or --web-dir). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server.h"

static const char *mime(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot)
		return "application/octet-stream";
	if (!strcmp(dot, ".html"))
		return "text/html; charset=utf-8";
	if (!strcmp(dot, ".css"))
		return "text/css; charset=utf-8";
	if (!strcmp(dot, ".js"))
		return "text/javascript; charset=utf-8";
	if (!strcmp(dot, ".svg"))
		return "image/svg+xml";
	if (!strcmp(dot, ".png"))
		return "image/png";
	return "application/octet-stream";
}

/* One file name, no directories: the UI is flat, so nothing can escape. */
static bool name_ok(const char *s)
{
	if (!*s || s[0] == '.' || strlen(s) > 64)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
		      *p == '-' || *p == '_'))
			return false;
	return true;
}

enum MHD_Result web_handle(struct request *r)
{
	const char *name;
	if (r->n_segs == 0)
		name = "index.html";
	else if (r->n_segs == 2 && strcmp(r->segs[0], "web") == 0)
		name = r->segs[1];
	else
		return reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
				   "no such resource");
	if (!req_method(r, "GET") && !req_method(r, "HEAD"))
		return reply_error(r, 405, "hawkbit.server.error.rest.methodNotAllowed", "not allowed");
	if (!r->srv->web_dir || !name_ok(name))
		return reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
				   "no such resource");
	char path[4200];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", r->srv->web_dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
				   "no such resource");
	}
	struct MHD_Response *resp = MHD_create_response_from_fd64((uint64_t)st.st_size, fd);
	if (!resp) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", mime(name));
	MHD_add_response_header(resp, "Content-Security-Policy",
				"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	return queue(r, 200, resp);
}
