/* abota-server: the embedded deployment server (hawkBit DDI for devices, a
 * hawkBit management API subset for scripts, a web UI for people). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abota/fileio.h"
#include "abota/log.h"
#include "dosfilter.h"
#include "http.h"
#include "server.h"

/* The UI: the source tree's web/ when run from a build directory, else the
 * installed copy. */
#ifndef ABOTA_WEB_SRCDIR
#define ABOTA_WEB_SRCDIR "/usr/share/abota/web"
#endif
#ifndef ABOTA_WEB_DATADIR
#define ABOTA_WEB_DATADIR "/usr/share/abota/web"
#endif

/* HH:MM:SS below one day, more than zero: what SWUpdate and
 * rauc-hawkbit-updater can parse. */
static bool polling_time_ok(const char *v)
{
	unsigned h, m, sec;
	char tail;
	return strlen(v) == 8 && sscanf(v, "%2u:%2u:%2u%c", &h, &m, &sec, &tail) == 3 && h < 24 &&
	       m < 60 && sec < 60 && (h || m || sec);
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

void server_random_token(char *out, size_t n)
{
	static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	unsigned char b[256];
	if (n == 0)
		return;
	if (n > sizeof(b))
		n = sizeof(b);
	if (RAND_bytes(b, (int)n) != 1) {
		/* never hand out a predictable token */
		fprintf(stderr, "abota-server: no randomness available\n");
		abort();
	}
	for (size_t i = 0; i + 1 < n; i++)
		out[i] = al[b[i] % (sizeof(al) - 1)];
	out[n - 1] = '\0';
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: abota-server --data DIR [--listen HOST:PORT] [--keyring FILE]\n"
		"                    [--admin-user U --admin-password P] [--web-dir DIR]\n"
		"                    [--tls-cert PEM --tls-key PEM] [--threads N]\n"
		"                    [--max-artifact-size BYTES] [--allow-foreign-artifacts]\n"
		"                    [--gateway-token TOKEN] [--polling-time HH:MM:SS]\n"
		"                    [--dos-max-read N] [--dos-max-write N]\n"
		"                    [--dos-whitelist ADDR[/PREFIX],...|none] [--verbose]\n");
}

static char *path_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", a, b);
	return p;
}

static int ensure_dir(const char *p)
{
	if (mkdir(p, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "abota-server: %s: cannot create: %s\n", p, strerror(errno));
		return -1;
	}
	return 0;
}

/* Leftovers of a crash: partial uploads in tmp/, blobs no row refers to
 * (the row is committed after the blob is renamed into place). */
static void clean_leftovers(struct server *srv)
{
	DIR *d = opendir(srv->tmp_dir);
	struct dirent *e;
	char p[4300];
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", srv->tmp_dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	d = opendir(srv->artifacts_dir);
	while (d && (e = readdir(d))) {
		bool used = true;
		if (e->d_name[0] == '.')
			continue;
		if (strlen(e->d_name) == 64 &&
		    store_artifact_blob_referenced(srv->store, e->d_name, &used) == 0 && used)
			continue;
		snprintf(p, sizeof(p), "%s/%s", srv->artifacts_dir, e->d_name);
		log_warning("removing unreferenced artifact blob %s", p);
		unlink(p);
	}
	if (d)
		closedir(d);
}

