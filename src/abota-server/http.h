/* http.h - starts the libmicrohttpd daemon for the server. */
#ifndef ABOTA_SERVER_HTTP_H
#define ABOTA_SERVER_HTTP_H

#include <microhttpd.h>
#include <sys/socket.h>

struct server;

/* tls_cert/tls_key: PEM contents (not paths), or NULL for plain HTTP. */
struct MHD_Daemon *http_start(struct server *srv, const struct sockaddr *addr, unsigned threads,
			      const char *tls_cert, const char *tls_key);

#endif
