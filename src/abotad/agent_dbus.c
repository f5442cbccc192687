/* agent_dbus.c - the agent's installer through the root D-Bus service (see
 * agent_dbus.h).  A connection per operation: the service may restart
 * between polls (systemd restarts it) without the agent noticing. */
#include "agent_dbus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>

#include "abota/fileio.h"
#include "abota/log.h"

#include "../abota/dbus_client.h"

#define NAME "de.pengutronix.rauc"
#define IFACE "de.pengutronix.rauc.Installer"
#define IFACE_ABOTA "org.abota.Device1"

struct dctx {
	char *bus;
};

static int connect_bus(const char *kind, sd_bus **out, struct abota_error *err)
{
	int r = dbus_client_connect(kind, out);
	if (r < 0)
		return abota_error_set(err, r, "D-Bus (%s): %s", kind, strerror(-r));
	return 0;
}

/* A D-Bus error as the agent reports it: the service's message. */
static int bus_error(struct abota_error *err, int r, const sd_bus_error *e, const char *what)
{
	if (sd_bus_error_is_set(e))
		return abota_error_set(err, sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED) ? -EACCES
											 : -EIO,
				       "%s: %s", what, e->message ? e->message : e->name);
	return abota_error_set(err, r < 0 ? r : -EIO, "%s: %s", what, strerror(r < 0 ? -r : EIO));
}

/* --- reading a{sv} ------------------------------------------------------ */

/* Reads the variant at m if it holds type sig ("s", "b", "u", "i"); else
 * skips it.  1 = read, 0 = skipped. */
static int var(sd_bus_message *m, const char *sig, void *out)
{
	char t;
	const char *contents;
	int r = sd_bus_message_peek_type(m, &t, &contents);
	if (r < 0)
		return r;
	if (t != 'v' || strcmp(contents, sig) != 0)
		return sd_bus_message_skip(m, "v") < 0 ? -EBADMSG : 0;
	r = sd_bus_message_read(m, "v", sig, out);
	return r < 0 ? r : 1;
}

static int var_str(sd_bus_message *m, char *out, size_t cap)
{
	const char *s = NULL;
	int r = var(m, "s", &s);
	if (r == 1)
		snprintf(out, cap, "%s", s);
	return r;
}

static int var_bool(sd_bus_message *m, bool *out)
{
	int v = 0;
	int r = var(m, "b", &v);
	if (r == 1)
		*out = v != 0;
	return r;
}

/* --- install ------------------------------------------------------------ */

/* GetBankHistory, one bank at a time. */
typedef int (*bank_fn)(void *ctx, const char *bootname, sd_bus_message *dict);

static int bank_history(sd_bus *bus, bank_fn fn, void *ctx, struct abota_error *err)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	int r = sd_bus_call_method(bus, NAME, "/", IFACE_ABOTA, "GetBankHistory", &e, &reply, "");
	if (r < 0) {
		r = bus_error(err, r, &e, "GetBankHistory");
		goto out;
	}
	if ((r = sd_bus_message_enter_container(reply, 'a', "(sa{sv})")) < 0)
		goto bad;
	while ((r = sd_bus_message_enter_container(reply, 'r', "sa{sv}")) > 0) {
		const char *slot;
		if ((r = sd_bus_message_read(reply, "s", &slot)) < 0 ||
		    (r = fn(ctx, slot, reply)) < 0 || (r = sd_bus_message_exit_container(reply)) < 0)
			goto bad;
	}
	if (r < 0 || (r = sd_bus_message_exit_container(reply)) < 0)
		goto bad;
	r = 0;
	goto out;
bad:
	r = abota_error_set(err, -EBADMSG, "GetBankHistory: malformed reply (%s)", strerror(-r));
out:
	sd_bus_error_free(&e);
	sd_bus_message_unref(reply);
	return r;
}

struct find_tx {
	const char *tid;
	char target[64];
};

static int find_tx_bank(void *ctx, const char *slot, sd_bus_message *m)
{
	(void)slot;
	struct find_tx *f = ctx;
	char bootname[64] = "", tx[64] = "";
	int r = sd_bus_message_enter_container(m, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		const char *key;
		if ((r = sd_bus_message_read(m, "s", &key)) < 0)
			return r;
		if (!strcmp(key, "bootname"))
			r = var_str(m, bootname, sizeof(bootname));
		else if (!strcmp(key, "installed.transaction"))
			r = var_str(m, tx, sizeof(tx));
		else
			r = sd_bus_message_skip(m, "v");
		if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
			return r;
	}
	if (r < 0)
		return r;
	if (!strcmp(tx, f->tid))
		snprintf(f->target, sizeof(f->target), "%s", bootname);
	return sd_bus_message_exit_container(m);
}