static int parse_listen(const char *s, struct sockaddr_storage *ss, char *host, size_t hsize,
			char *port, size_t psize)
{
	const char *colon;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -1;
		snprintf(host, hsize, "%.*s", (int)(end - s - 1), s + 1);
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		snprintf(host, hsize, "%.*s", (int)(colon - s), s);
	}
	snprintf(port, psize, "%s", colon + 1);
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
				 .ai_socktype = SOCK_STREAM},
			*res = NULL;
	if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"listen", required_argument, NULL, 'l'},
		{"keyring", required_argument, NULL, 'k'},
		{"admin-user", required_argument, NULL, 'u'},
		{"admin-password", required_argument, NULL, 'p'},
		{"web-dir", required_argument, NULL, 'w'},
		{"tls-cert", required_argument, NULL, 'c'},
		{"tls-key", required_argument, NULL, 'K'},
		{"threads", required_argument, NULL, 't'},
		{"max-artifact-size", required_argument, NULL, 'm'},
		{"allow-foreign-artifacts", no_argument, NULL, 'f'},
		{"gateway-token", required_argument, NULL, 'g'},
		{"polling-time", required_argument, NULL, 'P'},
		{"dos-max-read", required_argument, NULL, 'R'},
		{"dos-max-write", required_argument, NULL, 'W'},
		{"dos-whitelist", required_argument, NULL, 'L'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct server srv = {0};
	const char *data = NULL, *listen = "127.0.0.1:8080", *user = NULL, *pass = NULL;
	const char *cert_path = NULL, *key_path = NULL, *gateway = NULL, *polling = NULL;
	char *cert = NULL, *key = NULL;
	unsigned threads = 4;
	int c, rc = 1;
	struct MHD_Daemon *d = NULL;
	struct abota_error err = {0};
	srv.max_artifact_size = UINT64_C(1) << 30; /* hawkBit's default quota */
	struct dosfilter_config dos = {.max_read = DOSFILTER_DEFAULT_READ,
				       .max_write = DOSFILTER_DEFAULT_WRITE};
	const char *whitelist = DOSFILTER_DEFAULT_WHITELIST;
	srv.web_dir = access(ABOTA_WEB_SRCDIR "/index.html", R_OK) == 0 ? ABOTA_WEB_SRCDIR
								     : ABOTA_WEB_DATADIR;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'l': listen = optarg; break;
		case 'k': srv.policy.keyring_path = optarg; srv.have_keyring = true; break;
		case 'u': user = optarg; break;
		case 'p': pass = optarg; break;
		case 'w': srv.web_dir = optarg; break;
		case 'c': cert_path = optarg; break;
		case 'K': key_path = optarg; break;
		case 'f': srv.allow_foreign_artifacts = true; break;
		case 'g': gateway = optarg; break;
		case 'P': polling = optarg; break;
		case 'v': log_set_level(LOG_LEVEL_INFO); break;
		case 't': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v < 1 || v > 256) {
				fprintf(stderr, "abota-server: --threads: 1 to 256\n");
				return 2;
			}
			threads = (unsigned)v;
			break;
		}
		case 'm': {
			char *end;
			unsigned long long v = strtoull(optarg, &end, 10);
			if (*end || v < 1 || optarg[0] == '-') {
				fprintf(stderr, "abota-server: --max-artifact-size: a positive byte count\n");
				return 2;
			}
			srv.max_artifact_size = v;
			break;
		}
		case 'L': whitelist = optarg; break;
		case 'R':
		case 'W': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || optarg[0] == '-' || v > DOSFILTER_MAX_LIMIT) {
				fprintf(stderr, "abota-server: --dos-max-%s %s: 0 (no limit) to %d "
						"requests per second\n", c == 'R' ? "read" : "write",
					optarg, DOSFILTER_MAX_LIMIT);
				return 2;
			}
			*(c == 'R' ? &dos.max_read : &dos.max_write) = (unsigned)v;
			break;
		}
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !data) {
		fprintf(stderr, optind != argc ? "abota-server: unexpected argument %s\n"
					       : "abota-server: --data DIR is required\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!user != !pass) {
		fprintf(stderr, "abota-server: --admin-user and --admin-password go together\n");
		return 2;
	}
	if (user && (!*user || strchr(user, ':') || strlen(user) > 64 || strlen(pass) < 8 ||
		     strlen(pass) > 256)) {
		fprintf(stderr, "abota-server: --admin-user: 1-64 characters without ':'; "
				"--admin-password: 8-256 characters\n");
		return 2;
	}
	if (polling && !polling_time_ok(polling)) {
		fprintf(stderr, "abota-server: --polling-time %s: HH:MM:SS, more than zero and "
				"below one day\n", polling);
		return 2;
	}
	if (gateway && (strlen(gateway) < 16 || strlen(gateway) > 128 || strpbrk(gateway, " \t\r\n"))) {
		fprintf(stderr, "abota-server: --gateway-token: 16 to 128 characters, no whitespace\n");
		return 2;
	}
	char why[160];
	if (dosfilter_parse_whitelist(whitelist, &dos, why, sizeof(why)) < 0) {
		fprintf(stderr, "abota-server: --dos-whitelist: %s\n", why);
		return 2;
	}
	if (!cert_path != !key_path) {
		fprintf(stderr, "abota-server: --tls-cert and --tls-key go together\n");
		return 2;
	}
	if (srv.have_keyring && access(srv.policy.keyring_path, R_OK) != 0) {
		fprintf(stderr, "abota-server: --keyring %s: %s\n", srv.policy.keyring_path,
			strerror(errno));
		return 2;
	}
	if (cert_path) {
		size_t n;
		if (fileio_read_all(cert_path, 1 << 20, &cert, &n, &err) < 0 ||
		    fileio_read_all(key_path, 1 << 20, &key, &n, &err) < 0) {
			fprintf(stderr, "abota-server: TLS: %s\n", err.msg);
			return 2;
		}
		srv.tls = true;
	}
	struct sockaddr_storage ss;
	char host[128], port[16];
	if (parse_listen(listen, &ss, host, sizeof(host), port, sizeof(port)) < 0) {
		fprintf(stderr, "abota-server: --listen %s: HOST:PORT with a numeric address "
				"(e.g. 127.0.0.1:8080 or [::1]:8080)\n", listen);
		return 2;
	}
	pthread_mutex_init(&srv.auth_lock, NULL);
	if ((dos.max_read || dos.max_write) && !(srv.dos = dosfilter_new(&dos))) {
		fprintf(stderr, "abota-server: out of memory\n");
		return 1;
	}
	srv.data_dir = (char *)data;
	srv.artifacts_dir = path_join(data, "artifacts");
	srv.tmp_dir = path_join(data, "tmp");
	char *db = path_join(data, "abota-server.db");
	if (!srv.artifacts_dir || !srv.tmp_dir || !db)
		goto out;
	if (ensure_dir(data) || ensure_dir(srv.artifacts_dir) || ensure_dir(srv.tmp_dir))
		goto out;
	if (store_open(db, &srv.store, &err) < 0) {
		fprintf(stderr, "abota-server: %s\n", err.msg);
		goto out;
	}
	clean_leftovers(&srv);
	if ((gateway && (store_config_set(srv.store, "authentication.gatewaytoken.key", gateway) ||
			 store_config_set(srv.store, "authentication.gatewaytoken.enabled", "true"))) ||
	    (polling && store_config_set(srv.store, "pollingTime", polling))) {
		fprintf(stderr, "abota-server: cannot store the configuration\n");
		goto out;
	}
	char created_pw[25] = "";
	int64_t users = 0;
	if (user) {
		if (auth_set_password(srv.store, user, pass) < 0) {
			fprintf(stderr, "abota-server: cannot store the admin credentials\n");
			goto out;
		}
	} else if (store_user_count(srv.store, &users) == 0 && users == 0) {
		server_random_token(created_pw, sizeof(created_pw));
		if (auth_set_password(srv.store, "admin", created_pw) < 0) {
			fprintf(stderr, "abota-server: cannot store the admin credentials\n");
			goto out;
		}
	}
	/* thousands of polling devices keep thousands of sockets open */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	d = http_start(&srv, (struct sockaddr *)&ss, threads, cert, key);
	if (!d) {
		fprintf(stderr, "abota-server: cannot listen on %s\n", listen);
		goto out;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	unsigned bound = di ? di->port : (unsigned)atoi(port);
	bool v6 = strchr(host, ':') != NULL;
	snprintf(srv.listen, sizeof(srv.listen), v6 ? "[%s]:%u" : "%s:%u", host, bound);
	if (created_pw[0])
		printf("abota-server: created admin credentials: user admin, password %s\n",
		       created_pw);
	if (!srv.have_keyring)
		printf("abota-server: no --keyring: bundle uploads will be refused\n");
	/* last: scripts wait for this line */
	printf("abota-server: listening on %s://%s/\n", srv.tls ? "https" : "http", srv.listen);
	fflush(stdout);
	while (!stop) {
		sleep(1);
		store_flush_touches(srv.store);
		store_rollout_tick(srv.store);
	}
	rc = 0;
out:
	if (d)
		MHD_stop_daemon(d);
	store_close(srv.store);
	dosfilter_free(srv.dos);
	free(srv.artifacts_dir);
	free(srv.tmp_dir);
	free(db);
	free(cert);
	free(key);
	return rc;
}
