/* gpt.c - GPT read/write through libfdisk (see gpt.h). */
#include "abota/gpt.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libfdisk/libfdisk.h>

static int libfdisk_err(struct abota_error *err, int rc, const char *path, const char *what)
{
	int code = rc < 0 ? rc : -EIO;
	return abota_error_set(err, code, "%s: %s: %s", path, what, strerror(-code));
}

void gpt_free(struct gpt_disk *disk)
{
	if (!disk)
		return;
	free(disk->parts);
	free(disk);
}

int gpt_read(const char *path, struct gpt_disk **out, struct abota_error *err)
{
	int ret = 0;
	struct fdisk_context *cxt = fdisk_new_context();
	struct fdisk_table *tb = NULL;
	struct fdisk_iter *itr = NULL;
	struct gpt_disk *disk = NULL;
	char *id = NULL;
	if (!cxt)
		return abota_error_set(err, -ENOMEM, "out of memory");
	fdisk_disable_dialogs(cxt, 1);
	int rc = fdisk_assign_device(cxt, path, 1);
	if (rc < 0) {
		ret = libfdisk_err(err, rc, path, "cannot open");
		goto out;
	}
	if (!fdisk_is_labeltype(cxt, FDISK_DISKLABEL_GPT)) {
		ret = abota_error_set(err, -ENODATA, "%s: no GPT partition table", path);
		goto out;
	}
	disk = calloc(1, sizeof(*disk));
	if (!disk) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	disk->sector_size = (unsigned)fdisk_get_sector_size(cxt);
	disk->size = (uint64_t)fdisk_get_nsectors(cxt) * disk->sector_size;
	if (fdisk_get_disklabel_id(cxt, &id) == 0 && id)
		(void)guid_parse(id, &disk->disk_guid, NULL);
	rc = fdisk_get_partitions(cxt, &tb);
	if (rc < 0) {
		ret = libfdisk_err(err, rc, path, "cannot read partitions");
		goto out;
	}
	size_t n = fdisk_table_get_nents(tb);
	disk->parts = calloc(n ? n : 1, sizeof(*disk->parts));
	itr = fdisk_new_iter(FDISK_ITER_FORWARD);
	if (!disk->parts || !itr) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	struct fdisk_partition *pa;
	while (fdisk_table_next_partition(tb, itr, &pa) == 0) {
		struct gpt_part *p = &disk->parts[disk->nparts];
		size_t partno = fdisk_partition_get_partno(pa);
		p->number = (unsigned)partno + 1;
		p->start = (uint64_t)fdisk_partition_get_start(pa) * disk->sector_size;
		p->size = (uint64_t)fdisk_partition_get_size(pa) * disk->sector_size;
		const char *name = fdisk_partition_get_name(pa);
		snprintf(p->name, sizeof(p->name), "%s", name ? name : "");
		const char *uuid = fdisk_partition_get_uuid(pa);
		if (uuid && guid_parse(uuid, &p->uuid, NULL) < 0)
			memset(&p->uuid, 0, sizeof(p->uuid));
		struct fdisk_parttype *t = fdisk_partition_get_type(pa);
		const char *ts = t ? fdisk_parttype_get_string(t) : NULL;
		if (ts)
			(void)guid_parse(ts, &p->type, NULL);
		(void)fdisk_gpt_get_partition_attrs(cxt, partno, &p->attrs);
		disk->nparts++;
	}
	*out = disk;
	disk = NULL;
out:
	free(id);
	if (itr)
		fdisk_free_iter(itr);
	if (tb)
		fdisk_unref_table(tb);
	fdisk_unref_context(cxt);
	gpt_free(disk);
	return ret;
}

/* Attribute bits as sfdisk script words. */
static int attrs_string(uint64_t attrs, char *buf, size_t cap)
{
	static const char *const names[3] = { "RequiredPartition", "NoBlockIOProtocol",
					      "LegacyBIOSBootable" };
	size_t len = 0;
	buf[0] = '\0';
	for (unsigned bit = 0; bit < 64; bit++) {
		if (!(attrs & (1ull << bit)))
			continue;
		if (bit >= 3 && bit < 48)
			return -EINVAL;
		int n = bit < 3 ? snprintf(buf + len, cap - len, "%s%s", len ? " " : "", names[bit])
				: snprintf(buf + len, cap - len, "%sGUID:%u", len ? " " : "", bit);
		if (n < 0 || (size_t)n >= cap - len)
			return -ENOSPC;
		len += (size_t)n;
	}
	return 0;
}

static bool name_ok(const char *name)
{
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\' || *p == ',' || *p == 0x7f)
			return false;
	return strlen(name) <= 36;
}