static int dbus_install(void *ctx, const struct agent_install_req *req,
			struct install_result *result, struct abota_error *err)
{
	struct dctx *d = ctx;
	sd_bus *bus = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char *uuid = NULL;
	size_t n = 0;
	int r = fileio_read_all("/proc/sys/kernel/random/uuid", 64, &uuid, &n, err);
	if (r < 0)
		return r;
	uuid[strcspn(uuid, "\r\n")] = '\0';
	if ((r = connect_bus(d->bus, &bus, err)) < 0)
		goto out;
	struct dbus_install_req dr = { .bundle = req->bundle, .transaction_id = uuid,
				       .http = req->http, .progress = req->progress,
				       .progress_ctx = req->progress_ctx };
	char *last_error = NULL;
	int code = 0;
	r = dbus_client_run(bus, &dr, req->bundle, &e, &code, &last_error);
	if (r < 0) {
		if (sd_bus_error_is_set(&e))
			r = bus_error(err, r, &e, "the install service refused the install");
		else if (r == -ECONNRESET)
			r = abota_error_set(err, -EIO,
					    "the install service (%s) went away during the install", NAME);
		else
			r = abota_error_set(err, r, "D-Bus connection lost during the install: %s",
					    strerror(-r));
		goto out;
	}
	if (code != 0) {
		r = abota_error_set(err, -EIO, "%s",
				    last_error && last_error[0] ? last_error : "install failed");
		free(last_error);
		goto out;
	}
	/* Which bank it went to: the one that records our transaction. */
	struct find_tx f = { .tid = uuid };
	if ((r = bank_history(bus, find_tx_bank, &f, err)) < 0)
		goto out;
	if (!f.target[0]) {
		r = abota_error_set(err, -EIO, "installed, but no bank records transaction %s", uuid);
		goto out;
	}
	memset(result, 0, sizeof(*result));
	snprintf(result->target, sizeof(result->target), "%s", f.target);
	snprintf(result->transaction, sizeof(result->transaction), "%s", uuid);
	r = 0;
out:
	free(uuid);
	sd_bus_error_free(&e);
	sd_bus_flush_close_unref(bus);
	return r;
}

/* --- board -------------------------------------------------------------- */

static int add_bank(void *ctx, const char *slot, sd_bus_message *m)
{
	(void)slot;
	struct agent_board *b = ctx;
	struct agent_bank k;
	char status[16] = "";
	memset(&k, 0, sizeof(k));
	int r = sd_bus_message_enter_container(m, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		const char *key;
		if ((r = sd_bus_message_read(m, "s", &key)) < 0)
			return r;
		if (!strcmp(key, "bootname"))
			r = var_str(m, k.bootname, sizeof(k.bootname));
		else if (!strcmp(key, "booted"))
			r = var_bool(m, &k.booted);
		else if (!strcmp(key, "primary"))
			r = var_bool(m, &k.primary);
		else if (!strcmp(key, "boot-status"))
			r = var_str(m, status, sizeof(status));
		else if (!strcmp(key, "bundle.version"))
			r = var_str(m, k.version, sizeof(k.version));
		else
			r = sd_bus_message_skip(m, "v");
		if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
			return r;
	}
	if (r < 0)
		return r;
	k.good = !strcmp(status, "good");
	if (k.bootname[0] && b->n_banks < AGENT_MAX_BANKS)
		b->bank[b->n_banks++] = k;
	return sd_bus_message_exit_container(m);
}

