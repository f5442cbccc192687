/* install.c - install a verified bundle into the inactive slot group. */
#include "abota/install.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "abota/adaptive.h"
#include "abota/adaptive_cache.h"
#include "abota/bank_fixup.h"
#include "abota/board.h"
#include "abota/boot_backend.h"
#include "abota/boot_fwu.h"
#include "abota/bundle.h"
#include "abota/digest.h"
#include "abota/event_log.h"
#include "abota/fileio.h"
#include "abota/fs_image.h"
#include "abota/install_journal.h"
#include "abota/log.h"
#include "abota/slot_device.h"
#include "abota/slot_mount.h"
#include "abota/slot_resize.h"
#include "abota/slot_status.h"
#include "abota/slot_writer.h"
#include "abota/system_info.h"
#include "abota/version.h"

/* One image of the manifest and the slot it goes to. */
struct plan_item {
	const struct manifest_image *img;
	struct slot *slot;
	bool skip; /* install-same: slot already holds this image */
	bool no_adaptive; /* adaptive reuse failed once: copy whole */
	struct journal_slot *journal; /* its progress in the resume journal */
};

struct install {
	struct system_config *cfg;
	const struct install_opts *opts;
	struct install_result *res;
	struct bundle *bundle;
	struct boot_backend *backend;
	struct slot *booted;
	char *booted_id;
	struct slot **group;
	size_t n_group;
	struct plan_item *plan;
	size_t n_plan;
	struct slot *target_root; /* the bootable slot of the group, or NULL */
	struct slot_status_store *status;
	char transaction[37];
	uint64_t bytes_total, bytes_before;
	char *hook_dir;
	char *journal_path;              /* NULL: no data-directory, no resume */
	int lock_fd;                     /* <data-directory>/install.lock, or -1 */
	struct install_journal *journal;
	struct install_journal *old_journal; /* found on disk, until journal_prepare() */
	const char *target_name;         /* the group, for the journal */
	struct system_info *sysinfo;     /* variant and system-info variables */
	char *info_headers[16];          /* [streaming] send-headers + RAUC_HTTP_*, NULL-terminated */
	bool locked;                     /* this install holds the install lock */
	bool logged_start;               /* the event log has "Installation ... started" */
	bool rejected;                   /* refused by policy (compatible, version, install-check) */
};

/* RAUC's install events (event_log.h).  The start is logged once the
 * transaction is final -- a resumed install continues the interrupted one's
 * -- or, if the install fails before, just ahead of the failure. */
static void log_install_start(struct install *in)
{
	if (in->logged_start)
		return;
	in->logged_start = true;
	struct event_field f[] = { { "TRANSACTION_ID", in->transaction } };
	event_log_emit(in->cfg, CONFIG_EVENT_INSTALL, EVENT_ID_INSTALL_STARTED, f, 1,
		       "Installation %.8s started", in->transaction);
}

static void log_install_done(struct install *in, int ret, const struct abota_error *err)
{
	log_install_start(in);
	const struct manifest *m = in->bundle ? bundle_get_manifest(in->bundle) : NULL;
	struct event_field f[] = {
		{ "BUNDLE_HASH", in->bundle ? bundle_manifest_hash(in->bundle) : "" },
		{ "BUNDLE_DESCRIPTION", m && m->description ? m->description : "" },
		{ "BUNDLE_VERSION", m && m->version ? m->version : "" },
		{ "TRANSACTION_ID", in->transaction },
	};
	if (ret == 0)
		event_log_emit(in->cfg, CONFIG_EVENT_INSTALL, EVENT_ID_INSTALL_SUCCEEDED, f, 4,
			       "Installation %.8s succeeded", in->transaction);
	else
		event_log_emit(in->cfg, CONFIG_EVENT_INSTALL,
			       in->rejected ? EVENT_ID_INSTALL_REJECTED : EVENT_ID_INSTALL_FAILED, f,
			       4, "Installation %.8s %s: %s", in->transaction,
			       in->rejected ? "rejected" : "failed",
			       err && err->msg[0] ? err->msg : strerror(-ret));
}

static void progress(struct install *in, unsigned percent, const char *msg, uint64_t done,
		     uint64_t total)
{
	if (!in->opts->progress)
		return;
	struct install_progress p = { .percent = percent, .message = msg, .depth = 1,
				      .bytes_done = done, .bytes_total = total };
	in->opts->progress(in->opts->progress_ctx, &p);
}

