/* dbus_client.c - install through the D-Bus service (see dbus_client.h). */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>

#include "dbus_client.h"

#define NAME "de.pengutronix.rauc"
#define IFACE "de.pengutronix.rauc.Installer"

struct client {
	const struct dbus_install_req *req;
	bool done, vanished;
	int result;
	char *last_error;
};

static int on_props(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	(void)e;
	struct client *c = userdata;
	const char *iface;
	if (sd_bus_message_read(m, "s", &iface) < 0 || strcmp(iface, IFACE) != 0 ||
	    sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
		return 0;
	while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
		const char *key;
		if (sd_bus_message_read(m, "s", &key) < 0)
			return 0;
		if (!strcmp(key, "Progress")) {
			int pct, depth;
			const char *msg;
			if (sd_bus_message_read(m, "v", "(isi)", &pct, &msg, &depth) < 0)
				return 0;
			struct install_progress p = { .percent = pct < 0 ? 0 : pct > 100 ? 100 : (unsigned)pct,
						      .message = msg,
						      .depth = depth < 0 ? 0 : (unsigned)depth };
			if (c->req->progress)
				c->req->progress(c->req->progress_ctx, &p);
		} else if (!strcmp(key, "LastError")) {
			const char *v;
			if (sd_bus_message_read(m, "v", "s", &v) < 0)
				return 0;
			free(c->last_error);
			c->last_error = strdup(v);
		} else if (sd_bus_message_skip(m, "v") < 0) {
			return 0;
		}
		sd_bus_message_exit_container(m);
	}
	/* RAUC's client: invalidated properties mean the service went away */
	return 0;
}

static int on_completed(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	(void)e;
	struct client *c = userdata;
	int32_t result;
	if (sd_bus_message_read(m, "i", &result) >= 0) {
		c->result = result;
		c->done = true;
	}
	return 0;
}

static int on_owner(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	(void)e;
	struct client *c = userdata;
	const char *name, *old, *new;
	if (sd_bus_message_read(m, "sss", &name, &old, &new) >= 0 && !strcmp(name, NAME) &&
	    !new[0])
		c->vanished = true;
	return 0;
}

static int append_args(sd_bus_message *m, const struct dbus_install_req *r)
{
	int ret;
	if ((ret = sd_bus_message_open_container(m, 'a', "{sv}")) < 0)
		return ret;
	if (r->ignore_compatible &&
	    (ret = sd_bus_message_append(m, "{sv}", "ignore-compatible", "b", 1)) < 0)
		return ret;
	if (r->ignore_version_limit &&
	    (ret = sd_bus_message_append(m, "{sv}", "ignore-version-limit", "b", 1)) < 0)
		return ret;
	if (r->force && (ret = sd_bus_message_append(m, "{sv}", "force", "b", 1)) < 0)
		return ret;
	if (r->transaction_id &&
	    (ret = sd_bus_message_append(m, "{sv}", "transaction-id", "s", r->transaction_id)) < 0)
		return ret;
	if (r->require_manifest_hash &&
	    (ret = sd_bus_message_append(m, "{sv}", "require-manifest-hash", "s",
					 r->require_manifest_hash)) < 0)
		return ret;
	const struct http_opts *h = r->http;
	if (h && h->ca_file && (ret = sd_bus_message_append(m, "{sv}", "tls-ca", "s", h->ca_file)) < 0)
		return ret;
	if (h && h->client_cert &&
	    (ret = sd_bus_message_append(m, "{sv}", "tls-cert", "s", h->client_cert)) < 0)
		return ret;
	if (h && h->client_key &&
	    (ret = sd_bus_message_append(m, "{sv}", "tls-key", "s", h->client_key)) < 0)
		return ret;
	if (h && h->insecure && (ret = sd_bus_message_append(m, "{sv}", "tls-no-verify", "b", 1)) < 0)
		return ret;
	if (h && h->headers && h->headers[0]) {
		if ((ret = sd_bus_message_open_container(m, 'e', "sv")) < 0 ||
		    (ret = sd_bus_message_append(m, "s", "http-headers")) < 0 ||
		    (ret = sd_bus_message_open_container(m, 'v', "as")) < 0 ||
		    (ret = sd_bus_message_append_strv(m, (char **)h->headers)) < 0 ||
		    (ret = sd_bus_message_close_container(m)) < 0 ||
		    (ret = sd_bus_message_close_container(m)) < 0)
			return ret;
	}
	return sd_bus_message_close_container(m);
}

int dbus_client_connect(const char *kind, sd_bus **out)
{
	if (!strcmp(kind, "system"))
		return sd_bus_open_system(out);
	if (!strcmp(kind, "session"))
		return sd_bus_open_user(out);
	sd_bus *b = NULL;
	int r = sd_bus_new(&b);
	if (r < 0)
		return r;
	if ((r = sd_bus_set_address(b, kind)) < 0 || (r = sd_bus_set_bus_client(b, 1)) < 0 ||
	    (r = sd_bus_start(b)) < 0) {
		sd_bus_unref(b);
		return r;
	}
	*out = b;
	return 0;
}