/* GetFwuStatus: bank states, the active bank, a rollback. */
static int fwu_status(sd_bus *bus, struct agent_board *b, struct abota_error *err)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	char bootnames[AGENT_MAX_BANKS][64];
	char states[AGENT_MAX_BANKS][16];
	unsigned nbanks = 0, active = UINT32_MAX;
	int failed = -1;
	int r = sd_bus_call_method(bus, NAME, "/", IFACE_ABOTA, "GetFwuStatus", &e, &reply, "");
	if (r < 0) {
		/* "bootloader is X, not fwu": nothing FWU to read */
		if (sd_bus_error_is_set(&e) && e.message && strstr(e.message, "not fwu"))
			r = 0;
		else
			r = bus_error(err, r, &e, "GetFwuStatus");
		goto out;
	}
	if ((r = sd_bus_message_enter_container(reply, 'a', "{sv}")) < 0)
		goto bad;
	while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
		const char *key;
		if ((r = sd_bus_message_read(reply, "s", &key)) < 0)
			goto bad;
		if (!strcmp(key, "banks")) {
			if ((r = sd_bus_message_enter_container(reply, 'v', "a(uss)")) < 0 ||
			    (r = sd_bus_message_enter_container(reply, 'a', "(uss)")) < 0)
				goto bad;
			uint32_t idx;
			const char *bn, *st;
			while ((r = sd_bus_message_read(reply, "(uss)", &idx, &bn, &st)) > 0)
				if (idx < AGENT_MAX_BANKS) {
					snprintf(bootnames[idx], sizeof(bootnames[idx]), "%s", bn);
					snprintf(states[idx], sizeof(states[idx]), "%s", st);
					if (idx + 1 > nbanks)
						nbanks = idx + 1;
				}
			if (r < 0 || (r = sd_bus_message_exit_container(reply)) < 0 ||
			    (r = sd_bus_message_exit_container(reply)) < 0)
				goto bad;
		} else if (!strcmp(key, "active-index")) {
			r = var(reply, "u", &active);
		} else if (!strcmp(key, "rollback")) {
			r = var_bool(reply, &b->rolled_back);
		} else if (!strcmp(key, "failed-bank")) {
			r = var(reply, "i", &failed);
		} else if (!strcmp(key, "rollback-reason")) {
			r = var_str(reply, b->rollback_reason, sizeof(b->rollback_reason));
		} else {
			r = sd_bus_message_skip(reply, "v");
		}
		if (r < 0 || (r = sd_bus_message_exit_container(reply)) < 0)
			goto bad;
	}
	if (r < 0 || (r = sd_bus_message_exit_container(reply)) < 0)
		goto bad;
	b->fwu = true;
	for (unsigned i = 0; i < nbanks; i++) {
		int k = agent_board_index(b, bootnames[i]);
		if (k < 0)
			continue;
		/* a state name that does not fit is not one the service sends */
		size_t n = strnlen(states[i], sizeof(states[i]));
		if (n >= sizeof(b->fwu_state[k])) {
			r = -EBADMSG;
			goto bad;
		}
		memcpy(b->fwu_state[k], states[i], n + 1);
		b->fwu_active[k] = i == active;
	}
	if (b->rolled_back && failed >= 0 && (unsigned)failed < nbanks)
		snprintf(b->failed_bootname, sizeof(b->failed_bootname), "%s", bootnames[failed]);
	r = 0;
	goto out;
bad:
	r = abota_error_set(err, -EBADMSG, "GetFwuStatus: malformed reply (%s)", strerror(-r));
out:
	sd_bus_error_free(&e);
	sd_bus_message_unref(reply);
	return r;
}

static int dbus_board(void *ctx, struct agent_board *out, struct abota_error *err)
{
	struct dctx *d = ctx;
	sd_bus *bus = NULL;
	struct agent_board b;
	char *boot_slot = NULL;
	memset(&b, 0, sizeof(b));
	int r = connect_bus(d->bus, &bus, err);
	if (r < 0)
		return r;
	if ((r = bank_history(bus, add_bank, &b, err)) < 0 || (r = fwu_status(bus, &b, err)) < 0)
		goto out;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	if (sd_bus_get_property_string(bus, NAME, "/", IFACE, "BootSlot", &e, &boot_slot) >= 0)
		snprintf(b.booted_id, sizeof(b.booted_id), "%s", boot_slot);
	sd_bus_error_free(&e);
	*out = b;
	r = 0;
out:
	free(boot_slot);
	sd_bus_flush_close_unref(bus);
	return r;
}

static void dbus_free(void *ctx)
{
	struct dctx *d = ctx;
	if (d)
		free(d->bus);
	free(d);
}

static const struct agent_installer_ops dbus_ops = {
	.install = dbus_install,
	.board = dbus_board,
	.free = dbus_free,
};

int agent_installer_dbus(const char *bus, struct agent_installer **out, struct abota_error *err)
{
	struct agent_installer *in = calloc(1, sizeof(*in));
	struct dctx *d = calloc(1, sizeof(*d));
	if (!in || !d || !(d->bus = strdup(bus))) {
		free(in);
		dbus_free(d);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	in->ops = &dbus_ops;
	in->ctx = d;
	in->name = "D-Bus";
	*out = in;
	return 0;
}