int gpt_write(const char *path, const struct gpt_disk *layout, struct abota_error *err)
{
	int ret = 0;
	struct fdisk_context *cxt = fdisk_new_context();
	struct fdisk_script *dp = NULL;
	char *script = NULL;
	size_t script_len = 0;
	FILE *f = NULL;
	char g[GUID_STR_LEN + 1], t[GUID_STR_LEN + 1], attrs[256];
	if (!cxt)
		return abota_error_set(err, -ENOMEM, "out of memory");
	fdisk_disable_dialogs(cxt, 1);
	int rc = fdisk_assign_device(cxt, path, 0);
	if (rc < 0) {
		ret = libfdisk_err(err, rc, path, "cannot open");
		goto out;
	}
	unsigned ss = (unsigned)fdisk_get_sector_size(cxt);
	if (layout->sector_size && layout->sector_size != ss) {
		ret = abota_error_set(err, -EINVAL, "%s: sector size is %u, layout expects %u", path,
				      ss, layout->sector_size);
		goto out;
	}
	uint64_t dsize = (uint64_t)fdisk_get_nsectors(cxt) * ss;
	if (layout->size && layout->size != dsize) {
		ret = abota_error_set(err, -EINVAL, "%s: disk is %llu bytes, layout expects %llu",
				      path, (unsigned long long)dsize,
				      (unsigned long long)layout->size);
		goto out;
	}
	/* An sfdisk script: the only libfdisk interface that takes an exact
	 * first usable LBA (34, as sgdisk -a 1 in ST's raw image script). */
	f = open_memstream(&script, &script_len);
	if (!f) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	fprintf(f, "label: gpt\nunit: sectors\nfirst-lba: 34\n");
	if (!guid_is_zero(&layout->disk_guid))
		fprintf(f, "label-id: %s\n", guid_format(&layout->disk_guid, g));
	for (size_t i = 0; i < layout->nparts; i++) {
		const struct gpt_part *p = &layout->parts[i];
		if (p->start % ss || p->size % ss) {
			ret = abota_error_set(err, -EINVAL,
					      "%s: partition %s is not aligned to %u-byte sectors",
					      path, p->name, ss);
			goto out;
		}
		if (!name_ok(p->name)) {
			ret = abota_error_set(err, -EINVAL, "%s: unsupported partition name '%s'",
					      path, p->name);
			goto out;
		}
		if (attrs_string(p->attrs, attrs, sizeof(attrs)) < 0) {
			ret = abota_error_set(err, -EINVAL,
					      "%s: partition %s: unsupported attribute bits 0x%llx",
					      path, p->name, (unsigned long long)p->attrs);
			goto out;
		}
		fprintf(f, "start=%llu, type=%s, name=\"%s\"",
			(unsigned long long)(p->start / ss), guid_format(&p->type, t), p->name);
		/* size 0: up to the last usable LBA (disk - 34 sectors), not
		 * rounded down to libfdisk's 1 MiB grain. */
		uint64_t end = dsize - 33ull * ss;
		if (!p->size && p->start >= end) {
			ret = abota_error_set(err, -EINVAL, "%s: partition %s starts beyond the disk",
					      path, p->name);
			goto out;
		}
		fprintf(f, ", size=%llu",
			(unsigned long long)((p->size ? p->size : end - p->start) / ss));
		if (!guid_is_zero(&p->uuid))
			fprintf(f, ", uuid=%s", guid_format(&p->uuid, g));
		if (attrs[0])
			fprintf(f, ", attrs=\"%s\"", attrs);
		fputc('\n', f);
	}
	if (fclose(f) != 0) {
		f = NULL;
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	f = fmemopen(script, script_len, "r");
	dp = fdisk_new_script(cxt);
	if (!f || !dp) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	rc = fdisk_script_read_file(dp, f);
	if (rc < 0) {
		ret = libfdisk_err(err, rc, path, "invalid partition layout");
		goto out;
	}
	rc = fdisk_apply_script(cxt, dp);
	if (rc < 0) {
		ret = abota_error_set(err, rc, "%s: cannot create the partitions (overlapping or "
				      "outside the disk?): %s", path, strerror(-rc));
		goto out;
	}
	if (fdisk_get_npartitions(cxt) < layout->nparts) {
		ret = abota_error_set(err, -EINVAL, "%s: too many partitions", path);
		goto out;
	}
	rc = fdisk_write_disklabel(cxt);
	if (rc < 0) {
		ret = libfdisk_err(err, rc, path, "cannot write GPT");
		goto out;
	}
	rc = fdisk_deassign_device(cxt, 0); /* fsyncs */
	if (rc < 0)
		ret = libfdisk_err(err, rc, path, "cannot close");
out:
	if (f)
		fclose(f);
	free(script);
	if (dp)
		fdisk_unref_script(dp);
	fdisk_unref_context(cxt);
	return ret;
}

int gpt_find_name(const struct gpt_disk *disk, const char *name, const struct gpt_part **out,
		  struct abota_error *err)
{
	const struct gpt_part *found = NULL;
	for (size_t i = 0; i < disk->nparts; i++) {
		if (strcmp(disk->parts[i].name, name) != 0)
			continue;
		if (found)
			return abota_error_set(err, -ENOTUNIQ,
					       "partition name '%s' is used by entries %u and %u",
					       name, found->number, disk->parts[i].number);
		found = &disk->parts[i];
	}
	if (!found)
		return abota_error_set(err, -ENOENT, "no partition named '%s'", name);
	*out = found;
	return 0;
}

const struct gpt_part *gpt_find_uuid(const struct gpt_disk *disk, const struct guid *uuid)
{
	for (size_t i = 0; i < disk->nparts; i++)
		if (guid_equal(&disk->parts[i].uuid, uuid))
			return &disk->parts[i];
	return NULL;
}
