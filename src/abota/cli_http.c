/* cli_http.c - shared HTTP/TLS options of the verbs that take a URL. */
#include "cli_http.h"

#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_http_option(struct cli_http *h, const char *verb, int c, const char *arg)
{
	switch (c) {
	case CLI_OPT_TLS_CA: h->opts.ca_file = arg; return 1;
	case CLI_OPT_TLS_CERT: h->opts.client_cert = arg; return 1;
	case CLI_OPT_TLS_KEY: h->opts.client_key = arg; return 1;
	case CLI_OPT_TLS_NO_VERIFY: h->opts.insecure = true; return 1;
	case CLI_OPT_HTTP_HEADER: {
		const char *colon = strchr(arg, ':');
		if (h->n_headers == CLI_HTTP_MAX_HEADERS)
			return cli_usage_error(verb, "too many --http-header options"), -1;
		/* a name of token characters, no line breaks anywhere (header
		 * injection) */
		if (!colon || colon == arg || strpbrk(arg, "\r\n") ||
		    strcspn(arg, " \t") < (size_t)(colon - arg))
			return cli_usage_error(verb, "--http-header: '%s' is not 'Name: value'", arg), -1;
		h->headers[h->n_headers++] = arg;
		h->opts.headers = h->headers;
		return 1;
	}
	default:
		return 0;
	}
}

int cli_http_check(const struct cli_http *h, const char *verb)
{
	if (!h->opts.client_cert != !h->opts.client_key)
		return cli_usage_error(verb, "--tls-cert and --tls-key go together"), -1;
	const char *files[] = { h->opts.ca_file, h->opts.client_cert, h->opts.client_key };
	const char *names[] = { "--tls-ca", "--tls-cert", "--tls-key" };
	for (size_t i = 0; i < 3; i++)
		if (files[i] && access(files[i], R_OK) < 0)
			return cli_usage_error(verb, "%s: cannot read '%s'", names[i], files[i]), -1;
	return 0;
}