void install_new_transaction_id(char out[37])
{
	uint8_t b[16];
	if (RAND_bytes(b, sizeof(b)) != 1)
		memset(b, 0, sizeof(b));
	b[6] = (uint8_t)((b[6] & 0x0F) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* --- handlers and hooks --- */

struct env {
	char **v;
	size_t n, cap;
};

static int env_add(struct env *e, const char *key, const char *value)
{
	if (e->n + 2 > e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 32;
		char **v = realloc(e->v, cap * sizeof(char *));
		if (!v)
			return -ENOMEM;
		e->v = v;
		e->cap = cap;
	}
	char *s = NULL;
	if (key) {
		if (asprintf(&s, "%s=%s", key, value ? value : "") < 0)
			return -ENOMEM;
	} else if (!(s = strdup(value))) { /* key NULL: value is a whole "KEY=value" */
		return -ENOMEM;
	}
	e->v[e->n++] = s;
	e->v[e->n] = NULL;
	return 0;
}

static void env_free(struct env *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
}

/* What a slot hook gets in addition (RAUC_SLOT_*, RAUC_IMAGE_*). */
struct slot_hook {
	const struct plan_item *it;
	const char *mount_point; /* "" when the slot is not mounted */
	const char *image_path;  /* "" when the image has no file */
	const char *device;      /* the slot's device or file */
};

static int slot_hook_env(const struct slot_hook *h, struct env *e)
{
	const struct slot *s = h->it->slot;
	const struct slot *root = slot_root(s);
	const struct manifest_image *img = h->it->img;
	char size[32];
	snprintf(size, sizeof(size), "%llu", (unsigned long long)img->size);
	int ret = 0;
	ret |= env_add(e, "RAUC_SLOT_NAME", s->name);
	ret |= env_add(e, "RAUC_SLOT_STATE", "inactive");
	ret |= env_add(e, "RAUC_SLOT_CLASS", s->sclass);
	ret |= env_add(e, "RAUC_SLOT_TYPE", s->type);
	ret |= env_add(e, "RAUC_SLOT_DEVICE", h->device);
	ret |= env_add(e, "RAUC_SLOT_BOOTNAME", root->bootname ? root->bootname : "");
	ret |= env_add(e, "RAUC_SLOT_PARENT", s->parent ? s->parent->name : "");
	ret |= env_add(e, "RAUC_SLOT_MOUNT_POINT", h->mount_point);
	ret |= env_add(e, "RAUC_IMAGE_NAME", h->image_path);
	ret |= env_add(e, "RAUC_IMAGE_SIZE", img->filename ? size : "");
	ret |= env_add(e, "RAUC_IMAGE_DIGEST", img->filename ? img->sha256 : "");
	ret |= env_add(e, "RAUC_IMAGE_CLASS", img->slotclass);
	return ret ? -ENOMEM : 0;
}

/* RAUC's handler environment (specs/rauc-compat.md 5.4). */
static int build_env(struct install *in, struct env *e)
{
	const struct system_config *cfg = in->cfg;
	const struct manifest *m = bundle_get_manifest(in->bundle);
	int ret = 0;
	char key[64], list[4096] = "", targets[4096] = "";
	extern char **environ;
	/* Keep PATH and the like; drop inherited RAUC_* so nothing leaks in. */
	for (char **p = environ; *p; p++) {
		if (strncmp(*p, "RAUC_", 5) == 0)
			continue;
		char *eq = strchr(*p, '=');
		if (!eq)
			continue;
		char k[256];
		snprintf(k, sizeof(k), "%.*s", (int)(eq - *p), *p);
		if ((ret = env_add(e, k, eq + 1)) < 0)
			return ret;
	}
	ret |= env_add(e, "RAUC_SYSTEM_CONFIG", cfg->path);
	ret |= env_add(e, "RAUC_SYSTEM_COMPATIBLE", cfg->compatible);
	const struct system_info *si = in->sysinfo;
	ret |= env_add(e, "RAUC_SYSTEM_VARIANT", si && si->variant ? si->variant : "");
	/* and every RAUC_* variable of the system-info handler (RAUC 1.10),
	 * except those set above */
	for (size_t i = 0; si && i < si->n_vars; i++) {
		size_t klen = strcspn(si->vars[i], "=");
		bool dup = false;
		for (size_t j = 0; j < e->n && !dup; j++)
			dup = !strncmp(e->v[j], si->vars[i], klen + 1);
		if (!dup)
			ret |= env_add(e, NULL, si->vars[i]);
	}
	ret |= env_add(e, "RAUC_CURRENT_BOOTNAME",
		       in->booted && in->booted->bootname ? in->booted->bootname : "");
	ret |= env_add(e, "RAUC_MOUNT_PREFIX", cfg->mount_prefix);
	ret |= env_add(e, "RAUC_BUNDLE_MOUNT_POINT", in->hook_dir ? in->hook_dir : "");
	ret |= env_add(e, "RAUC_UPDATE_SOURCE", in->hook_dir ? in->hook_dir : "");
	ret |= env_add(e, "RAUC_TRANSACTION_ID", in->transaction);
	ret |= env_add(e, "RAUC_MF_COMPATIBLE", m->compatible);
	ret |= env_add(e, "RAUC_MF_VERSION", m->version ? m->version : "");
	ret |= env_add(e, "RAUC_MF_BUILD", m->build ? m->build : "");
	ret |= env_add(e, "RAUC_MANIFEST_HASH", bundle_manifest_hash(in->bundle));
	for (size_t i = 0; i < m->n_meta; i++) {
		for (size_t k = 0; k < m->meta[i].n_kv; k++) {
			char mk[300];
			snprintf(mk, sizeof(mk), "RAUC_META_%s_%s", m->meta[i].label,
				 m->meta[i].kv[k].key);
			for (char *c = mk; *c; c++) {
				if (*c == '-')
					*c = '_';
				else if (*c >= 'a' && *c <= 'z')
					*c = (char)(*c - 'a' + 'A');
			}
			ret |= env_add(e, mk, m->meta[i].kv[k].value);
		}
	}
	for (size_t i = 0; i < cfg->nslots; i++) {
		const struct slot *s = &cfg->slots[i];
		size_t n = i + 1;
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%zu", i ? " " : "", n);
#define SLOTVAR(name, val)                                                 \
	do {                                                               \
		snprintf(key, sizeof(key), "RAUC_SLOT_" name "_%zu", n);   \
		ret |= env_add(e, key, val);                               \
	} while (0)
		SLOTVAR("NAME", s->name);
		SLOTVAR("CLASS", s->sclass);
		SLOTVAR("TYPE", s->type);
		SLOTVAR("DEVICE", s->device ? s->device : s->partition);
		SLOTVAR("BOOTNAME", s->bootname ? s->bootname : "");
		SLOTVAR("PARENT", s->parent ? s->parent->name : "");
#undef SLOTVAR
		for (size_t p = 0; p < in->n_plan; p++) {
			if (in->plan[p].slot != s)
				continue;
			snprintf(targets + strlen(targets), sizeof(targets) - strlen(targets), "%s%zu",
				 targets[0] ? " " : "", n);
			snprintf(key, sizeof(key), "RAUC_IMAGE_NAME_%zu", n);
			ret |= env_add(e, key, in->plan[p].img->filename);
			snprintf(key, sizeof(key), "RAUC_IMAGE_DIGEST_%zu", n);
			ret |= env_add(e, key, in->plan[p].img->sha256);
			snprintf(key, sizeof(key), "RAUC_IMAGE_CLASS_%zu", n);
			ret |= env_add(e, key, in->plan[p].img->slotclass);
		}
	}
	ret |= env_add(e, "RAUC_SLOTS", list);
	ret |= env_add(e, "RAUC_TARGET_SLOTS", targets);
	return ret ? -ENOMEM : 0;
}

/* Starts argv with the install environment (plus a slot hook's); no
 * shell.  The child's pid, or a negative error. */
static pid_t start_program(struct install *in, const char *what, char *const argv[],
			   const struct slot_hook *hook, struct abota_error *err)
{
	struct env e = { 0 };
	int ret = build_env(in, &e);
	if (ret == 0 && hook)
		ret = slot_hook_env(hook, &e);
	if (ret < 0) {
		env_free(&e);
		return abota_error_set(err, ret, "out of memory");
	}
	log_info("running %s: %s %s", what, argv[0], argv[1] ? argv[1] : "");
	pid_t pid = fork();
	if (pid < 0) {
		env_free(&e);
		return abota_error_set(err, -errno, "%s: fork: %s", what, strerror(errno));
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, 0);
		execve(argv[0], argv, e.v);
		fprintf(stderr, "abota: %s: cannot execute %s: %s\n", what, argv[0], strerror(errno));
		_exit(127);
	}
	env_free(&e);
	return pid;
}

/* Waits for a started program: its exit code (>= 0) or a negative error. */
static int wait_program(pid_t pid, const char *what, const char *path, struct abota_error *err)
{
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return abota_error_set(err, -errno, "%s: waitpid: %s", what, strerror(errno));
	}
	if (WIFSIGNALED(status))
		return abota_error_set(err, -EINTR, "%s %s killed by signal %d", what, path,
				       WTERMSIG(status));
	return WEXITSTATUS(status);
}

static int run_program(struct install *in, const char *what, char *const argv[],
		       const struct slot_hook *hook, struct abota_error *err)
{
	pid_t pid = start_program(in, what, argv, hook, err);
	return pid < 0 ? (int)pid : wait_program(pid, what, argv[0], err);
}

static int run_handler(struct install *in, const char *what, const char *path,
		       struct abota_error *err)
{
	if (!path)
		return 0;
	char *argv[] = { (char *)path, NULL };
	int ret = run_program(in, what, argv, NULL, err);
	if (ret > 0)
		return abota_error_set(err, -ECANCELED, "%s handler %s failed with exit code %d",
				       what, path, ret);
	return ret;
}

/* What handlers and hooks see of the bundle (RAUC_BUNDLE_MOUNT_POINT): RAUC
 * mounts the bundle; abota never does (it reads the squashfs itself), so the
 * bundle's files except the images -- hook script, extra files a handler
 * reads -- are extracted from the verified bundle into a private directory
 * (0700), up to HANDLER_FILES_MAX bytes, when a handler or hook will run.
 * The images are not there: they go to the slots, and an install hook reads
 * its image from a FIFO of the same name (run_install_hook). */
#define HANDLER_FILES_MAX (32u << 20)

