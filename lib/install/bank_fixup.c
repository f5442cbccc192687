/* bank_fixup.c - rewrite a new bank's boot command line and mounts so they
 * name that bank (see bank_fixup.h).  The simulator's kernel step fails a
 * bank whose command line names another bank's rootfs or slot, as a real
 * board would mount the wrong root or report the wrong booted slot. */
#include "abota/bank_fixup.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <et/com_err.h>
#include <ext2fs/ext2_err.h>
#include <ext2fs/ext2fs.h>

#include "abota/log.h"

const struct bank_fixup_rule bank_fixup_default_rules[] = {
	{ "bootfs", "/extlinux/extlinux.conf", BANK_FIXUP_CMDLINE, true },
	{ "rootfs", "/etc/fstab", BANK_FIXUP_MOUNTS, false },
	{ NULL, NULL, BANK_FIXUP_CMDLINE, false },
};

struct buf {
	char *p;
	size_t len, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->cap ? b->cap * 2 : 1024) + n;
		char *p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static bool has_prefix(const char *tok, size_t n, const char *prefix, size_t *plen)
{
	*plen = strlen(prefix);
	return n >= *plen && !strncmp(tok, prefix, *plen);
}

/* One command-line token: the replacement or NULL to keep it. */
static int cmdline_token(const char *tok, size_t n, const struct bank_fixup_target *t,
			 char *out, size_t cap, struct abota_error *err)
{
	size_t pl;
	const char *val = NULL, *prefix = NULL;
	if (has_prefix(tok, n, "root=PARTUUID=", &pl)) {
		if (!t->rootfs_partuuid[0])
			return abota_error_set(err, -EINVAL,
					       "root=PARTUUID=: the target rootfs is not a GPT "
					       "partition");
		prefix = "root=PARTUUID=", val = t->rootfs_partuuid;
	} else if (has_prefix(tok, n, "root=PARTLABEL=", &pl)) {
		if (!t->rootfs_partlabel[0])
			return abota_error_set(err, -EINVAL,
					       "root=PARTLABEL=: the target rootfs is not a GPT "
					       "partition");
		prefix = "root=PARTLABEL=", val = t->rootfs_partlabel;
	} else if (has_prefix(tok, n, "rauc.slot=", &pl)) {
		prefix = "rauc.slot=", val = t->bootname;
	} else if (has_prefix(tok, n, "root=/dev/", &pl)) {
		log_warning("%.*s: a device path cannot be rewritten for another bank; use "
			    "root=PARTUUID=",
			    (int)n, tok);
	}
	if (!prefix)
		return 0;
	snprintf(out, cap, "%s%s", prefix, val);
	return 1;
}

/* The device field of an fstab entry: the target's partition if it names
 * another bank's. */
static int mounts_token(const char *tok, size_t n, const struct bank_fixup_target *t, char *out,
			size_t cap)
{
	static const struct {
		const char *prefix;
		bool uuid;
	} forms[] = {
		{ "PARTLABEL=", false },
		{ "/dev/disk/by-partlabel/", false },
		{ "PARTUUID=", true },
		{ "/dev/disk/by-partuuid/", true },
	};
	for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
		size_t pl;
		if (!has_prefix(tok, n, forms[f].prefix, &pl))
			continue;
		const char *v = tok + pl;
		size_t vl = n - pl;
		for (size_t i = 0; i < t->nmap; i++) {
			const char *from = forms[f].uuid ? t->map[i].from_uuid : t->map[i].from_label;
			const char *to = forms[f].uuid ? t->map[i].to_uuid : t->map[i].to_label;
			if (!from[0] || !to[0] || strlen(from) != vl)
				continue;
			/* udev and the kernel accept either case for GUIDs */
			if (forms[f].uuid ? strncasecmp(v, from, vl) : strncmp(v, from, vl))
				continue;
			snprintf(out, cap, "%s%s", forms[f].prefix, to);
			return 1;
		}
	}
	return 0;
}

