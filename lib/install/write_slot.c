/* write_slot.c - write one local image into one slot (abota write-slot). */
#include "abota/write_slot.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abota/boot_backend.h"
#include "abota/event_log.h"
#include "abota/fileio.h"
#include "abota/fs_image.h"
#include "abota/install_journal.h"
#include "abota/log.h"
#include "abota/manifest.h"
#include "abota/slot_device.h"
#include "abota/slot_resize.h"
#include "abota/slot_status.h"
#include "abota/slot_writer.h"

/* Read size: the writer tells zeros from data per call, so a run of zeros
 * shorter than this is written as data. */
#define WS_BUF (256u << 10)

struct ws {
	struct system_config *cfg;
	const struct write_slot_opts *o;
	const struct slot *slot;
	const char *type;
	int img_fd;
	uint64_t img_size;
	int lock_fd;
	struct boot_backend *backend;
	char *booted_id;
	struct slot_status_store *status;
	struct slot_device dev;
	bool dev_open;
	uint8_t *buf;
};

static void ws_progress(const struct ws *w, unsigned pct, const char *msg, uint64_t done)
{
	if (!w->o->progress)
		return;
	struct install_progress p = { .percent = pct, .message = msg, .depth = 1,
				      .bytes_done = done, .bytes_total = w->img_size };
	w->o->progress(w->o->progress_ctx, &p);
}

static void on_write_progress(void *ctx, uint64_t off)
{
	const struct ws *w = ctx;
	unsigned pct = w->img_size ? (unsigned)(10 + off * 85 / w->img_size) : 95;
	ws_progress(w, pct, w->slot->name, off);
}

/* "rootfs.0 (ext4), rootfs.1 (ext4)" for the unknown-slot message. */
static void list_slots(const struct system_config *cfg, char *buf, size_t cap)
{
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < cfg->nslots && n < cap; i++) {
		int r = snprintf(buf + n, cap - n, "%s%s (%s)", i ? ", " : "", cfg->slots[i].name,
				 cfg->slots[i].type);
		if (r < 0)
			break;
		n += (size_t)r;
	}
}

static int open_image(struct ws *w, struct abota_error *err)
{
	const char *path = w->o->image;
	w->img_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (w->img_fd < 0)
		return abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(w->img_fd, &st) < 0)
		return abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
	if (S_ISREG(st.st_mode)) {
		w->img_size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(w->img_fd, BLKGETSIZE64, &w->img_size) < 0)
			return abota_error_set(err, -errno, "%s: BLKGETSIZE64: %s", path,
					       strerror(errno));
	} else {
		return abota_error_set(err, -EINVAL, "%s: not a regular file or block device", path);
	}
	if (w->img_size == 0)
		return abota_error_set(err, -EINVAL, "%s: the image is empty", path);
	return 0;
}

/* The type from --image-type or, as RAUC, from the file name; it must be
 * one the writer copies raw into this slot's type. */
static int check_type(struct ws *w, struct abota_error *err)
{
	w->type = w->o->image_type;
	if (!w->type) {
		char tmp[PATH_MAX];
		snprintf(tmp, sizeof(tmp), "%s", w->o->image);
		struct manifest_image img = { .filename = basename(tmp) };
		w->type = manifest_image_type(&img);
		if (!w->type)
			return abota_error_set(err, -EINVAL,
					       "cannot tell the image type of '%s' from its name (*.img, *.ext4, *.vfat, *.squashfs ...); use --image-type",
					       w->o->image);
	}
	if (!slot_writer_can_write(w->type, w->slot->type) &&
	    !fs_image_supported(w->type, w->slot->type))
		return abota_error_set(err, -EINVAL,
				       "an image of type '%s' cannot be written into slot %s of type '%s' (abota writes raw, ext4, vfat and squashfs images into slots of the same type or raw, and tar archives into ext4 slots)",
				       w->type, w->slot->name, w->slot->type);
	return 0;
}

