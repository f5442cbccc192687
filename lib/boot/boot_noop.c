/* boot_noop.c - bootloader backend that does nothing (RAUC's `noop`).
 * For systems where something else switches slots (or tests): marking
 * succeeds without effect, state and primary are unknown. */
#include <errno.h>
#include <stdlib.h>

#include "abota/boot_backend.h"
#include "abota/log.h"

static int noop_get_primary(struct boot_backend *b, struct slot **primary,
			    struct abota_error *err)
{
	(void)b;
	(void)primary;
	return abota_error_set(err, -ENOTSUP, "no primary slot information");
}

static int noop_set_primary(struct boot_backend *b, const struct slot *s,
			    struct abota_error *err)
{
	(void)b;
	(void)err;
	log_info("noop: not setting %s (%s) primary", s->name, s->bootname);
	return 0;
}

static int noop_get_state(struct boot_backend *b, const struct slot *s, bool *good,
			  struct abota_error *err)
{
	(void)b;
	(void)s;
	(void)good;
	return abota_error_set(err, -ENOTSUP, "no slot state information");
}

static int noop_set_state(struct boot_backend *b, const struct slot *s, bool good,
			  struct abota_error *err)
{
	(void)b;
	(void)err;
	log_info("noop: not marking %s (%s) %s", s->name, s->bootname, good ? "good" : "bad");
	return 0;
}

static bool noop_is_atomic(struct boot_backend *b)
{
	(void)b;
	return true; /* nothing is written, so nothing can be half-written */
}

static const struct boot_backend_ops noop_ops = {
	.name = "noop",
	.get_primary = noop_get_primary,
	.set_primary = noop_set_primary,
	.get_state = noop_get_state,
	.set_state = noop_set_state,
	.is_atomic = noop_is_atomic,
};

int boot_noop_open(const struct system_config *cfg, struct boot_backend **out,
		   struct abota_error *err)
{
	struct boot_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return abota_error_set(err, -ENOMEM, "out of memory");
	b->ops = &noop_ops;
	b->cfg = cfg;
	*out = b;
	return 0;
}