int bank_fixup_rewrite(enum bank_fixup_kind kind, const char *text, size_t len,
		       const struct bank_fixup_target *t, char **out, size_t *out_len,
		       unsigned *changed, struct abota_error *err)
{
	struct buf b = { 0 };
	unsigned n_changed = 0;
	int ret = 0;
	bool line_start = true, first_field = false;
	if (memchr(text, '\0', len)) {
		ret = abota_error_set(err, -EINVAL, "not a text file (contains NUL bytes)");
		goto out;
	}
	for (size_t i = 0; i < len && ret == 0;) {
		if (isspace((unsigned char)text[i])) {
			size_t j = i;
			while (j < len && isspace((unsigned char)text[j])) {
				if (text[j] == '\n')
					line_start = true;
				j++;
			}
			ret = buf_add(&b, text + i, j - i);
			i = j;
			continue;
		}
		size_t j = i;
		while (j < len && !isspace((unsigned char)text[j]))
			j++;
		first_field = line_start;
		line_start = false;
		char repl[GPT_NAME_MAX + 64];
		int r = 0;
		if (kind == BANK_FIXUP_CMDLINE)
			r = cmdline_token(text + i, j - i, t, repl, sizeof(repl), err);
		else if (first_field && text[i] != '#')
			r = mounts_token(text + i, j - i, t, repl, sizeof(repl));
		if (r < 0) {
			ret = r;
			goto out;
		}
		if (r > 0 && (strlen(repl) != j - i || memcmp(repl, text + i, j - i))) {
			n_changed++;
			ret = buf_add(&b, repl, strlen(repl));
		} else {
			ret = buf_add(&b, text + i, j - i);
		}
		/* a comment runs to the end of the line */
		if (kind == BANK_FIXUP_MOUNTS && first_field && text[i] == '#') {
			size_t e = j;
			while (e < len && text[e] != '\n')
				e++;
			if (ret == 0)
				ret = buf_add(&b, text + j, e - j);
			j = e;
		}
		i = j;
	}
	if (ret == 0 && !b.p)
		ret = buf_add(&b, "", 0);
	if (ret < 0) {
		abota_error_set(err, ret, "out of memory");
		goto out;
	}
	*out = b.p;
	*out_len = b.len;
	b.p = NULL;
	if (changed)
		*changed = n_changed;
out:
	free(b.p);
	return ret;
}

static int e2err(struct abota_error *err, errcode_t rc, const char *what)
{
	static bool init;
	if (!init) {
		initialize_ext2_error_table();
		init = true;
	}
	return abota_error_set(err, rc == EXT2_ET_FILE_NOT_FOUND ? -ENOENT : -EIO, "%s: %s", what,
			       error_message(rc));
}

