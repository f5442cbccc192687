/* boot_backend.c - backend selection and the checks common to all backends. */
#include <errno.h>
#include <string.h>
#include <stdlib.h>

#include "abota/boot_backend.h"
#include "abota/boot_fwu.h"
#include "abota/fileio.h"
#include "abota/log.h"

int boot_backend_open(const struct system_config *cfg, struct boot_backend **out,
		      struct abota_error *err)
{
	/* Adding a bootloader: one file with its ops plus one case here. */
	switch (cfg->bootloader) {
	case CONFIG_BOOT_NOOP: return boot_noop_open(cfg, out, err);
	case CONFIG_BOOT_CUSTOM: return boot_custom_open(cfg, out, err);
	case CONFIG_BOOT_UBOOT: return boot_uboot_open(cfg, out, err);
	case CONFIG_BOOT_GRUB: return boot_grub_open(cfg, out, err);
	case CONFIG_BOOT_FWU: return boot_fwu_open(cfg, out, err);
	default:
		return abota_error_set(err, -ENOTSUP, "bootloader '%s' is not supported by abota",
				       config_bootloader_name(cfg->bootloader));
	}
}

void boot_backend_close(struct boot_backend *b)
{
	if (!b)
		return;
	if (b->ops->close)
		b->ops->close(b);
	free(b);
}

const char *boot_backend_name(const struct boot_backend *b)
{
	return b->ops->name;
}

static int need_bootname(const struct boot_backend *b, const struct slot *s,
			 struct abota_error *err)
{
	if (!s || !s->bootname)
		return abota_error_set(err, -EINVAL, "%s: slot %s has no bootname", b->ops->name,
				       s ? s->name : "(null)");
	return 0;
}

static int prefixed(const struct boot_backend *b, int ret, struct abota_error *err)
{
	if (ret < 0)
		abota_error_prefix(err, "%s", b->ops->name);
	return ret;
}

int boot_backend_get_booted(struct boot_backend *b, char **bootname, struct abota_error *err)
{
	if (!b->ops->get_booted)
		return -ENOTSUP; /* not an error worth a message: detection moves on */
	return prefixed(b, b->ops->get_booted(b, bootname, err), err);
}

int boot_backend_get_primary(struct boot_backend *b, struct slot **primary,
			     struct abota_error *err)
{
	return prefixed(b, b->ops->get_primary(b, primary, err), err);
}

int boot_backend_set_primary(struct boot_backend *b, const struct slot *s,
			     struct abota_error *err)
{
	int ret = need_bootname(b, s, err);
	return ret < 0 ? ret : prefixed(b, b->ops->set_primary(b, s, err), err);
}

int boot_backend_get_state(struct boot_backend *b, const struct slot *s, bool *good,
			   struct abota_error *err)
{
	int ret = need_bootname(b, s, err);
	return ret < 0 ? ret : prefixed(b, b->ops->get_state(b, s, good, err), err);
}

int boot_backend_set_state(struct boot_backend *b, const struct slot *s, bool good,
			   struct abota_error *err)
{
	int ret = need_bootname(b, s, err);
	return ret < 0 ? ret : prefixed(b, b->ops->set_state(b, s, good, err), err);
}

int boot_backend_accept(struct boot_backend *b, const struct slot *s, struct abota_error *err)
{
	int ret = need_bootname(b, s, err);
	if (ret < 0)
		return ret;
	if (b->ops->accept)
		return prefixed(b, b->ops->accept(b, s, err), err);
	return prefixed(b, b->ops->set_state(b, s, true, err), err);
}

int boot_backend_reject(struct boot_backend *b, const struct slot *s, struct abota_error *err)
{
	int ret = need_bootname(b, s, err);
	if (ret < 0)
		return ret;
	if (b->ops->reject)
		return prefixed(b, b->ops->reject(b, s, err), err);
	return prefixed(b, b->ops->set_state(b, s, false, err), err);
}

bool boot_backend_is_atomic(struct boot_backend *b)
{
	return b->ops->is_atomic ? b->ops->is_atomic(b) : false;
}

/* /proc/cmdline is bounded by the kernel; a file bigger than this is not one. */
#define CMDLINE_MAX (64 * 1024)

int boot_backend_determine_states(struct boot_backend *b, struct system_config *cfg,
				  const char *override, slot_resolve_fn resolve, void *resolve_ctx,
				  char **booted_id, struct slot **booted, struct abota_error *err)
{
	char *text = NULL, *current = NULL;
	size_t len;
	struct slot_cmdline c = { 0 };
	int ret;
	if (override)
		return slot_determine_states(cfg, override, NULL, NULL, resolve, resolve_ctx,
					     booted_id, booted, err);
	ret = fileio_read_all(cfg->cmdline_file, CMDLINE_MAX, &text, &len, err);
	if (ret < 0) {
		abota_error_prefix(err, "kernel command line");
		goto out;
	}
	if ((ret = slot_cmdline_parse(text, &c, err)) < 0)
		goto out;
	/* Only ask the bootloader when the command line is not explicit:
	 * a custom script is slow and may not implement get-current. */
	if (b && !c.external && !c.rauc_slot) {
		struct abota_error e = { 0 };
		if (boot_backend_get_booted(b, &current, &e) < 0 && e.msg[0])
			log_debug("bootloader does not name the booted slot: %s", e.msg);
	}
	ret = slot_determine_states(cfg, NULL, text, current, resolve, resolve_ctx, booted_id,
				    booted, err);
out:
	slot_cmdline_clear(&c);
	free(current);
	free(text);
	return ret;
}

struct slot *boot_backend_first_in_order(const struct system_config *cfg, const char *order,
					 bool (*usable)(void *ctx, const char *bootname),
					 void *ctx)
{
	for (const char *p = order ? order : ""; *p;) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		char name[128];
		if (n && n < sizeof(name)) {
			memcpy(name, p, n);
			name[n] = '\0';
			struct slot *s = slot_find_bootname(cfg, name);
			if (s && usable(ctx, name))
				return s;
		}
		p += n;
	}
	return NULL;
}