/* Never the running system: the booted slot's whole group (its root and
 * every slot under that root). */
static int check_not_booted(struct ws *w, const struct slot *booted, struct abota_error *err)
{
	if (!booted)
		return abota_error_set(err, -ENOENT,
				       "cannot tell which slot is booted, so slot %s may belong to the running system (use --override-boot-slot)",
				       w->slot->name);
	const struct slot *root = slot_root(booted);
	if (slot_root(w->slot) == root)
		return abota_error_set(err, -EBUSY,
				       "slot %s belongs to the booted slot group %s: refusing to overwrite the running system",
				       w->slot->name, root->bootname ? root->bootname : root->name);
	return 0;
}

/* An interrupted install that already wrote part of this slot would resume
 * from a hash state that no longer describes it: drop its journal (the
 * install then starts over; its other slots are rewritten, which is safe). */
static int drop_journal(struct ws *w, struct abota_error *err)
{
	char path[PATH_MAX];
	if (!w->cfg->data_directory)
		return 0;
	if (snprintf(path, sizeof(path), "%s/%s", w->cfg->data_directory, INSTALL_JOURNAL_NAME) >=
	    (int)sizeof(path))
		return abota_error_set(err, -ENAMETOOLONG, "%s: path too long",
				       w->cfg->data_directory);
	struct install_journal *j = NULL;
	struct abota_error e = { 0 };
	if (install_journal_load(path, &j, &e) < 0)
		return 0; /* none, or one an install ignores anyway */
	bool names = install_journal_find(j, w->slot->name) != NULL;
	install_journal_free(j);
	if (!names)
		return 0;
	log_warning("the interrupted installation recorded in %s wrote to slot %s: its resume journal is dropped, that installation will start over",
		    path, w->slot->name);
	return install_journal_remove(path, err);
}

/* Reads the image in pieces, hashing each, and hands each to fn.  The
 * image is read once: what was read is dropped from the page cache every
 * few MiB (always from the start: the kernel drops a large folio only
 * whole), instead of staying there in place of the running system's own
 * files. */
#define WS_FORGET_STEP (8u << 20)

static int read_image(struct ws *w, struct digest_sha256_ctx *hash,
		      int (*fn)(void *ctx, const uint8_t *buf, size_t len, struct abota_error *err),
		      void *ctx, struct abota_error *err)
{
	int ret = 0;
	uint64_t forgot = 0;
	for (uint64_t off = 0; ret == 0 && off < w->img_size;) {
		size_t n = WS_BUF;
		if (n > w->img_size - off)
			n = (size_t)(w->img_size - off);
		ret = fileio_pread_full(w->img_fd, w->buf, n, off, err);
		if (ret < 0) {
			abota_error_prefix(err, "%s", w->o->image);
			break;
		}
		digest_sha256_update(hash, w->buf, n);
		ret = fn(ctx, w->buf, n, err);
		off += n;
		if (off - forgot >= WS_FORGET_STEP || off == w->img_size) {
			(void)posix_fadvise(w->img_fd, 0, (off_t)off, POSIX_FADV_DONTNEED);
			forgot = off;
		}
	}
	return ret;
}

static int to_writer(void *ctx, const uint8_t *buf, size_t len, struct abota_error *err)
{
	return slot_writer_write(ctx, buf, len, err);
}

static int copy_image(struct ws *w, struct digest_sha256_ctx *hash, struct abota_error *err)
{
	struct slot_writer_opts wo = { .label = w->slot->name, .progress = on_write_progress,
				       .progress_ctx = w };
	struct slot_writer *sw = NULL;
	int ret = slot_writer_start(&w->dev, &wo, &sw, err);
	if (ret < 0)
		return ret;
	ret = read_image(w, hash, to_writer, sw, err);
	int fret = slot_writer_finish(sw, ret == 0, ret == 0 ? err : NULL);
	return ret < 0 ? ret : fret;
}

struct archive_feed {
	struct ws *w;
	struct digest_sha256_ctx *hash;
	struct fs_image_pipe *pipe;
	uint64_t done;
};