int bank_fixup_apply(const struct bank_fixup_rule *rule, const char *slot_name,
		     const struct slot_device *dev, const struct bank_fixup_target *t,
		     unsigned *changed, struct abota_error *err)
{
	ext2_filsys fs = NULL;
	ext2_file_t f = NULL;
	char *data = NULL, *nd = NULL;
	size_t nlen = 0;
	unsigned n = 0;
	int ret = 0;
	errcode_t rc;
	char opts[64];
	snprintf(opts, sizeof(opts), "offset=%llu", (unsigned long long)dev->offset);
	rc = ext2fs_open2(dev->path, opts, EXT2_FLAG_RW | EXT2_FLAG_64BITS, 0, 0, unix_io_manager,
			  &fs);
	if (rc) {
		ret = e2err(err, rc, "cannot open the ext4 file system");
		goto out;
	}
	/* the file system must lie inside the slot */
	uint64_t fsbytes = ext2fs_blocks_count(fs->super) * (uint64_t)fs->blocksize;
	if (dev->size && fsbytes > dev->size) {
		ret = abota_error_set(err, -EINVAL,
				      "file system of %llu bytes is larger than the slot (%llu)",
				      (unsigned long long)fsbytes, (unsigned long long)dev->size);
		goto out;
	}
	ext2_ino_t ino;
	rc = ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, rule->path, &ino);
	if (rc == EXT2_ET_FILE_NOT_FOUND && !rule->required) {
		log_debug("%s: no %s, nothing to fix up", slot_name, rule->path);
		goto out;
	}
	if (rc) {
		ret = e2err(err, rc, rule->path);
		goto out;
	}
	struct ext2_inode inode;
	if ((rc = ext2fs_read_inode(fs, ino, &inode))) {
		ret = e2err(err, rc, rule->path);
		goto out;
	}
	if (!LINUX_S_ISREG(inode.i_mode)) {
		ret = abota_error_set(err, -EINVAL, "%s: not a regular file", rule->path);
		goto out;
	}
	uint64_t size = EXT2_I_SIZE(&inode);
	if (size > BANK_FIXUP_MAX_FILE) {
		ret = abota_error_set(err, -EFBIG, "%s: %llu bytes, more than the %u allowed",
				      rule->path, (unsigned long long)size, BANK_FIXUP_MAX_FILE);
		goto out;
	}
	if (!(data = malloc((size_t)size + 1))) { /* size <= BANK_FIXUP_MAX_FILE */
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = ext2fs_file_open(fs, ino, EXT2_FILE_WRITE, &f))) {
		ret = e2err(err, rc, rule->path);
		goto out;
	}
	unsigned got = 0;
	if ((rc = ext2fs_file_read(f, data, (unsigned)size, &got)) || got != size) {
		ret = rc ? e2err(err, rc, rule->path)
			 : abota_error_set(err, -EIO, "%s: short read", rule->path);
		goto out;
	}
	data[size] = '\0';
	if ((ret = bank_fixup_rewrite(rule->kind, data, (size_t)size, t, &nd, &nlen, &n, err)) < 0) {
		abota_error_prefix(err, "%s", rule->path);
		goto out;
	}
	if (n == 0)
		goto out; /* already right: no write, nothing to flush */
	if ((rc = ext2fs_file_lseek(f, 0, EXT2_SEEK_SET, NULL))) {
		ret = e2err(err, rc, rule->path);
		goto out;
	}
	for (size_t off = 0; off < nlen;) {
		unsigned w = 0;
		if ((rc = ext2fs_file_write(f, nd + off, (unsigned)(nlen - off), &w)) || !w) {
			ret = rc ? e2err(err, rc, rule->path)
				 : abota_error_set(err, -EIO, "%s: short write", rule->path);
			goto out;
		}
		off += w;
	}
	/* nlen <= BANK_FIXUP_MAX_FILE: fits the signed offset */
	if ((rc = ext2fs_file_set_size2(f, (ext2_off64_t)nlen))) {
		ret = e2err(err, rc, rule->path);
		goto out;
	}
out:
	if (f) {
		rc = ext2fs_file_close(f);
		if (rc && ret == 0)
			ret = e2err(err, rc, rule->path);
	}
	if (fs) {
		/* ext2fs_close flushes metadata and fsyncs the device (unix_io) */
		rc = ext2fs_close_free(&fs);
		if (rc && ret == 0)
			ret = e2err(err, rc, "closing the file system");
	}
	if (ret < 0)
		abota_error_prefix(err, "slot %s (%s)", slot_name, dev->desc ? dev->desc : dev->path);
	else if (changed)
		*changed = n;
	if (ret == 0 && n)
		log_info("%s: %s: %u reference(s) rewritten for bank %s", slot_name, rule->path, n,
			 t->bootname);
	free(data);
	free(nd);
	return ret;
}

static bool in_group(const struct slot *s, const struct slot *root)
{
	return slot_root(s) == root;
}

/* The slot of class sclass in root's group. */
static const struct slot *group_slot(const struct system_config *cfg, const struct slot *root,
				     const char *sclass)
{
	for (size_t i = 0; i < cfg->nslots; i++)
		if (in_group(&cfg->slots[i], root) && !strcmp(cfg->slots[i].sclass, sclass))
			return &cfg->slots[i];
	return NULL;
}

