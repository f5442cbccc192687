/* cli_http.h - the options of every verb that takes an http(s):// bundle:
 * --tls-ca, --tls-cert, --tls-key, --tls-no-verify, --http-header (RAUC's
 * names). */
#ifndef ABOTA_CLI_HTTP_H
#define ABOTA_CLI_HTTP_H

#include <getopt.h>
#include <stddef.h>

#include "abota/http_source.h"

#define CLI_HTTP_MAX_HEADERS 16

enum {
	CLI_OPT_TLS_CA = 900,
	CLI_OPT_TLS_CERT,
	CLI_OPT_TLS_KEY,
	CLI_OPT_TLS_NO_VERIFY,
	CLI_OPT_HTTP_HEADER,
};

#define CLI_HTTP_OPTIONS                                                     \
	{ "tls-ca", required_argument, NULL, CLI_OPT_TLS_CA },                 \
	{ "tls-cert", required_argument, NULL, CLI_OPT_TLS_CERT },             \
	{ "tls-key", required_argument, NULL, CLI_OPT_TLS_KEY },               \
	{ "tls-no-verify", no_argument, NULL, CLI_OPT_TLS_NO_VERIFY },         \
	{ "http-header", required_argument, NULL, CLI_OPT_HTTP_HEADER }

#define CLI_HTTP_HELP                                                                        \
	"BUNDLE may be an http(s):// URL (verity bundles; read with range requests):\n"        \
	"      --tls-ca=FILE                CA certificates for the server\n"                 \
	"      --tls-cert=FILE, --tls-key=FILE  client certificate and key (PEM)\n"           \
	"      --tls-no-verify              do not verify the server's certificate\n"         \
	"      --http-header='Name: value'  extra request header (repeatable)\n"

struct cli_http {
	struct http_opts opts;
	const char *headers[CLI_HTTP_MAX_HEADERS + 1];
	size_t n_headers;
};

/* Handles option c (with optarg): 1 if it was one of the above, 0 if not,
 * -1 after printing a usage error for a bad value. */
int cli_http_option(struct cli_http *h, const char *verb, int c, const char *arg);

/* Checks the combination once all options are read (a key needs a
 * certificate and the other way round; files must be readable): 0, or -1
 * after printing a usage error. */
int cli_http_check(const struct cli_http *h, const char *verb);

#endif