static int to_tar(void *ctx, const uint8_t *buf, size_t len, struct abota_error *err)
{
	struct archive_feed *f = ctx;
	f->done += len;
	on_write_progress(f->w, f->done);
	return fs_image_pipe_write(f->pipe, buf, len, err);
}

/* Hands the image file to tar (fs_image.h) through its pipe, hashing all of
 * it even when tar stops reading before the end. */
static int archive_feed(void *ctx, struct fs_image_pipe *p, struct abota_error *err)
{
	struct archive_feed *f = ctx;
	f->pipe = p;
	return read_image(f->w, f->hash, to_tar, f, err);
}

/* The slot's status: pending before the write, ok (with the image's hash)
 * or failed after. */
static int record(struct ws *w, const char *state, const char *sha256, struct abota_error *err)
{
	if (!w->status)
		return 0;
	struct slot_status *st = slot_status_get(w->status, w->slot->name);
	if (!st)
		return abota_error_set(err, -ENOMEM, "out of memory");
	int r = slot_status_set(&st->status, state);
	r |= slot_status_set(&st->sha256, sha256);
	st->has_size = sha256 != NULL;
	st->size = sha256 ? w->img_size : 0;
	if (strcmp(state, "pending") != 0) {
		/* not from a bundle: no bundle.* keys that would claim one */
		r |= slot_status_set(&st->bundle_compatible, NULL);
		r |= slot_status_set(&st->bundle_version, NULL);
		r |= slot_status_set(&st->bundle_description, NULL);
		r |= slot_status_set(&st->bundle_build, NULL);
		r |= slot_status_set(&st->bundle_hash, NULL);
		char ts[SLOT_STATUS_TIMESTAMP_LEN], tid[37];
		slot_status_timestamp_now(ts);
		install_new_transaction_id(tid);
		r |= slot_status_set(&st->installed_timestamp, ts);
		r |= slot_status_set(&st->installed_transaction, tid);
		st->installed_count++;
	}
	if (r < 0)
		return abota_error_set(err, -ENOMEM, "out of memory");
	return slot_status_save(w->status, err);
}

static void ws_free(struct ws *w)
{
	free(w->buf);
	if (w->dev_open)
		slot_device_close(&w->dev);
	slot_status_store_free(w->status);
	free(w->booted_id);
	boot_backend_close(w->backend);
	if (w->lock_fd >= 0)
		close(w->lock_fd);
	if (w->img_fd >= 0)
		close(w->img_fd);
}

int write_slot_run(struct system_config *cfg, const struct write_slot_opts *opts,
		   struct write_slot_result *result, struct abota_error *err)
{
	struct ws w = { .cfg = cfg, .o = opts, .img_fd = -1, .lock_fd = -1 };
	struct write_slot_result res = { 0 };
	struct digest_sha256_ctx *hash = NULL;
	bool pending = false;
	int ret;