int bank_fixup_target_init(const struct system_config *cfg, const struct slot_device_probe *probe,
			   const struct slot *target_root, struct bank_fixup_target *out,
			   struct abota_error *err)
{
	struct bank_fixup_target t;
	struct slot_device d = { .fd = -1 };
	int ret;
	memset(&t, 0, sizeof(t));
	if (!target_root->bootname)
		return abota_error_set(err, -EINVAL, "slot %s has no bootname", target_root->name);
	snprintf(t.bootname, sizeof(t.bootname), "%s", target_root->bootname);
	if ((ret = slot_device_resolve(cfg, probe, target_root, &d, err)) < 0)
		return ret;
	snprintf(t.rootfs_partuuid, sizeof(t.rootfs_partuuid), "%s", d.partuuid);
	snprintf(t.rootfs_partlabel, sizeof(t.rootfs_partlabel), "%s", d.partlabel);
	slot_device_close(&d);
	for (size_t i = 0; i < cfg->nslots; i++) {
		const struct slot *o = &cfg->slots[i];
		const struct slot *root = slot_root(o);
		if (root == target_root || !root->bootname)
			continue;
		const struct slot *ts = group_slot(cfg, target_root, o->sclass);
		if (!ts)
			continue;
		struct slot_device od = { .fd = -1 }, td = { .fd = -1 };
		struct abota_error e = { 0 };
		/* another bank's partition that cannot be resolved cannot be
		 * named by the new bank's files either */
		if (slot_device_resolve(cfg, probe, o, &od, &e) < 0) {
			log_debug("fix-up: %s", e.msg);
			continue;
		}
		ret = slot_device_resolve(cfg, probe, ts, &td, err);
		if (ret == 0 && od.partlabel[0] && t.nmap < BANK_FIXUP_MAX_MAP) {
			snprintf(t.map[t.nmap].from_label, sizeof(t.map[0].from_label), "%s",
				 od.partlabel);
			snprintf(t.map[t.nmap].to_label, sizeof(t.map[0].to_label), "%s",
				 td.partlabel);
			snprintf(t.map[t.nmap].from_uuid, sizeof(t.map[0].from_uuid), "%s",
				 od.partuuid);
			snprintf(t.map[t.nmap].to_uuid, sizeof(t.map[0].to_uuid), "%s", td.partuuid);
			t.nmap++;
		}
		slot_device_close(&od);
		slot_device_close(&td);
		if (ret < 0)
			return ret;
	}
	*out = t;
	return 0;
}

int bank_fixup_group(const struct system_config *cfg, const struct slot_device_probe *probe,
		     const struct bank_fixup_rule *rules, const struct slot *target_root,
		     const struct slot *const *written, size_t nwritten, struct abota_error *err)
{
	struct bank_fixup_target *t = NULL;
	int ret = 0;
	if (!rules)
		rules = bank_fixup_default_rules;
	bool any = false;
	for (size_t i = 0; i < nwritten; i++)
		for (const struct bank_fixup_rule *r = rules; r->sclass; r++)
			if (!strcmp(r->sclass, written[i]->sclass))
				any = true;
	if (!any)
		return 0;
	if (!(t = malloc(sizeof(*t))))
		return abota_error_set(err, -ENOMEM, "out of memory");
	if ((ret = bank_fixup_target_init(cfg, probe, target_root, t, err)) < 0) {
		abota_error_prefix(err, "bank fix-up");
		goto out;
	}
	for (size_t i = 0; i < nwritten && ret == 0; i++) {
		const struct slot *s = written[i];
		if (!in_group(s, target_root)) {
			ret = abota_error_set(err, -EINVAL, "bank fix-up: slot %s is not in %s's group",
					      s->name, target_root->name);
			break;
		}
		for (const struct bank_fixup_rule *r = rules; r->sclass && ret == 0; r++) {
			if (strcmp(r->sclass, s->sclass))
				continue;
			if (strcmp(s->type, "ext4")) {
				log_warning("bank fix-up: slot %s is %s, not ext4: %s not rewritten",
					    s->name, s->type, r->path);
				continue;
			}
			struct slot_device d = { .fd = -1 };
			/* opened like the writer opens it (the partition node on a
			 * real disk), so both see the same page cache */
			ret = slot_device_open_probe(cfg, probe, s, O_RDONLY, &d, err);
			if (ret == 0)
				ret = bank_fixup_apply(r, s->name, &d, t, NULL, err);
			slot_device_close(&d);
			if (ret < 0)
				abota_error_prefix(err, "bank fix-up");
		}
	}
out:
	free(t);
	return ret;
}
