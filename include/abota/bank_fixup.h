/* bank_fixup.h - make a freshly written bank refer to itself.
 *
 * Bundles for ST boards carry bank-A images: bootfs' extlinux.conf says
 * `root=PARTUUID=<rootfs-a> ... rauc.slot=A` and the rootfs mounts the -a
 * partitions.  meta-st-ota's post-install.sh patches them by mounting the
 * new bank; abota edits the ext4 file systems in place with libext2fs (no
 * mount, at the slot's byte offset on the boot disk) after the slots of the
 * target group are written and before the trial switch:
 *
 *   cmdline  (bootfs: /extlinux/extlinux.conf, required)
 *            root=PARTUUID=<any>  -> root=PARTUUID=<target rootfs PARTUUID>
 *            root=PARTLABEL=<any> -> root=PARTLABEL=<target rootfs label>
 *            rauc.slot=<any>      -> rauc.slot=<target bootname>
 *   mounts   (rootfs: /etc/fstab, optional: a rootfs without it is fine)
 *            the device field of each entry naming a partition of another
 *            bank (PARTLABEL=, PARTUUID=, /dev/disk/by-partlabel/,
 *            /dev/disk/by-partuuid/) -> the same class in the target bank
 *
 * Rewrites are idempotent (running twice changes nothing the second time)
 * and bounded (files up to BANK_FIXUP_MAX_FILE bytes).  The bank is not
 * bootable before the trial switch, so an interrupted fix-up is repaired by
 * re-running the install; the file system is flushed (fsync) before return.
 */
#ifndef ABOTA_BANK_FIXUP_H
#define ABOTA_BANK_FIXUP_H

#include <stdbool.h>
#include <stddef.h>

#include "abota/config.h"
#include "abota/error.h"
#include "abota/slot.h"
#include "abota/slot_device.h"

#define BANK_FIXUP_MAX_FILE (256 * 1024)
#define BANK_FIXUP_MAX_MAP 32 /* partitions per bank */

enum bank_fixup_kind {
	BANK_FIXUP_CMDLINE, /* kernel command line tokens (extlinux.conf, boot scripts) */
	BANK_FIXUP_MOUNTS,  /* fstab-style device fields */
};

struct bank_fixup_rule {
	const char *sclass; /* slot class the file lives in ("bootfs") */
	const char *path;   /* absolute path inside the file system */
	enum bank_fixup_kind kind;
	bool required;      /* a missing file is an error (else skipped) */
};

/* The default rules (meta-st-ota layout), NULL-sclass terminated. */
extern const struct bank_fixup_rule bank_fixup_default_rules[];

/* What the target bank is called. */
struct bank_fixup_target {
	char bootname[64];                        /* "B" */
	char rootfs_partuuid[GUID_STR_LEN + 1];   /* lower case, "" if not a GPT partition */
	char rootfs_partlabel[GPT_NAME_MAX + 1];
	/* other banks' partitions -> the target bank's partition of that class */
	size_t nmap;
	struct {
		char from_label[GPT_NAME_MAX + 1], to_label[GPT_NAME_MAX + 1];
		char from_uuid[GUID_STR_LEN + 1], to_uuid[GUID_STR_LEN + 1];
	} map[BANK_FIXUP_MAX_MAP];
};

/* Pure text rewrite (tests, dry runs): *out is malloc'd, *changed counts
 * rewritten tokens. */
int bank_fixup_rewrite(enum bank_fixup_kind kind, const char *text, size_t len,
		       const struct bank_fixup_target *t, char **out, size_t *out_len,
		       unsigned *changed, struct abota_error *err);

/* Applies one rule to the ext4 file system of dev (dev->path at dev->offset;
 * the slot need not be open).  slot_name is used in messages. */
int bank_fixup_apply(const struct bank_fixup_rule *rule, const char *slot_name,
		     const struct slot_device *dev, const struct bank_fixup_target *t,
		     unsigned *changed, struct abota_error *err);

/* Builds the target description for the bank of target_root (its bootname,
 * its rootfs PARTUUID/label, and the label/PARTUUID map of every other
 * bank's slots to the same class in the target bank), resolving partitions
 * on the boot disk (probe as in slot_device.h, NULL = the system). */
int bank_fixup_target_init(const struct system_config *cfg, const struct slot_device_probe *probe,
			   const struct slot *target_root, struct bank_fixup_target *t,
			   struct abota_error *err);

/* What the installer calls after writing the target group, before the trial
 * switch: for each written slot (of target_root's group) of type ext4 whose
 * class has a rule, apply it.  rules NULL = bank_fixup_default_rules.  Errors
 * name slot and file. */
int bank_fixup_group(const struct system_config *cfg, const struct slot_device_probe *probe,
		     const struct bank_fixup_rule *rules, const struct slot *target_root,
		     const struct slot *const *written, size_t nwritten, struct abota_error *err);

#endif