	ws_progress(&w, 0, "Checking slot", 0);
	w.slot = slot_find(cfg, opts->slot);
	if (!w.slot) {
		char names[1024];
		list_slots(cfg, names, sizeof(names));
		ret = abota_error_set(err, -ENOENT, "no slot named '%s' in %s (slots: %s)", opts->slot,
				      cfg->path ? cfg->path : "system.conf", names);
		goto out;
	}
	if (w.slot->readonly) {
		ret = abota_error_set(err, -EROFS, "slot %s is read-only (readonly=true)",
				      w.slot->name);
		goto out;
	}
	ret = open_image(&w, err);
	if (ret == 0)
		ret = check_type(&w, err);
	if (ret == 0)
		ret = install_lock_take(cfg, &w.lock_fd, err);
	if (ret < 0)
		goto out;
	struct slot *booted = NULL;
	ret = boot_backend_open(cfg, &w.backend, err);
	if (ret == 0)
		ret = boot_backend_determine_states(w.backend, cfg, opts->override_boot_slot, NULL,
						    NULL, &w.booted_id, &booted, err);
	if (ret == 0)
		ret = check_not_booted(&w, booted, err);
	if (ret < 0)
		goto out;
	ret = slot_device_open(cfg, w.slot, O_RDWR, &w.dev, err);
	if (ret < 0)
		goto out;
	w.dev_open = true;
	if (!w.slot->allow_mounted) {
		ret = slot_device_check_unmounted(w.slot, &w.dev, err);
		if (ret < 0)
			goto out;
	}
	if (w.img_size > w.dev.size) {
		ret = abota_error_set(err, -ENOSPC,
				      "slot %s is too small for %s (%llu bytes > %llu)", w.slot->name,
				      opts->image, (unsigned long long)w.img_size,
				      (unsigned long long)w.dev.size);
		goto out;
	}
	if (cfg->statusfile) {
		ret = slot_status_load(cfg->statusfile, &w.status, err);
		if (ret < 0)
			goto out;
	}
	w.buf = fileio_buffer_alloc(WS_BUF);
	if (!w.buf || digest_sha256_new(&hash) < 0) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}

	/* From here on the device changes. */
	ret = drop_journal(&w, err);
	if (ret < 0)
		goto out;
	const struct slot *root = slot_root(w.slot);
	if (root->bootname) {
		ws_progress(&w, 5, "Marking slot group bad", 0);
		ret = boot_backend_set_state(w.backend, root, false, err);
		if (ret < 0)
			goto out;
		snprintf(res.marked_bad, sizeof(res.marked_bad), "%s", root->bootname);
		snprintf(res.root_slot, sizeof(res.root_slot), "%s", root->name);
	}
	ret = record(&w, "pending", NULL, err);
	if (ret < 0)
		goto out;
	pending = true;
	event_log_emit(cfg, CONFIG_EVENT_WRITESLOT, NULL, NULL, 0, "Writing %s into slot %s",
		       opts->image, w.slot->name);
	log_info("writing %s (%s, %llu bytes) to slot %s (%s)", opts->image, w.type,
		 (unsigned long long)w.img_size, w.slot->name, w.dev.desc ? w.dev.desc : "");
	if (fs_image_supported(w.type, w.slot->type)) {
		struct archive_feed f = { .w = &w, .hash = hash };
		ret = fs_image_write(cfg, w.slot, &w.dev, w.type, opts->image, archive_feed, &f, err);
		res.extracted = true;
	} else {
		ret = copy_image(&w, hash, err);
	}
	if (ret == 0 && slot_resize_wanted(w.slot, w.type))
		ret = slot_resize(&w.dev, err);
	if (ret < 0) {
		abota_error_prefix(err, "slot %s", w.slot->name);
		goto out;
	}
	uint8_t md[DIGEST_SHA256_LEN];
	digest_sha256_final(hash, md);
	digest_to_hex(md, sizeof(md), res.sha256);
	res.size = w.img_size;
	ret = record(&w, "ok", res.sha256, err);
	if (ret < 0)
		goto out;
	pending = false;
	event_log_emit(cfg, CONFIG_EVENT_WRITESLOT, NULL, NULL, 0,
		       "Wrote slot %s: %llu bytes, sha256 %s", w.slot->name,
		       (unsigned long long)res.size, res.sha256);
	ws_progress(&w, 100, "Writing slot done", w.img_size);
	if (result)
		*result = res;
out:
	if (ret < 0 && pending) {
		struct abota_error e2 = { 0 };
		if (record(&w, "failed", NULL, &e2) < 0)
			log_warning("slot %s: cannot record the failed write: %s", w.slot->name,
				    e2.msg);
		event_log_emit(cfg, CONFIG_EVENT_WRITESLOT, NULL, NULL, 0,
			       "Writing slot %s failed: %s", w.slot->name, err ? err->msg : "");
	}
	digest_sha256_free(hash);
	ws_free(&w);
	return ret;
}