int dbus_client_run(sd_bus *bus, const struct dbus_install_req *req, const char *bundle,
		    sd_bus_error *e, int *result, char **last_error)
{
	sd_bus_message *call = NULL, *reply = NULL;
	struct client c = { .req = req };
	int r;
	if ((r = sd_bus_match_signal(bus, NULL, NAME, "/", "org.freedesktop.DBus.Properties",
				     "PropertiesChanged", on_props, &c)) < 0 ||
	    (r = sd_bus_match_signal(bus, NULL, NAME, "/", IFACE, "Completed", on_completed,
				     &c)) < 0 ||
	    (r = sd_bus_match_signal(bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
				     "org.freedesktop.DBus", "NameOwnerChanged", on_owner, &c)) < 0)
		goto out;
	/* abota's own interface only when an abota-only key is needed, so a
	 * RAUC service serves everything else */
	if ((r = sd_bus_message_new_method_call(bus, &call, NAME, "/",
						req->force ? "org.abota.Device1" : IFACE,
						"InstallBundle")) < 0 ||
	    (r = sd_bus_message_append(call, "s", bundle)) < 0 || (r = append_args(call, req)) < 0 ||
	    (r = sd_bus_call(bus, call, 0, e, &reply)) < 0)
		goto out;
	while (!c.done && !c.vanished) {
		r = sd_bus_process(bus, NULL);
		if (r < 0)
			goto out;
		if (r == 0 && (r = sd_bus_wait(bus, UINT64_MAX)) < 0 && r != -EINTR)
			goto out;
	}
	if (!c.done) {
		r = -ECONNRESET;
		goto out;
	}
	if (c.result != 0) {
		/* the property, in case the last PropertiesChanged was missed */
		char *msg = NULL;
		if (sd_bus_get_property_string(bus, NAME, "/", IFACE, "LastError", NULL, &msg) >= 0 &&
		    msg[0]) {
			free(c.last_error);
			c.last_error = msg;
		} else {
			free(msg);
		}
		*last_error = c.last_error;
		c.last_error = NULL;
	}
	*result = c.result;
	r = 0;
out:
	free(c.last_error);
	sd_bus_message_unref(call);
	sd_bus_message_unref(reply);
	return r;
}

int dbus_client_install(const struct dbus_install_req *req, int *exit_code)
{
	sd_bus *bus = NULL;
	sd_bus_message *reply = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int has = 0, r, ret = 1;
	/* no bus or nobody serving: install locally */
	if (dbus_client_connect(req->bus, &bus) < 0)
		goto out;
	r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", "NameHasOwner", &e, &reply, "s", NAME);
	if (r < 0 || sd_bus_message_read(reply, "b", &has) < 0 || !has)
		goto out;
	reply = sd_bus_message_unref(reply);
	ret = 0;
	*exit_code = 2;
	/* the service's working directory is not ours */
	char abs[PATH_MAX];
	const char *src = req->bundle;
	if (!http_is_url(src)) {
		if (!realpath(src, abs)) {
			fprintf(stderr, "abota install: %s: %s\n", src, strerror(errno));
			*exit_code = 1;
			goto out;
		}
		src = abs;
	}
	char *last_error = NULL;
	int result = 0;
	r = dbus_client_run(bus, req, src, &e, &result, &last_error);
	if (r < 0) {
		if (sd_bus_error_is_set(&e)) {
			fprintf(stderr, "abota install: %s\n", e.message ? e.message : e.name);
			/* refused by the service (busy, bad arguments, access) is an
			 * install failure; a broken bus is a D-Bus error */
			if (!sd_bus_error_has_name(&e, SD_BUS_ERROR_NO_REPLY) &&
			    !sd_bus_error_has_name(&e, SD_BUS_ERROR_SERVICE_UNKNOWN))
				*exit_code = 1;
		} else if (r == -ECONNRESET) {
			fprintf(stderr, "abota install: the service (%s) vanished during the install\n",
				NAME);
		} else {
			fprintf(stderr, "abota install: D-Bus: %s\n", strerror(-r));
		}
		goto out;
	}
	if (result != 0) {
		fprintf(stderr, "Installing `%s` failed\nabota install: %s\n", src,
			last_error && last_error[0] ? last_error : "failed");
		free(last_error);
		*exit_code = 1;
		goto out;
	}
	printf("Installing `%s` succeeded (through the D-Bus service)\n", src);
	*exit_code = 0;
out:
	sd_bus_error_free(&e);
	sd_bus_message_unref(reply);
	sd_bus_flush_close_unref(bus);
	return ret;
}
