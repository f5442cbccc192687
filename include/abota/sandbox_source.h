/* sandbox_source.h - an HTTP(S) byte source whose HTTP client runs in an
 * unprivileged child process (RAUC's [streaming] sandbox-user).
 *
 * The privileged installer must not parse network input (security cases
 * SC-181/SC-182): libcurl, TLS, the HTTP headers and Content-Range live in a
 * child that was forked before any network byte arrived and then dropped to
 * the sandbox user (no supplementary groups, setresgid/setresuid, no new
 * privileges, not dumpable, killed with the parent; stdin/stdout on
 * /dev/null, stderr kept for its log messages, every other descriptor of
 * the installer closed).  The parent only exchanges fixed-size binary messages with it
 * over socketpairs:
 *
 *   request  (16 bytes): u32 op, u32 len, u64 off      native byte order
 *     op 1 READ: reply with exactly len bytes at off (len <= 16 MiB)
 *     op 2 PLAN: len ranges of 16 bytes (u64 off, u64 len) follow; reply
 *                status 0, len 0 once the plan is in place
 *     op 3 STATS: reply with the HTTP source's struct http_stats (sent as
 *                the source closes, for its log line; numbers only)
 *   reply    (8 bytes):  i32 status, u32 len
 *     status 0: len data bytes follow (len must equal the request's len)
 *     status < 0 (negative errno): len bytes of message follow (<= 512)
 *
 * The first reply on channel 0 answers the open: status 0 and 8 bytes (the
 * size), or an error.  The parent checks every header, length, and error
 * code, and treats anything else as a failed read; the bytes themselves are
 * authenticated above it as for any HTTP source (verity / checked source).
 *
 * Two channels (socketpairs) serve two readers at once, each by its own
 * thread in the child, so the squashfs workers' parallel reads and the
 * HTTP source's two connections and range planning work as in-process.
 *
 * TLS files (ca_file, client_cert, client_key) are read by the child before
 * it drops privileges, while it is still root, and handed to libcurl as
 * in-memory PEM: a client key only root may read works, and nothing is
 * parsed before the drop.
 */
#ifndef ABOTA_SANDBOX_SOURCE_H
#define ABOTA_SANDBOX_SOURCE_H

#include <stdbool.h>
#include <sys/types.h>

#include "abota/error.h"
#include "abota/http_source.h"
#include "abota/source.h"

#define SANDBOX_DEFAULT_USER "nobody"
#define SANDBOX_CHANNELS 2 /* the squashfs reader's two workers */

/* Opens URL with the HTTP client in a child running as user (a name from
 * the password database).  Must be called with effective uid 0.  A user
 * that does not exist is an error naming [streaming] sandbox-user. */
int source_open_http_sandboxed(const char *url, const struct http_opts *opts, const char *user,
			       struct source **out, struct abota_error *err);

/* What the installer calls for a URL: sandboxed as user (NULL = "nobody")
 * when running as root, the plain in-process HTTP source otherwise (an
 * unprivileged caller has nothing to drop). */
int source_open_remote(const char *url, const struct http_opts *opts, const char *user,
		       struct source **out, struct abota_error *err);

/* The parent's side on its own: takes over fds (the parent's ends of the
 * channels to a helper already running as process pid; closed on failure)
 * and waits for the helper's answer to the open.  For the unit tests, which
 * play a misbehaving helper. */
int sandbox_source_adopt(const int fds[SANDBOX_CHANNELS], pid_t pid, const char *url,
			 struct source **out, struct abota_error *err);

/* True for a source of source_open_http_sandboxed(). */
bool source_is_sandboxed(const struct source *src);
/* The child's process id (for tests and messages); -1 for other sources. */
pid_t sandbox_source_pid(const struct source *src);

#endif
