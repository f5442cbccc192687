/* agent_installer.c - the in-process agent installer (agent_installer.h):
 * install_run() and the boot backend in the agent's own process. */
#include "abota/agent_installer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/boot_backend.h"
#include "abota/boot_fwu.h"
#include "abota/config.h"
#include "abota/fwu_metadata.h"
#include "abota/log.h"
#include "abota/slot.h"
#include "abota/slot_status.h"

struct local {
	const char *system_conf;
	const char *const *confopt;
	const char *keyring;
};

const struct agent_bank *agent_board_find(const struct agent_board *b, const char *bootname)
{
	int i = agent_board_index(b, bootname);
	return i < 0 ? NULL : &b->bank[i];
}

int agent_board_index(const struct agent_board *b, const char *bootname)
{
	for (size_t i = 0; i < b->n_banks && i < AGENT_MAX_BANKS; i++)
		if (!strcmp(b->bank[i].bootname, bootname))
			return (int)i;
	return -1;
}

static int load(struct local *l, struct system_config **cfg, struct abota_error *err)
{
	int ret = config_load_with_overrides(l->system_conf, l->confopt, cfg, err);
	if (ret < 0)
		abota_error_prefix(err, "system configuration");
	return ret;
}

static int local_install(void *ctx, const struct agent_install_req *req,
			 struct install_result *result, struct abota_error *err)
{
	struct local *l = ctx;
	struct system_config *cfg = NULL;
	struct sig_policy pol;
	int ret = load(l, &cfg, err);
	if (ret < 0)
		return ret;
	struct install_opts io = { .bundle = req->bundle, .http = req->http,
				   .progress = req->progress, .progress_ctx = req->progress_ctx };
	if (l->keyring) {
		pol = cfg->keyring;
		pol.keyring_path = l->keyring;
		pol.keyring_dir = NULL;
		io.keyring = &pol;
	}
	ret = install_run(cfg, &io, result, err);
	config_free(cfg);
	return ret;
}

/* The FWU part of the board (bank states, rollback). */
static int fwu_board(struct boot_backend *b, struct system_config *cfg, struct agent_board *out,
		     struct abota_error *err)
{
	struct boot_fwu_status fs;
	int ret = boot_fwu_get_status(b, &fs, err);
	if (ret < 0)
		return ret;
	out->fwu = true;
	for (size_t i = 0; i < out->n_banks; i++) {
		struct slot *s = slot_find_bootname(cfg, out->bank[i].bootname);
		unsigned bank;
		if (!s || (ret = boot_fwu_slot_bank(b, s, &bank, err)) < 0)
			return s ? ret : abota_error_set(err, -ENOENT, "no slot %s", out->bank[i].bootname);
		snprintf(out->fwu_state[i], sizeof(out->fwu_state[i]), "%s",
			 fwu_bank_state_name(fwu_md_bank_state(&fs.md, bank)));
		out->fwu_active[i] = fs.md.active_index == bank;
	}
	out->rolled_back = fs.rolled_back;
	if (fs.rolled_back && fs.failed_bank >= 0) {
		const char *bn = boot_fwu_bank_bootname(b, (unsigned)fs.failed_bank);
		snprintf(out->failed_bootname, sizeof(out->failed_bootname), "%s", bn ? bn : "");
	}
	snprintf(out->rollback_reason, sizeof(out->rollback_reason), "%s",
		 fs.rolled_back ? fs.rollback_reason : "");
	return 0;
}

static int local_board(void *ctx, struct agent_board *out, struct abota_error *err)
{
	struct local *l = ctx;
	struct system_config *cfg = NULL;
	struct boot_backend *b = NULL;
	struct slot_status_store *store = NULL;
	char *booted_id = NULL;
	struct slot *booted = NULL, *primary = NULL;
	struct agent_board bd;
	int ret;
	memset(&bd, 0, sizeof(bd));
	if ((ret = load(l, &cfg, err)) < 0 || (ret = boot_backend_open(cfg, &b, err)) < 0 ||
	    (ret = boot_backend_determine_states(b, cfg, NULL, NULL, NULL, &booted_id, &booted,
						 err)) < 0 ||
	    (ret = boot_backend_get_primary(b, &primary, err)) < 0)
		goto out;
	snprintf(bd.booted_id, sizeof(bd.booted_id), "%s", booted_id ? booted_id : "");
	if (cfg->statusfile && slot_status_load(cfg->statusfile, &store, err) < 0) {
		/* versions are a nicety; the boot state is what counts */
		log_debug("%s", err->msg);
		abota_error_clear(err);
		store = NULL;
	}
	const struct slot *root = booted ? slot_root(booted) : NULL;
	for (size_t i = 0; i < cfg->nslots && bd.n_banks < AGENT_MAX_BANKS; i++) {
		const struct slot *s = &cfg->slots[i];
		if (s->parent || !s->bootname)
			continue;
		struct agent_bank *k = &bd.bank[bd.n_banks++];
		snprintf(k->bootname, sizeof(k->bootname), "%s", s->bootname);
		k->booted = s == root;
		k->primary = s == primary;
		if ((ret = boot_backend_get_state(b, s, &k->good, err)) < 0)
			goto out;
		const struct slot_status *ss = store ? slot_status_find(store, s->name) : NULL;
		if (ss && ss->bundle_version)
			snprintf(k->version, sizeof(k->version), "%s", ss->bundle_version);
	}
	if (boot_fwu_is(b) && (ret = fwu_board(b, cfg, &bd, err)) < 0)
		goto out;
	*out = bd;
	ret = 0;
out:
	slot_status_store_free(store);
	free(booted_id);
	boot_backend_close(b);
	config_free(cfg);
	return ret;
}

static void local_free(void *ctx)
{
	free(ctx);
}

static const struct agent_installer_ops local_ops = {
	.install = local_install,
	.board = local_board,
	.free = local_free,
};

int agent_installer_local(const char *system_conf, const char *const *confopt,
			  const char *keyring, struct agent_installer **out,
			  struct abota_error *err)
{
	struct agent_installer *in = calloc(1, sizeof(*in));
	struct local *l = calloc(1, sizeof(*l));
	if (!in || !l) {
		free(in);
		free(l);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	l->system_conf = system_conf;
	l->confopt = confopt;
	l->keyring = keyring;
	in->ops = &local_ops;
	in->ctx = l;
	in->name = "in-process";
	*out = in;
	return 0;
}

void agent_installer_free(struct agent_installer *in)
{
	if (!in)
		return;
	if (in->ops->free)
		in->ops->free(in->ctx);
	free(in);
}