static int extract_bundle_files(struct install *in, struct abota_error *err)
{
	const char *name = bundle_get_manifest(in->bundle)->hooks_filename;
	const char *base = getenv("RUNTIME_DIRECTORY");
	char tmpl[4096];
	snprintf(tmpl, sizeof(tmpl), "%s/abota-bundle-XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(tmpl))
		return abota_error_set(err, -errno, "handlers: %s: %s", tmpl, strerror(errno));
	in->hook_dir = strdup(tmpl);
	if (!in->hook_dir) {
		rmdir(tmpl);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	int ret = bundle_extract_files(in->bundle, tmpl, HANDLER_FILES_MAX, err);
	if (ret < 0) {
		abota_error_prefix(err, "extracting the bundle's files for the handlers");
		return ret;
	}
	if (!name)
		return 0;
	/* The hook runs whatever mode the bundle gave it, as before. */
	char path[4352];
	snprintf(path, sizeof(path), "%s/%s", tmpl, name);
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return abota_error_set(err, -ENOENT, "hooks: the bundle has no hook file '%s'", name);
	if (chmod(path, 0700) < 0)
		return abota_error_set(err, -errno, "hooks: %s: %s", path, strerror(errno));
	return 0;
}

static void remove_hook_dir(struct install *in)
{
	if (!in->hook_dir)
		return;
	fileio_remove_tree(in->hook_dir);
	free(in->hook_dir);
	in->hook_dir = NULL;
}

/* --- checks --- */

static int check_compatible(struct install *in, struct abota_error *err)
{
	const struct manifest *m = bundle_get_manifest(in->bundle);
	if (m->hook_install_check) {
		/* The hook replaces the compatible check (RAUC). */
		char path[4352];
		snprintf(path, sizeof(path), "%s/%s", in->hook_dir, m->hooks_filename);
		char *argv[] = { path, "install-check", NULL };
		int code = run_program(in, "install-check hook", argv, NULL, err);
		if (code < 0)
			return code;
		if (code >= 10)
			return abota_error_set(err, -EPERM, "bundle rejected by its install-check hook (exit code %d)",
					       code);
		if (code != 0)
			return abota_error_set(err, -ECANCELED, "install-check hook failed (exit code %d)",
					       code);
		return 0;
	}
	if (in->opts->ignore_compatible) {
		log_warning("ignoring compatible '%s' (system: '%s')", m->compatible,
			    in->cfg->compatible);
		return 0;
	}
	/* Byte-exact, as RAUC: trailing spaces count. */
	if (strcmp(m->compatible, in->cfg->compatible) != 0)
		return abota_error_set(err, -EPERM,
				       "compatible mismatch: bundle is for '%s', this system is '%s'",
				       m->compatible, in->cfg->compatible);
	return 0;
}

/* Anti-rollback (version.h): the highest version this device accepted,
 * persisted in the data directory, whatever slot runs now.  Once there is a
 * floor, a bundle whose version cannot be compared with it is refused too. */
static int check_version_floor(struct install *in, const char *version, struct abota_error *err)
{
	char *path = NULL, *floor = NULL;
	int cmp = 0, ret = 0;
	if (!in->cfg->data_directory)
		return 0;
	if (asprintf(&path, "%s/%s", in->cfg->data_directory, VERSION_FLOOR_FILE) < 0)
		return abota_error_set(err, -ENOMEM, "out of memory");
	ret = version_floor_load(path, &floor, err);
	if (ret == 0 && floor && (!version || !version_compare(version, floor, &cmp)))
		ret = abota_error_set(err, -EPERM,
				      "bundle version '%.64s' cannot be compared with the accepted version %s (%s)",
				      version ? version : "(none)", floor, path);
	else if (ret == 0 && floor && cmp < 0)
		ret = abota_error_set(err, -EPERM,
				      "bundle version %s is older than version %s, which this device accepted before (rollback; use --ignore-version-limit to allow it)",
				      version, floor);
	free(floor);
	free(path);
	return ret;
}

static int check_version(struct install *in, struct abota_error *err)
{
	const struct manifest *m = bundle_get_manifest(in->bundle);
	if (in->opts->ignore_version_limit)
		return 0;
	int cmp;
	const char *min = in->cfg->min_bundle_version;
	if (min) {
		if (!m->version || !version_compare(m->version, min, &cmp))
			return abota_error_set(err, -EPERM,
					       "bundle version '%s' cannot be compared with min-bundle-version '%s'",
					       m->version ? m->version : "(none)", min);
		if (cmp < 0)
			return abota_error_set(err, -EPERM,
					       "bundle version %s is older than min-bundle-version %s",
					       m->version, min);
	}
	/* Downgrade protection: the bundle must not be older than what the
	 * booted slot runs, when both versions are known and comparable. */
	const struct slot_status *st = in->status && in->booted
		? slot_status_find(in->status, in->booted->name) : NULL;
	if (st && st->bundle_version && m->version &&
	    version_compare(m->version, st->bundle_version, &cmp) && cmp < 0)
		return abota_error_set(err, -EPERM,
				       "bundle version %s is older than the running version %s (downgrade; use --ignore-version-limit to allow it)",
				       m->version, st->bundle_version);
	return check_version_floor(in, m->version, err);
}


static int make_plan(struct install *in, struct abota_error *err)
{
	const struct manifest *m = bundle_get_manifest(in->bundle);
	int ret = slot_target_group(in->cfg, in->status ? slot_status_rank : NULL, in->status,
				    &in->group, &in->n_group, err);
	if (ret < 0)
		return ret;
	const char *variant = in->sysinfo ? in->sysinfo->variant : NULL;
	/* RAUC: a slot class that only has images for other variants is an
	 * error, not a silent skip (security case SC-106) */
	ret = manifest_check_variants(m, variant, err);
	if (ret < 0)
		return ret;
	if (m->n_images == 0)
		return abota_error_set(err, -EINVAL, "the bundle has no image for this system");
	in->plan = calloc(m->n_images, sizeof(*in->plan));
	if (!in->plan)
		return abota_error_set(err, -ENOMEM, "out of memory");
	size_t n = 0;
	for (size_t i = 0; i < m->n_images; i++) {
		const struct manifest_image *img = &m->images[i];
		/* Variant rules: an image for our variant wins over the generic one;
		 * images for other variants are ignored. */
		if (img->variant && (!variant || strcmp(img->variant, variant) != 0))
			continue;
		if (!img->variant) {
			bool specific = false;
			for (size_t k = 0; k < m->n_images; k++)
				if (m->images[k].variant && variant &&
				    strcmp(m->images[k].slotclass, img->slotclass) == 0 &&
				    strcmp(m->images[k].variant, variant) == 0)
					specific = true;
			if (specific)
				continue;
		}
		if ((img->hook_install || img->hook_pre_install || img->hook_post_install) &&
		    !m->hooks_filename)
			return abota_error_set(err, -EINVAL,
					       "image '%s' has slot hooks but the manifest names no hook file ([hooks] filename)",
					       img->filename ? img->filename : img->slotclass);
		struct slot *target = NULL;
		for (size_t g = 0; g < in->n_group; g++)
			if (strcmp(in->group[g]->sclass, img->slotclass) == 0 && !in->group[g]->readonly)
				target = in->group[g];
		if (!target)
			return abota_error_set(err, -ENOENT,
					       "no target slot for image class '%s' (is there an inactive, writable slot of that class?)",
					       img->slotclass);
		const char *itype = manifest_image_type(img);
		/* an install hook writes the slot itself, maybe from no file */
		if (!(img->hook_install && !img->filename) &&
		    !slot_writer_can_write(itype, target->type) &&
		    !fs_image_supported(itype, target->type))
			return abota_error_set(err, -ENOTSUP,
					       "image '%s' of type %s cannot be installed into slot %s of type %s",
					       img->filename, itype ? itype : "(unknown)", target->name,
					       target->type);
		for (size_t p = 0; p < n; p++)
			if (in->plan[p].slot == target)
				return abota_error_set(err, -EINVAL, "two images for slot %s",
						       target->name);
		in->plan[n].img = img;
		in->plan[n].slot = target;
		n++;
	}
	/* counted here, stored once: every one of the n entries is filled */
	in->n_plan = n;
	for (size_t p = 0; p < n; p++) {
		const struct slot *root = slot_root(in->plan[p].slot);
		if (root->bootname)
			in->target_root = (struct slot *)root;
	}
	if (n == 0)
		return abota_error_set(err, -EINVAL, "the bundle has no image for this system");
	return 0;
}

/* Every target must exist and be large enough before anything is written. */
static int precheck_slots(struct install *in, struct abota_error *err)
{
	for (size_t p = 0; p < in->n_plan; p++) {
		struct plan_item *it = &in->plan[p];
		struct slot_device dev;
		int ret = slot_device_open(in->cfg, it->slot, O_RDONLY, &dev, err);
		if (ret < 0) {
			abota_error_prefix(err, "slot %s", it->slot->name);
			return ret;
		}
		uint64_t size = dev.size;
		ret = it->slot->allow_mounted ? 0 : slot_device_check_unmounted(it->slot, &dev, err);
		slot_device_close(&dev);
		if (ret < 0)
			return ret;
		/* (a tar archive's size says nothing about the file system's) */
		if (it->img->size > size && !fs_image_supported(manifest_image_type(it->img),
								 it->slot->type))
			return abota_error_set(err, -ENOSPC,
					       "slot %s is too small for image '%s' (%llu bytes > %llu)",
					       it->slot->name, it->img->filename,
					       (unsigned long long)it->img->size,
					       (unsigned long long)size);
		in->bytes_total += it->img->size;
		/* install-same=false: skip a slot that already holds this image */
		const struct slot_status *st = in->status ? slot_status_find(in->status, it->slot->name)
							  : NULL;
		if (!it->slot->install_same && st && st->status && strcmp(st->status, "ok") == 0 &&
		    st->sha256 && strcmp(st->sha256, it->img->sha256) == 0)
			it->skip = true;
	}
	return 0;
}

/* --- writing (slot_writer.h) --- */

struct write_ctx {
	struct install *in;
	struct journal_slot *journal; /* NULL: no resume journal */
	const char *slot;
	uint64_t start; /* where this run began writing */
	uint64_t total;
};

static void write_progress(void *p, uint64_t off)
{
	struct write_ctx *w = p;
	struct install *in = w->in;
	uint64_t done = in->bytes_before + (off - w->start);
	unsigned pct = in->bytes_total ? (unsigned)(10 + done * 85 / in->bytes_total) : 95;
	progress(in, pct, w->slot, off, w->total);
}

/* Resume checkpoint: the image up to verified was just proven (synced, read
 * back, matched); it goes into the journal with the image's hash state. */
static int write_checkpoint(void *p, uint64_t verified, const struct digest_sha256_state *state,
			    struct abota_error *err)
{
	struct write_ctx *w = p;
	if (!w->journal || !state)
		return 0;
	install_journal_set_progress(w->journal, verified, state);
	return install_journal_save(w->in->journal, w->in->journal_path, err);
}

static int save_status(struct install *in, struct abota_error *err)
{
	if (!in->status)
		return 0;
	return slot_status_save(in->status, err);
}

static int record_bundle(struct install *in, struct slot_status *st)
{
	const struct manifest *m = bundle_get_manifest(in->bundle);
	int ret = 0;
	ret |= slot_status_set(&st->bundle_compatible, m->compatible);
	ret |= slot_status_set(&st->bundle_version, m->version);
	ret |= slot_status_set(&st->bundle_description, m->description);
	ret |= slot_status_set(&st->bundle_build, m->build);
	ret |= slot_status_set(&st->bundle_hash, bundle_manifest_hash(in->bundle));
	return ret;
}

/* The slot's status after writing it (ret: the write's result), saved.
 * Returns ret, or the save's error if the write succeeded. */
static int record_result(struct install *in, struct slot_status *st,
			 const struct manifest_image *img, int ret, struct abota_error *err)
{
	char ts[SLOT_STATUS_TIMESTAMP_LEN];
	int r2 = record_bundle(in, st);
	slot_status_set(&st->status, ret == 0 ? "ok" : "failed");
	if (ret == 0 && img->filename) {
		slot_status_set(&st->sha256, img->sha256);
		st->size = img->size;
		st->has_size = true;
	}
	slot_status_timestamp_now(ts);
	slot_status_set(&st->installed_timestamp, ts);
	slot_status_set(&st->installed_transaction, in->transaction);
	st->installed_count++;
	if (r2 < 0 && ret == 0)
		ret = abota_error_set(err, -ENOMEM, "out of memory");
	struct abota_error serr = { 0 };
	int sret = save_status(in, &serr);
	if (ret == 0 && sret < 0) {
		ret = sret;
		if (err)
			*err = serr;
	}
	return ret;
}

static int write_item_once(struct install *in, struct plan_item *it, struct abota_error *err);
static bool wants_resize(const struct plan_item *it);
static int resize_fs(struct install *in, const struct plan_item *it, const struct slot_device *dev,
		     struct abota_error *err);

/* --- adaptive updates --- */

/* The slot of class sclass in the booted group (the running system), or
 * NULL. */
static const struct slot *active_of_class(const struct install *in, const char *sclass)
{
	if (!in->booted)
		return NULL;
	const struct slot *root = slot_root(in->booted);
	for (size_t i = 0; i < in->cfg->nslots; i++) {
		const struct slot *s = &in->cfg->slots[i];
		if (strcmp(s->sclass, sclass) == 0 && slot_root(s) == root)
			return s;
	}
	return NULL;
}

struct image_fetch {
	struct bundle *b;
	const struct manifest_image *img;
};

static int image_fetch_cb(void *p, uint64_t off, void *buf, size_t len, struct abota_error *err)
{
	struct image_fetch *f = p;
	return bundle_read_image_at(f->b, f->img, off, buf, len, err);
}

struct adaptive_setup {
	struct adaptive *a;
	struct slot_device active;
	bool active_open;
	uint64_t active_len; /* bytes of it the index covers */
	char *index;
	unsigned hlen;
	struct image_fetch fetch;
};

static void adaptive_teardown(struct adaptive_setup *as)
{
	/* Indexing read the running slot (often whole): those pages, a second
	 * copy of what its file system caches by file, are dropped like the
	 * bundle's.  Its clean metadata blocks may go with them (they share
	 * the device's cache) and are read again when needed; dirty or busy
	 * ones stay.  The target's pages go with its read-back. */
	if (as->a && as->active_open)
		(void)posix_fadvise(as->active.fd, (off_t)as->active.offset, (off_t)as->active_len,
				    POSIX_FADV_DONTNEED);
	adaptive_free(as->a);
	if (as->active_open)
		slot_device_close(&as->active);
	free(as->index);
	memset(as, 0, sizeof(*as));
}

/* What a slot held whole before this install touched it (status ok, with
 * its image's SHA-256 and size), for the block index kept of it; sha256 is
 * empty when the status says nothing of the kind. */
struct slot_content {
	char sha256[65];
	uint64_t size;
};

static void slot_content_of(const struct install *in, const char *slot, struct slot_content *c)
{
	const struct slot_status *st = in->status ? slot_status_find(in->status, slot) : NULL;
	memset(c, 0, sizeof(*c));
	if (st && st->status && strcmp(st->status, "ok") == 0 && st->sha256 &&
	    strlen(st->sha256) == 64 && st->has_size) {
		memcpy(c->sha256, st->sha256, 65);
		c->size = st->size;
	}
}

/* The block index kept for a slot's content, if any (adaptive_cache.h). */
static void kept_index(const struct install *in, const char *slot, const struct slot_content *c,
		       struct adaptive_index *idx, struct adaptive_src *src)
{
	if (!in->cfg->data_directory || !c->sha256[0] ||
	    adaptive_cache_load(in->cfg->data_directory, slot, c->sha256, c->size, idx, NULL) < 0)
		return;
	src->hashes = idx->hashes;
	src->hashes_len = idx->hash_len;
	src->n_hashes = idx->n;
}

/* Keeps the index of a source adaptive_new() read whole, for the next update. */
static void keep_read_index(const struct install *in, const struct adaptive *a, size_t i,
			    const char *slot, const struct slot_content *c)
{
	struct adaptive_index idx = { 0 };
	struct abota_error e = { 0 };
	if (!in->cfg->data_directory || !c->sha256[0] || c->size == 0 || c->size % ADAPTIVE_BLOCK ||
	    adaptive_src_index(a, i, &idx) < 0)
		return;
	if (idx.n >= c->size / ADAPTIVE_BLOCK) {
		idx.n = c->size / ADAPTIVE_BLOCK; /* the image; the rest of the slot is not its */
		if (adaptive_cache_store(in->cfg->data_directory, slot, c->sha256, &idx, &e) < 0)
			log_warning("%s", e.msg);
	}
	adaptive_index_free(&idx);
}

/* Sets up block reuse for an adaptive image: the bundle's index, the
 * active slot of the same class and the target's old content (tgt_old:
 * what the target held whole before).  Any problem only costs the
 * savings: a warning, then a full copy (as RAUC does).  A slot whose block
 * index is kept in the data directory is not read to index it. */
static void adaptive_setup(struct install *in, const struct plan_item *it,
			   const struct slot_device *target, const struct slot_content *tgt_old,
			   struct adaptive_setup *as)
{
	struct abota_error e = { 0 };
	char name[600];
	size_t len = 0;
	memset(as, 0, sizeof(*as));
	if (!it->img->adaptive_block_hash_index || it->no_adaptive)
		return;
	uint64_t nblocks = it->img->size / ADAPTIVE_BLOCK;
	/* abota's compact index if the bundle has it (a quarter of the bytes
	 * to download), else RAUC's */
	unsigned hlen = 8;
	snprintf(name, sizeof(name), "%s%s", it->img->filename, BUNDLE_COMPACT_INDEX_SUFFIX);
	int ret = squashfs_reader_read_file(bundle_squashfs(in->bundle), name,
					    (size_t)(nblocks * hlen + 1), &as->index, &len, &e);
	if (ret == -ENOENT) {
		hlen = 32;
		e.msg[0] = '\0';
		snprintf(name, sizeof(name), "%s%s", it->img->filename, BUNDLE_INDEX_SUFFIX);
		ret = squashfs_reader_read_file(bundle_squashfs(in->bundle), name,
						(size_t)(nblocks * hlen + 1), &as->index, &len, &e);
	}
	struct adaptive_src src[2];
	struct adaptive_index kept[2] = { { 0 }, { 0 } };
	struct slot_content act_content = { { 0 }, 0 };
	size_t n = 0, i_act = SIZE_MAX;
	const struct slot *act = ret == 0 ? active_of_class(in, it->slot->sclass) : NULL;
	if (act && slot_device_open(in->cfg, act, O_RDONLY, &as->active, &e) == 0) {
		as->active_open = true;
		slot_content_of(in, act->name, &act_content);
		i_act = n;
		as->active_len = as->active.size < it->img->size ? as->active.size : it->img->size;
		src[n++] = (struct adaptive_src){ .fd = as->active.fd, .base = as->active.offset,
						  .size = as->active_len, .name = act->name };
		kept_index(in, act->name, &act_content, &kept[0], &src[i_act]);
	} else if (act) {
		log_warning("adaptive: active slot %s not readable (%s): not used", act->name, e.msg);
		e.msg[0] = '\0';
	}
	if (ret == 0) {
		src[n++] = (struct adaptive_src){ .fd = target->fd, .base = target->offset,
						  .size = target->size < it->img->size ? target->size
										: it->img->size,
						  .name = it->slot->name, .is_target = true };
		kept_index(in, it->slot->name, tgt_old, &kept[1], &src[n - 1]);
		as->hlen = hlen;
		as->fetch = (struct image_fetch){ .b = in->bundle, .img = it->img };
		ret = adaptive_new((const uint8_t *)as->index, len, hlen, it->img->size, src, n,
				   image_fetch_cb, &as->fetch, &as->a, &e);
	}
	/* The active slot read whole: its index kept for the updates to come (the
	 * target's old content is about to go). */
	if (ret == 0 && i_act != SIZE_MAX)
		keep_read_index(in, as->a, i_act, act->name, &act_content);
	if (ret == 0)
		adaptive_drop_src_indexes(as->a); /* 8 bytes a block of each slot read */
	adaptive_index_free(&kept[0]);
	adaptive_index_free(&kept[1]);
	if (ret < 0) {
		log_warning("adaptive update of %s not possible (%s): writing it whole",
			    it->img->filename, e.msg);
		adaptive_teardown(as);
	}
}

/* A resumed image whose end-to-end hash does not match (the bytes proven
 * before the interruption are not what the journal says -- a journal from
 * elsewhere, or a slot changed behind our back) is written again from the
 * start, in the same run, so a bad journal can never wedge the updates. */
static int write_item(struct install *in, struct plan_item *it, struct abota_error *err)
{
	struct journal_slot *js = it->journal;
	bool resumed = js && js->verified > 0 && js->verified < it->img->size;
	bool adaptive = it->img->adaptive_block_hash_index;
	uint64_t before = in->bytes_before;
	int ret = write_item_once(in, it, err);
	if (ret != -EBADMSG || !(resumed || adaptive))
		return ret;
	/* Likewise an adaptive image whose local blocks did not add up (a
	 * prefix collision of the compact index): written whole, as RAUC
	 * falls back to a full copy on any adaptive error. */
	it->no_adaptive = true;
	log_warning("%s; writing slot %s again from the start%s", err ? err->msg : "hash mismatch",
		    it->slot->name, adaptive ? " without adaptive reuse" : "");
	if (!js) {
		in->bytes_before = before;
		return write_item_once(in, it, err);
	}
	in->bytes_before = before;
	if (resumed) {
		in->res->resumed--;
		in->res->resumed_bytes -= js->verified;
	}
	install_journal_set_progress(js, 0, NULL);
	ret = install_journal_save(in->journal, in->journal_path, err);
	return ret < 0 ? ret : write_item_once(in, it, err);
}

/* What comes before writing an image: install-same's skip, an image an
 * interrupted run already wrote whole (kept), else the status pending.
 * *done: nothing more to do for this item. */
static int item_prologue(struct install *in, struct plan_item *it, struct slot_status **stp,
			 bool *done, struct abota_error *err)
{
	char ts[SLOT_STATUS_TIMESTAMP_LEN];
	struct slot_status *st = in->status ? slot_status_get(in->status, it->slot->name) : NULL;
	*stp = st;
	*done = true;
	if (in->status && !st)
		return abota_error_set(err, -ENOMEM, "out of memory");
	if (it->skip) {
		log_info("slot %s already holds %s (install-same=false): skipped", it->slot->name,
			 it->img->filename);
		/* skip comes from the slot status, so there is one; stay safe */
		if (st) {
			st->installed_count++;
			slot_status_timestamp_now(ts);
			slot_status_set(&st->installed_timestamp, ts);
			slot_status_set(&st->installed_transaction, in->transaction);
		}
		in->res->skipped++;
		return save_status(in, err);
	}
	struct journal_slot *js = it->journal;
	if (js && js->verified == it->img->size && wants_resize(it)) {
		/* Written whole, but then resized: a cut may have stopped
		 * resize2fs halfway, and nothing tells how far it came. */
		log_info("slot %s: %s was written before the interruption, but its file system may have been cut while resized (resize=true): writing it again",
			 it->slot->name, it->img->filename);
		install_journal_set_progress(js, 0, NULL);
	}
	/* (an emptyfs image has no bytes: never "written whole" before) */
	if (js && it->img->size > 0 && js->verified == it->img->size) {
		/* An interrupted run wrote, verified and checked this one whole. */
		log_info("slot %s: %s was written and verified before the interruption: kept",
			 it->slot->name, it->img->filename);
		in->bytes_before += it->img->size;
		if (st) {
			slot_status_set(&st->status, "ok");
			slot_status_set(&st->sha256, it->img->sha256);
			st->size = it->img->size;
			st->has_size = true;
		}
		in->res->written++;
		in->res->resumed++;
		in->res->resumed_bytes += it->img->size;
		return save_status(in, err);
	}
	*done = false;
	if (st) {
		/* pending, without checksum: never mistaken for a complete image */
		slot_status_set(&st->status, "pending");
		slot_status_set(&st->sha256, NULL);
		st->has_size = false;
		return save_status(in, err);
	}
	return 0;
}

/* After writing an image (ret: the write's result): the journal says the
 * slot is done, the status ok or failed. */
static int item_epilogue(struct install *in, struct plan_item *it, struct slot_status *st, int ret,
			 struct abota_error *err)
{
	if (ret == 0 && it->journal) {
		install_journal_set_progress(it->journal, it->img->size, NULL);
		ret = install_journal_save(in->journal, in->journal_path, err);
	}
	if (st)
		ret = record_result(in, st, it->img, ret, err);
	if (ret < 0)
		abota_error_prefix(err, "slot %s", it->slot->name);
	else
		in->res->written++;
	return ret;
}

struct tar_feed {
	struct bundle *b;
	const struct manifest_image *img;
	struct fs_image_pipe *pipe;
};

static int tar_sink(void *ctx, const void *buf, size_t len, struct abota_error *err)
{
	struct tar_feed *f = ctx;
	return fs_image_pipe_write(f->pipe, buf, len, err);
}

/* The verified image into tar's pipe: all of it is read, so it is hashed
 * and checked whole even when tar stops reading before the end. */
static int tar_feed(void *ctx, struct fs_image_pipe *p, struct abota_error *err)
{
	struct tar_feed *f = ctx;
	f->pipe = p;
	return bundle_stream_image(f->b, f->img, tar_sink, f, err);
}

/* RAUC's tar and emptyfs images (fs_image.h): a new file system, filled from
 * the verified archive.  No resume inside: an interrupted one starts over. */
static int write_fs_item(struct install *in, struct plan_item *it, struct abota_error *err)
{
	struct slot_status *st;
	bool done;
	int ret = item_prologue(in, it, &st, &done, err);
	if (ret < 0 || done)
		return ret;
	struct slot_device dev;
	ret = slot_device_open(in->cfg, it->slot, O_RDWR, &dev, err);
	if (ret < 0)
		return ret;
	const char *itype = manifest_image_type(it->img);
	log_info("writing %s (%s) to slot %s (%s)", it->img->filename ? it->img->filename : "",
		 itype, it->slot->name, dev.desc ? dev.desc : "");
	progress(in, in->bytes_total ? (unsigned)(10 + in->bytes_before * 85 / in->bytes_total) : 50,
		 it->slot->name, 0, it->img->size);
	struct tar_feed f = { .b = in->bundle, .img = it->img };
	ret = fs_image_write(in->cfg, it->slot, &dev, itype, it->img->filename, tar_feed, &f, err);
	slot_device_close(&dev);
	in->bytes_before += it->img->size;
	return item_epilogue(in, it, st, ret, err);
}

static int write_item_once(struct install *in, struct plan_item *it, struct abota_error *err)
{
	struct slot_status *st;
	bool done;
	/* what the target holds before the prologue marks it pending */
	struct slot_content tgt_old;
	slot_content_of(in, it->slot->name, &tgt_old);
	int ret = item_prologue(in, it, &st, &done, err);
	if (ret < 0 || done)
		return ret;
	struct journal_slot *js = it->journal;
	struct slot_device dev;
	ret = slot_device_open(in->cfg, it->slot, O_RDWR, &dev, err);
	if (ret < 0)
		return ret;
	struct write_ctx w = { .in = in, .journal = js, .slot = it->slot->name,
			       .total = it->img->size };
	struct bundle_stream_opts so = { 0 };
	struct digest_sha256_ctx *hash = NULL;
	if (digest_sha256_new(&hash) < 0) {
		slot_device_close(&dev);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	if (js && js->verified > 0 && digest_sha256_restore(hash, &js->hash) == 0) {
		w.start = so.start = js->verified;
		log_info("resuming %s in slot %s at %llu of %llu bytes (%u%%): the bytes before were written and verified before the interruption",
			 it->img->filename, it->slot->name, (unsigned long long)js->verified,
			 (unsigned long long)it->img->size,
			 (unsigned)(js->verified * 100 / it->img->size));
		in->res->resumed++;
		in->res->resumed_bytes += js->verified;
	} else {
		log_info("writing %s to slot %s (%s)", it->img->filename, it->slot->name,
			 dev.desc ? dev.desc : "");
	}
	so.hash = hash;
	struct adaptive_setup as;
	adaptive_setup(in, it, &dev, &tgt_old, &as);
	if (as.a) {
		so.want = adaptive_want;
		so.want_ctx = as.a;
		so.fill = adaptive_fill;
		so.fill_ctx = as.a;
	}
	in->bytes_before += w.start;
	uint64_t resumed_at = w.start;
	struct slot_writer_opts wo = { .label = it->slot->name, .start = w.start, .hash = hash,
				       .checkpoint = write_checkpoint, .checkpoint_ctx = &w,
				       .progress = write_progress, .progress_ctx = &w,
				       .in_place = as.a ? adaptive_in_place : NULL,
				       .in_place_ctx = as.a };
	struct slot_writer *sw = NULL;
	uint64_t in_place = 0;
	ret = slot_writer_start(&dev, &wo, &sw, err);
	if (ret == 0) {
		ret = bundle_stream_image_ex(in->bundle, it->img, &so, slot_writer_write, sw, err);
		in_place = slot_writer_in_place(sw);
		if (ret == 0 && slot_writer_offset(sw) != it->img->size)
			ret = abota_error_set(err, -EIO, "wrote %llu bytes, expected %llu",
					      (unsigned long long)slot_writer_offset(sw),
					      (unsigned long long)it->img->size);
		int fret = slot_writer_finish(sw, ret == 0, ret == 0 ? err : NULL);
		if (ret == 0)
			ret = fret;
	}
	if (as.a) {
		struct adaptive_stats ast;
		adaptive_get_stats(as.a, &ast);
		log_info("adaptive: %s: %llu of %llu blocks copied from the active slot, %llu kept in the target, %llu zero, %llu stale; %llu image bytes read from the bundle; %llu bytes in place, not written; slots indexed from their kept index: %u, by reading them: %u",
			 it->img->filename, (unsigned long long)ast.from_active,
			 (unsigned long long)ast.blocks, (unsigned long long)ast.from_target,
			 (unsigned long long)ast.zero, (unsigned long long)ast.stale,
			 (unsigned long long)ast.wanted_bytes, (unsigned long long)in_place,
			 ast.srcs_known, ast.srcs_read);
		in->res->adaptive_reused_bytes +=
			(ast.from_active + ast.from_target + ast.zero) * ADAPTIVE_BLOCK;
		in->res->adaptive++;
	}
	/* The slot now holds the image the bundle's index describes: kept for the
	 * next update, which then reads neither slot.  (Not after a resize, which
	 * rewrites file system metadata; a bank fix-up changes a few blocks, which
	 * the next update finds stale and takes from its bundle.) */
	if (ret == 0 && as.a && !wants_resize(it) && in->cfg->data_directory) {
		struct adaptive_index idx = { .hashes = (uint8_t *)as.index, .hash_len = as.hlen,
					      .n = it->img->size / ADAPTIVE_BLOCK };
		struct abota_error e = { 0 };
		if (adaptive_cache_store(in->cfg->data_directory, it->slot->name, it->img->sha256,
					 &idx, &e) < 0)
			log_warning("%s", e.msg);
	}
	adaptive_teardown(&as);
	if (ret == 0)
		ret = resize_fs(in, it, &dev, err);
	slot_device_close(&dev);
	digest_sha256_free(hash);
	in->bytes_before += it->img->size - resumed_at;
	return item_epilogue(in, it, st, ret, err);
}

/* --- resume journal --- */

/* Reads the journal an interrupted install left, once, right after the
 * bundle is open (a broken one is only warned about: the install starts
 * over). */
static int journal_load(struct install *in, struct abota_error *err)
{
	if (!in->cfg->data_directory) {
		log_debug("no data-directory: an interrupted install cannot be resumed");
		return 0;
	}
	if (asprintf(&in->journal_path, "%s/%s", in->cfg->data_directory, INSTALL_JOURNAL_NAME) < 0) {
		in->journal_path = NULL;
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	struct abota_error e = { 0 };
	int ret = install_journal_load(in->journal_path, &in->old_journal, &e);
	if (ret < 0 && ret != -ENOENT)
		log_warning("ignoring the resume journal: %s", e.msg);
	return 0;
}

/* Will this install resume an interrupted one (a journal of the same
 * bundle with progress)?  A quick look before the plan exists;
 * journal_prepare() decides for real. */
static bool journal_resumes(const struct install *in)
{
	const struct install_journal *j = in->old_journal;
	uint64_t v, t;
	if (!j)
		return false;
	install_journal_totals(j, &v, &t);
	return strcmp(j->bundle_hash, bundle_manifest_hash(in->bundle)) == 0 && v > 0;
}

/* Loads the journal of an interrupted install.  Ours -- same bundle (by
 * manifest hash), same target group, same image per slot -- means resume;
 * anything else is discarded: the new journal replaces it before the first
 * byte is written to a slot. */
static int journal_prepare(struct install *in, struct abota_error *err)
{
	if (!in->journal_path)
		return 0; /* no data-directory */
	const struct manifest *m = bundle_get_manifest(in->bundle);
	const char *hash = bundle_manifest_hash(in->bundle);
	struct install_journal *old = in->old_journal;
	int ret;
	in->old_journal = NULL;
	bool same = old && strcmp(old->bundle_hash, hash) == 0 &&
		    strcmp(old->target, in->target_name) == 0;
	if (old && !same) {
		uint64_t v, t;
		install_journal_totals(old, &v, &t);
		log_warning("discarding the resume journal of an interrupted install of %s into %s (%llu of %llu bytes): this is a different bundle or target",
			 old->bundle, old->target, (unsigned long long)v, (unsigned long long)t);
	}
	if (same) {
		in->journal = old;
		old = NULL;
	} else {
		ret = install_journal_new(hash, in->opts->bundle, m->version, in->target_name,
					  in->transaction, &in->journal, err);
		if (ret < 0)
			goto out;
	}
	ret = 0;
	for (size_t p = 0; p < in->n_plan; p++) {
		struct plan_item *it = &in->plan[p];
		/* an image without a file (emptyfs, an install hook's own
		 * content) has no bytes to resume: it is simply done again */
		if (it->skip || !it->img->filename)
			continue;
		struct journal_slot *js = install_journal_find(in->journal, it->slot->name);
		if (js && (strcmp(js->image, it->img->filename) != 0 ||
			   strcmp(js->sha256, it->img->sha256) != 0 || js->size != it->img->size))
			install_journal_set_progress(js, 0, NULL); /* not this image: start over */
		if (!js)
			js = install_journal_add_slot(in->journal, it->slot->name, it->img->filename,
						      it->img->sha256, it->img->size);
		if (!js) {
			ret = abota_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
	/* Only now: adding a slot may move the array. */
	for (size_t p = 0; p < in->n_plan; p++)
		if (!in->plan[p].skip && in->plan[p].img->filename)
			in->plan[p].journal = install_journal_find(in->journal, in->plan[p].slot->name);
	if (same) {
		uint64_t v, t;
		install_journal_totals(in->journal, &v, &t);
		log_info("resuming the interrupted install of %s (transaction %s): %llu of %llu bytes already written and verified",
			 in->journal->bundle, in->journal->transaction, (unsigned long long)v,
			 (unsigned long long)t);
		/* one transaction across the interruption */
		snprintf(in->transaction, sizeof(in->transaction), "%s", in->journal->transaction);
		memcpy(in->res->transaction, in->transaction, sizeof(in->res->transaction));
	}
out:
	install_journal_free(old);
	return ret;
}


/* --- slot hooks (manifest [image.*] hooks=pre-install;post-install or install) --- */

static int hook_exec_path(const struct install *in, char *buf, size_t n)
{
	const char *name = bundle_get_manifest(in->bundle)->hooks_filename;
	if (!in->hook_dir || !name)
		return -ENOENT;
	return snprintf(buf, n, "%s/%s", in->hook_dir, name) < (int)n ? 0 : -ENAMETOOLONG;
}

/* resize=true: an ext4 image written into an ext4 slot grows to the slot
 * (RAUC runs resize2fs there too; other types ignore the key, as RAUC). */
static bool wants_resize(const struct plan_item *it)
{
	return slot_resize_wanted(it->slot, manifest_image_type(it->img));
}

/* After the image is written and read back.  Its result counts as the
 * write's: a slot that cannot be resized is recorded failed and the boot is
 * not switched. */
static int resize_fs(struct install *in, const struct plan_item *it, const struct slot_device *dev,
		     struct abota_error *err)
{
	if (!wants_resize(it))
		return 0;
	progress(in, in->bytes_total ? (unsigned)(10 + in->bytes_before * 85 / in->bytes_total) : 95,
		 "Resizing file system", 0, 0);
	return slot_resize(dev, err);
}

/* slot-pre-install / slot-post-install; for post-install a slot holding a
 * mountable file system is mounted at <mountprefix>/<slot> for the hook. */
static int run_slot_hook(struct install *in, const struct plan_item *it, const char *which,
			 struct abota_error *err)
{
	char path[4352];
	if (hook_exec_path(in, path, sizeof(path)) < 0)
		return abota_error_set(err, -ENOENT, "slot %s: no hook file", it->slot->name);
	struct slot_device dev;
	struct slot_mount mnt = { .loop_fd = -1 }, loop = { .loop_fd = -1 };
	const char *device = "";
	int ret = slot_device_open(in->cfg, it->slot, O_RDWR, &dev, err);
	if (ret < 0)
		return ret;
	bool mount = strcmp(which, "slot-post-install") == 0 &&
		     slot_mount_type_supported(it->slot->type);
	if (mount)
		ret = slot_mount(in->cfg, it->slot, &dev, it->slot->type, &mnt, err);
	if (ret == 0)
		ret = slot_mount_device(&dev, &loop, &device, err);
	if (ret == 0) {
		struct slot_hook h = { .it = it, .mount_point = mnt.mount_point ? mnt.mount_point : "",
				       .image_path = "", .device = device };
		char *argv[] = { path, (char *)which, NULL };
		int code = run_program(in, "slot hook", argv, &h, err);
		if (code > 0)
			ret = abota_error_set(err, -ECANCELED, "%s hook for slot %s failed with exit code %d",
					      which, it->slot->name, code);
		else
			ret = code;
	}
	struct abota_error uerr = { 0 };
	int uret = slot_umount(&mnt, &uerr);
	slot_umount(&loop, NULL);
	slot_device_close(&dev);
	if (ret == 0 && uret < 0) {
		ret = uret;
		if (err)
			*err = uerr;
	}
	return ret;
}

static int fd_sink(void *ctx, const void *buf, size_t len, struct abota_error *err)
{
	int ret = fileio_write_full(*(int *)ctx, buf, len, err);
	if (ret == -EPIPE)
		abota_error_set(err, ret, "the install hook stopped reading the image");
	return ret;
}

/* slot-install: the hook writes the slot itself.  The image is handed over
 * as a FIFO (RAUC_IMAGE_NAME): the bundle is not mounted, and a copy would
 * need free space for the whole image.  What goes into the FIFO is the
 * verified image, checked against the manifest's SHA-256 as it streams; a
 * hook that needs to seek in the image cannot use it. */
static int run_install_hook(struct install *in, const struct plan_item *it, struct abota_error *err)
{
	char path[4352], fifo[4352] = "";
	if (hook_exec_path(in, path, sizeof(path)) < 0)
		return abota_error_set(err, -ENOENT, "slot %s: no hook file", it->slot->name);
	struct slot_device dev;
	struct slot_mount loop = { .loop_fd = -1 };
	const char *device = "";
	int ret = slot_device_open(in->cfg, it->slot, O_RDWR, &dev, err);
	if (ret < 0)
		return ret;
	ret = slot_mount_device(&dev, &loop, &device, err);
	if (ret == 0 && it->img->filename) {
		snprintf(fifo, sizeof(fifo), "%s/%s", in->hook_dir, it->img->filename);
		if (mkfifo(fifo, 0600) < 0) {
			ret = abota_error_set(err, -errno, "%s: %s", fifo, strerror(errno));
			fifo[0] = '\0';
		}
	}
	pid_t pid = -1;
	if (ret == 0) {
		struct slot_hook h = { .it = it, .mount_point = "", .image_path = fifo,
				       .device = device };
		char *argv[] = { path, "slot-install", NULL };
		pid = start_program(in, "slot hook", argv, &h, err);
		if (pid < 0)
			ret = (int)pid;
	}
	int sret = 0;
	struct abota_error serr = { 0 };
	bool read = false;
	if (ret == 0 && fifo[0]) {
		/* Wait for the hook to open the image (or to exit without). */
		int fd = -1;
		for (;;) {
			fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
			if (fd >= 0 || errno != ENXIO)
				break;
			int st;
			if (waitpid(pid, &st, WNOHANG) == pid) {
				/* exited without reading: reap it below */
				pid = -pid - 1;
				if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
					log_warning("the slot-install hook for %s did not read the image",
						    it->slot->name);
				ret = WIFEXITED(st) && WEXITSTATUS(st) == 0
					      ? 0
					      : abota_error_set(err, -ECANCELED,
								"slot-install hook for slot %s failed (status %d)",
								it->slot->name, st);
				break;
			}
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		if (fd >= 0) {
			read = true;
			fcntl(fd, F_SETFL, 0);
			/* A hook that stops reading must not kill us with SIGPIPE. */
			sigset_t pipe_set, old;
			sigemptyset(&pipe_set);
			sigaddset(&pipe_set, SIGPIPE);
			pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
			sret = bundle_stream_image(in->bundle, it->img, fd_sink, &fd, &serr);
			close(fd);
			struct timespec zero = { 0, 0 };
			while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
				;
			pthread_sigmask(SIG_SETMASK, &old, NULL);
		}
	}
	if (pid >= 0) {
		int code = wait_program(pid, "slot hook", path, err);
		if (code > 0)
			ret = abota_error_set(err, -ECANCELED,
					      "slot-install hook for slot %s failed with exit code %d",
					      it->slot->name, code);
		else if (code < 0)
			ret = code;
	}
	if (ret == 0 && read && sret < 0) {
		ret = sret;
		if (err)
			*err = serr;
	}
	if (fifo[0])
		unlink(fifo);
	slot_umount(&loop, NULL);
	slot_device_close(&dev);
	return ret;
}

/* One plan item with its hooks: slot-pre-install, the image (written, or
 * the slot-install hook), slot-post-install. */
static int install_item(struct install *in, struct plan_item *it, struct abota_error *err)
{
	const struct manifest_image *img = it->img;
	int ret = 0;
	if (!it->skip)
		event_log_emit(in->cfg, CONFIG_EVENT_WRITESLOT, NULL, NULL, 0, "Updating slot %s",
			       it->slot->name);
	if (img->hook_pre_install && !it->skip)
		ret = run_slot_hook(in, it, "slot-pre-install", err);
	if (ret < 0)
		goto fail;
	if (!img->hook_install || it->skip) {
		ret = fs_image_supported(manifest_image_type(img), it->slot->type)
			      ? write_fs_item(in, it, err)
			      : write_item(in, it, err);
		if (ret == 0 && img->hook_post_install && !it->skip)
			ret = run_slot_hook(in, it, "slot-post-install", err);
		return ret;
	}
	struct slot_status *st = in->status ? slot_status_get(in->status, it->slot->name) : NULL;
	if (st) {
		slot_status_set(&st->status, "pending");
		slot_status_set(&st->sha256, NULL);
		st->has_size = false;
		if ((ret = save_status(in, err)) < 0)
			goto fail;
	}
	progress(in, in->bytes_total ? (unsigned)(10 + in->bytes_before * 85 / in->bytes_total) : 50,
		 it->slot->name, 0, img->size);
	ret = run_install_hook(in, it, err);
	in->bytes_before += img->filename ? img->size : 0;
	if (st)
		ret = record_result(in, st, img, ret, err);
	if (ret < 0)
		goto fail;
	in->res->written++;
	if (it->journal) {
		install_journal_set_progress(it->journal, img->size, NULL);
		ret = install_journal_save(in->journal, in->journal_path, err);
	}
	return ret;
fail:
	abota_error_prefix(err, "slot %s", it->slot->name);
	return ret;
}

/* FWU boards: repeated updates without a plain reboot use up the trial
 * counter in FWU_INFO (only a boot of an accepted bank re-arms it); refuse
 * when too few trial boots are left, unless forced. */
static int check_trial_budget(struct install *in, struct abota_error *err)
{
	if (!in->target_root || !boot_fwu_is(in->backend))
		return 0;
	return boot_fwu_check_budget(in->backend, in->opts->force, err);
}

/* FWU boards: the new bank's kernel command line (bootfs extlinux.conf) and
 * mounts (rootfs fstab) must name that bank, as ST's post-install script
 * does by hand.  Only slots written (or found identical) in this run. */
static int apply_fixups(struct install *in, struct abota_error *err)
{
	if (!in->target_root || !boot_fwu_is(in->backend))
		return 0;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
	const struct slot **written = calloc(in->n_plan ? in->n_plan : 1, sizeof(*written));
	if (!written)
		return abota_error_set(err, -ENOMEM, "out of memory");
	for (size_t p = 0; p < in->n_plan; p++)
		written[p] = in->plan[p].slot;
	/* The board profile's rules replace the defaults when it has any. */
	const struct board *board = boot_fwu_board(in->backend);
	struct bank_fixup_rule rules[BOARD_MAX_FIXUPS + 1];
	const struct bank_fixup_rule *use = NULL;
	if (board && board->nfixups) {
		for (size_t i = 0; i < board->nfixups; i++)
			rules[i] = (struct bank_fixup_rule){
				.sclass = board->fixups[i].sclass,
				.path = board->fixups[i].path,
				.kind = board->fixups[i].cmdline ? BANK_FIXUP_CMDLINE : BANK_FIXUP_MOUNTS,
				.required = board->fixups[i].required,
			};
		rules[board->nfixups] = (struct bank_fixup_rule){ 0 };
		use = rules;
	}
	int ret = bank_fixup_group(in->cfg, NULL, use, in->target_root, written, in->n_plan, err);
	free(written);
	return ret;
}

int install_lock_take(const struct system_config *cfg, int *fd_out, struct abota_error *err)
{
	const char *dir = cfg->data_directory;
	char path[PATH_MAX];
	if (!dir)
		return 0;
	if (snprintf(path, sizeof(path), "%s/install.lock", dir) >= (int)sizeof(path))
		return abota_error_set(err, -ENAMETOOLONG, "%s: path too long", dir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return abota_error_set(err, -errno, "data directory %s: %s", dir, strerror(errno));
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		return abota_error_set(err, e == EWOULDBLOCK ? -EBUSY : -e,
				       "another installation is running (%s is locked)", path);
	}
	*fd_out = fd;
	return 0;
}

static void install_free(struct install *in)
{
	if (in->lock_fd >= 0)
		close(in->lock_fd);
	install_journal_free(in->journal);
	install_journal_free(in->old_journal);
	free(in->journal_path);
	remove_hook_dir(in);
	slot_status_store_free(in->status);
	free(in->plan);
	free(in->group);
	free(in->booted_id);
	boot_backend_close(in->backend);
	/* Whatever the outcome: what an install read of the bundle is not
	 * worth keeping in place of the running system's cached files (a
	 * retry checks the signature again, reading it anyway). */
	bundle_forget_cache(in->bundle);
	bundle_close(in->bundle);
	system_info_free(in->sysinfo);
	for (size_t i = 0; in->info_headers[i]; i++)
		free(in->info_headers[i]);
}

int install_run(struct system_config *cfg, const struct install_opts *opts,
		struct install_result *result, struct abota_error *err)
{
	struct install_result res = { 0 };
	struct install in = { .cfg = cfg, .opts = opts, .res = &res, .lock_fd = -1 };
	int ret;
	if (opts->transaction_id)
		snprintf(in.transaction, sizeof(in.transaction), "%s", opts->transaction_id);
	else
		install_new_transaction_id(in.transaction);
	memcpy(res.transaction, in.transaction, sizeof(res.transaction));

	progress(&in, 0, "Determining slot states", 0, 0);
	ret = install_lock_take(cfg, &in.lock_fd, err);
	if (ret < 0)
		goto out;
	in.locked = true;
	ret = system_info_load(cfg, NULL, &in.sysinfo, err);
	if (ret < 0)
		goto out;
	ret = boot_backend_open(cfg, &in.backend, err);
	if (ret < 0)
		goto out;
	ret = boot_backend_determine_states(in.backend, cfg, opts->override_boot_slot, NULL, NULL,
					    &in.booted_id, &in.booted, err);
	if (ret < 0)
		goto out;
	if (cfg->statusfile) {
		ret = slot_status_load(cfg->statusfile, &in.status, err);
		if (ret < 0)
			goto out;
		/* The boot id saved with the status tells a later `abota status`
		 * that the switch happened in this boot (a reboot is pending),
		 * not that the firmware fell back. */
		char boot_id[64];
		if (slot_status_read_boot_id(cfg->boot_id_file, boot_id, sizeof(boot_id)) == 0)
			slot_status_set_boot_id(in.status, boot_id);
	}

	progress(&in, 2, "Checking bundle", 0, 0);
	const struct sig_policy *pol = opts->keyring ? opts->keyring : &cfg->keyring;
	unsigned formats = 0;
	ret = bundle_formats_from_config(cfg->bundle_formats, &formats, err);
	if (ret < 0)
		goto out;
	struct http_opts http = opts->http ? *opts->http : (struct http_opts){ 0 };
	if (http_is_url(opts->bundle)) {
		ret = system_info_http_headers(cfg, in.sysinfo, in.transaction, in.info_headers,
					       sizeof(in.info_headers) / sizeof(in.info_headers[0]), err);
		if (ret < 0)
			goto out;
		http.info_headers = (const char *const *)in.info_headers;
	}
	struct bundle_open_opts bo = { .policy = pol,
				       .max_signature_size = cfg->max_bundle_signature_size,
				       .allowed_formats = formats,
				       .http = &http,
				       .sandbox_user = cfg->streaming.sandbox_user };
	ret = bundle_open(opts->bundle, &bo, &in.bundle, err);
	if (ret < 0)
		goto out;
	/* RAUC >= 1.14 refuses plain bundles here (specs/rauc-compat.md 2.4),
	 * and a deployment that pins manifest hashes should not behave
	 * differently on an abota device. */
	if (opts->require_manifest_hash && bundle_get_format(in.bundle) == BUNDLE_FORMAT_PLAIN) {
		ret = abota_error_set(err, -EPERM,
				      "--require-manifest-hash needs a verity bundle: this one is plain");
		goto out;
	}
	if (opts->require_manifest_hash &&
	    strcmp(opts->require_manifest_hash, bundle_manifest_hash(in.bundle)) != 0) {
		ret = abota_error_set(err, -EPERM, "manifest hash %s is not the required %s",
				      bundle_manifest_hash(in.bundle), opts->require_manifest_hash);
		goto out;
	}
	/* Local bundles are checked whole before anything is touched: a corrupt
	 * block must not be found halfway through writing a slot.  A streamed
	 * bundle is not downloaded twice for that: each block is checked as it
	 * arrives, the target is marked bad before writing, and the boot switch
	 * happens only after everything was written and verified.  Neither is
	 * a resumed install checked twice: its target is half-written already,
	 * and every block it still reads is checked as it is read.
	 * perform-pre-check=true (RAUC 1.10) asks for the whole check for a
	 * streamed bundle too: it is then downloaded twice, and a corrupt
	 * block fails the install before the target is touched. */
	ret = journal_load(&in, err);
	if (ret < 0)
		goto out;
	log_install_start(&in);
	if ((!http_is_url(opts->bundle) || cfg->perform_pre_check) && !journal_resumes(&in)) {
		progress(&in, 3, "Verifying bundle payload", 0, 0);
		ret = bundle_check_payload(in.bundle, err);
		if (ret < 0)
			goto out;
	}
	const struct manifest *m = bundle_get_manifest(in.bundle);
	if (m->handler_filename) {
		ret = abota_error_set(err, -ENOTSUP,
				      "bundles with a full custom [handler] are not supported yet");
		goto out;
	}
	if (m->hooks_filename || cfg->pre_install_handler || cfg->post_install_handler) {
		ret = extract_bundle_files(&in, err);
		if (ret < 0)
			goto out;
	}

	progress(&in, 4, "Determining target install group", 0, 0);
	ret = make_plan(&in, err);
	if (ret < 0)
		goto out;
	ret = run_handler(&in, "pre-install", cfg->pre_install_handler, err);
	if (ret < 0)
		goto out;
	ret = check_compatible(&in, err);
	if (ret == 0)
		ret = check_version(&in, err);
	if (ret < 0) {
		in.rejected = ret == -EPERM;
		goto out;
	}
	progress(&in, 6, "Checking slots", 0, 0);
	ret = precheck_slots(&in, err);
	if (ret < 0)
		goto out;
	ret = check_trial_budget(&in, err);
	if (ret < 0)
		goto out;
	in.target_name = in.target_root ? (in.target_root->bootname ? in.target_root->bootname
								    : in.target_root->name)
					: in.plan[0].slot->name;
	ret = journal_prepare(&in, err);
	if (ret < 0)
		goto out;

	/* From here on the device changes.  First make the target unbootable,
	 * so a power cut while writing leaves the running slot primary. */
	if (in.target_root) {
		progress(&in, 8, "Marking target slot bad", 0, 0);
		ret = boot_backend_set_state(in.backend, in.target_root, false, err);
		if (ret < 0)
			goto out;
		snprintf(res.target, sizeof(res.target), "%s",
			 in.target_root->bootname ? in.target_root->bootname : in.target_root->name);
	}
	/* The journal names this bundle before a slot changes, so a cut from
	 * here on resumes it (and an older journal is gone). */
	if (in.journal) {
		ret = install_journal_save(in.journal, in.journal_path, err);
		if (ret < 0)
			goto out;
	}
	for (size_t p = 0; p < in.n_plan; p++) {
		ret = install_item(&in, &in.plan[p], err);
		if (ret < 0)
			goto out;
	}
	ret = apply_fixups(&in, err);
	if (ret < 0)
		goto out;
	if (in.target_root && cfg->activate_installed) {
		progress(&in, 97, "Activating the installed slot", 0, 0);
		ret = boot_backend_set_primary(in.backend, in.target_root, err);
		if (ret < 0)
			goto out;
		res.activated = true;
		if (in.status) {
			ret = slot_status_mark_activated(in.status, in.target_root->name, err);
			if (ret == 0)
				ret = save_status(&in, err);
			if (ret < 0)
				goto out;
		}
	}
	/* Complete: nothing left to resume.  (A cut before this leaves a
	 * journal whose every slot is done; running the install again only
	 * redoes the fix-ups and the boot switch.) */
	if (in.journal_path) {
		ret = install_journal_remove(in.journal_path, err);
		if (ret < 0)
			goto out;
	}
	ret = run_handler(&in, "post-install", cfg->post_install_handler, err);
	if (ret < 0)
		goto out;
	progress(&in, 100, "Installing done", 0, 0);
	if (result)
		*result = res;
out:
	/* Not for a second install that found the lock taken: the first one
	 * is the one whose outcome will be logged. */
	if (in.locked)
		log_install_done(&in, ret, err);
	install_free(&in);
	return ret;
}
