/* agent_installer.h - how the hawkBit agent installs and reads the board.
 *
 * The agent (hawkbit_agent.h) talks to the network; what changes the
 * device goes through this interface, so the agent can run unprivileged
 * (security case SC-181) with the installer in another process:
 *
 *   - in-process (agent_installer_local()): install_run() and the boot
 *     backend in the agent's own process, which must then be root (the
 *     classic abotad, and abotad --dbus);
 *   - D-Bus (src/abotad/agent_dbus.c): RAUC's InstallBundle on the root
 *     service `abota service` (abota-dbus.service), Completed / LastError,
 *     and the board read with GetBankHistory / GetFwuStatus / BootSlot;
 *     the agent needs no privilege at all.  lib/ knows nothing of D-Bus:
 *     the program passes that implementation in (hawkbit_agent_opts).
 */
#ifndef ABOTA_AGENT_INSTALLER_H
#define ABOTA_AGENT_INSTALLER_H

#include <stdbool.h>
#include <stddef.h>

#include "abota/error.h"
#include "abota/http_source.h"
#include "abota/install.h"

#define AGENT_MAX_BANKS 8

/* One bootable slot (a bank). */
struct agent_bank {
	char bootname[64];
	bool booted;           /* the running system's root slot */
	bool primary;          /* the boot backend's primary */
	bool good;             /* boot-status good */
	char version[257];     /* bundle.version of the slot status ("" unknown) */
};

/* What the agent needs to judge an update. */
struct agent_board {
	char booted_id[64];    /* what the kernel command line names ("" unknown) */
	struct agent_bank bank[AGENT_MAX_BANKS];
	size_t n_banks;
	/* FWU metadata boards (boot_fwu.h) only: */
	bool fwu;
	char fwu_state[AGENT_MAX_BANKS][16]; /* per bank[]: accepted / valid / invalid */
	bool fwu_active[AGENT_MAX_BANKS];    /* per bank[]: the FWU active index */
	bool rolled_back;
	char failed_bootname[64];            /* the bank the board fell back from */
	char rollback_reason[256];
};

struct agent_install_req {
	const char *bundle;              /* absolute path or http(s):// URL */
	const struct http_opts *http;    /* for a URL: TLS and headers (the token) */
	install_progress_fn progress;
	void *progress_ctx;
};

struct agent_installer_ops {
	/* Installs; on success result->target names the installed bank. */
	int (*install)(void *ctx, const struct agent_install_req *req,
		       struct install_result *result, struct abota_error *err);
	/* Reads the board's banks and boot state. */
	int (*board)(void *ctx, struct agent_board *out, struct abota_error *err);
	void (*free)(void *ctx);
};

struct agent_installer {
	const struct agent_installer_ops *ops;
	void *ctx;
	const char *name; /* for messages: "in-process", "D-Bus" */
};

/* The in-process installer for a system.conf (NULL = default path), its
 * overrides and an optional replacement keyring.  The strings are
 * borrowed.  Free with agent_installer_free(). */
int agent_installer_local(const char *system_conf, const char *const *confopt,
			  const char *keyring, struct agent_installer **out,
			  struct abota_error *err);

void agent_installer_free(struct agent_installer *in);

/* The bank with this bootname, or NULL. */
const struct agent_bank *agent_board_find(const struct agent_board *b, const char *bootname);
/* Its index in b->bank, or -1. */
int agent_board_index(const struct agent_board *b, const char *bootname);

#endif
