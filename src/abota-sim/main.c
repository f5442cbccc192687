/* main.c - abota-sim command line. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "abota/fileio.h"
#include "abota/fwu_store.h"
#include "abota/gpt.h"
#include "abota/log.h"
#include "abota/powercut.h"
#include "sim.h"

static const char usage_text[] =
	"Usage: abota-sim COMMAND [OPTIONS] ...\n"
	"\n"
	"Simulated STM32MP boards: a GPT disk image, the TAMP FWU_INFO register, and\n"
	"emulated TF-A BL2 / ST U-Boot boots (docs/fwu.md).\n"
	"\n"
	"Commands:\n"
	"  boards                          list board profiles\n"
	"  create BOARD DIR                a factory-fresh board in DIR\n"
	"      --image-size=SIZE           disk size (default: the board's, e.g. 5GiB)\n"
	"      --seed=N                    seed for random GUIDs and events (default 1)\n"
	"      --tfa=r3|upstream|v1        TF-A flavour (default: the board's)\n"
	"      --uboot=st|upstream         U-Boot flavour (default st)\n"
	"      --md-version=1|2            metadata version (default: board; 1 with --tfa=v1)\n"
	"      --full                      program bank B too (ST's -full flash layout)\n"
	"      --force                     replace an existing simulated board\n"
	"  boot DIR                        one power-on: BL2, U-Boot, kernel\n"
	"      --fail-boot | --hang        the booted system fails / hangs before\n"
	"                                  boot-complete (the next boot is a reset)\n"
	"      --tfa=... --uboot=...       override the flavours for this boot\n"
	"      --cut-uboot-write=N[:BYTES] power cut at U-Boot's N-th metadata write point\n"
	"      --quiet                     do not echo the console\n"
	"  status DIR [--output-format=readable|json|json-pretty]\n"
	"  event DIR reset|power-loss      the board goes down (FWU_INFO kept)\n"
	"  event DIR vbat-loss|tamper      the board goes down, FWU_INFO cleared\n"
	"  event DIR torn-write metadata1|metadata2 [--from=FILE] [--bytes=N]\n"
	"                                  an interrupted write of a metadata copy: the\n"
	"                                  first N bytes (default: seeded) of FILE (default:\n"
	"                                  seeded garbage) over the old copy\n"
	"  write DIR PARTITION FILE [--bytes=N]   raw write at the partition start\n"
	"  erase DIR PARTITION             zero a partition\n"
	"  fs DIR PARTITION get PATH | put PATH FILE | rm PATH\n"
	"                                  files in an ext4 partition (libext2fs)\n";

static int fail(const char *cmd, const struct abota_error *err)
{
	fprintf(stderr, "abota-sim %s: %s\n", cmd, err->msg[0] ? err->msg : "failed");
	return err->code == -ECANCELED && powercut_happened() ? POWERCUT_EXIT_STATUS : 1;
}

static int usage_error(const char *cmd, const char *msg)
{
	fprintf(stderr, "abota-sim %s: %s (see 'abota-sim --help')\n", cmd, msg);
	return 2;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-')
		return -EINVAL;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int cmd_boards(void)
{
	char **names;
	size_t n;
	struct abota_error err = { 0 };
	if (board_list(&names, &n, &err) < 0)
		return fail("boards", &err);
	for (size_t i = 0; i < n; i++) {
		struct board *b = NULL;
		struct abota_error e = { 0 };
		if (board_load(names[i], &b, &e) < 0) {
			printf("%-24s (invalid: %s)\n", names[i], e.msg);
			continue;
		}
		printf("%-24s %-9s v%u %-8s %s\n", b->name, b->soc, b->fwu.version,
		       board_tfa_name(b->tfa), b->description);
		board_free(b);
	}
	board_list_free(names, n);
	return 0;
}

enum {
	O_IMAGE_SIZE = 1000,
	O_SEED,
	O_TFA,
	O_UBOOT,
	O_MDV,
	O_FULL,
	O_FORCE,
	O_FAIL,
	O_HANG,
	O_CUT,
	O_QUIET,
	O_FORMAT,
	O_FROM,
	O_BYTES,
};

static int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "image-size", required_argument, NULL, O_IMAGE_SIZE },
		{ "seed", required_argument, NULL, O_SEED },
		{ "tfa", required_argument, NULL, O_TFA },
		{ "uboot", required_argument, NULL, O_UBOOT },
		{ "md-version", required_argument, NULL, O_MDV },
		{ "full", no_argument, NULL, O_FULL },
		{ "force", no_argument, NULL, O_FORCE },
		{ 0 },
	};
	struct sim_create_opts o = { .seed = 1, .tfa = -1 };
	struct abota_error err = { 0 };
	uint64_t v;
	enum board_tfa t;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_IMAGE_SIZE:
			if (board_parse_size(optarg, &o.image_size) < 0 || !o.image_size)
				return usage_error("create", "invalid --image-size");
			break;
		case O_SEED:
			if (parse_u64(optarg, &o.seed) < 0)
				return usage_error("create", "invalid --seed");
			break;
		case O_TFA:
			if (board_tfa_parse(optarg, &t, &err) < 0)
				return usage_error("create", err.msg);
			o.tfa = (int)t;
			break;
		case O_UBOOT:
			if (strcmp(optarg, "st") && strcmp(optarg, "upstream"))
				return usage_error("create", "--uboot must be st or upstream");
			o.uboot = strcmp(optarg, "st") ? SIM_UBOOT_UPSTREAM : SIM_UBOOT_ST;
			break;
		case O_MDV:
			if (parse_u64(optarg, &v) < 0 || v < 1 || v > 2)
				return usage_error("create", "--md-version must be 1 or 2");
			o.md_version = (int)v;
			break;
		case O_FULL: o.full = true; break;
		case O_FORCE: o.force = true; break;
		default: return usage_error("create", "invalid option");
		}
	}
	if (argc - optind != 2)
		return usage_error("create", "BOARD and DIR expected");
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (sim_create(argv[optind], argv[optind + 1], &o, &err) < 0)
		return fail("create", &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_info("created in %.3f s", (double)(t1.tv_sec - t0.tv_sec) +
					      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}

static int cmd_boot(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "fail-boot", no_argument, NULL, O_FAIL },
		{ "hang", no_argument, NULL, O_HANG },
		{ "tfa", required_argument, NULL, O_TFA },
		{ "uboot", required_argument, NULL, O_UBOOT },
		{ "cut-uboot-write", required_argument, NULL, O_CUT },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ 0 },
	};
	struct sim_boot_opts o = { .tfa = -1, .uboot = -1, .cut_bytes = -1 };
	struct abota_error err = { 0 };
	bool quiet = false;
	enum board_tfa t;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_FAIL: o.fail_boot = true; break;
		case O_HANG: o.hang = true; break;
		case O_QUIET: quiet = true; break;
		case O_TFA:
			if (board_tfa_parse(optarg, &t, &err) < 0)
				return usage_error("boot", err.msg);
			o.tfa = (int)t;
			break;
		case O_UBOOT:
			if (strcmp(optarg, "st") && strcmp(optarg, "upstream"))
				return usage_error("boot", "--uboot must be st or upstream");
			o.uboot = strcmp(optarg, "st") ? SIM_UBOOT_UPSTREAM : SIM_UBOOT_ST;
			break;
		case O_CUT: {
			char *end;
			errno = 0;
			unsigned long n = strtoul(optarg, &end, 10);
			if (errno || end == optarg || n == 0)
				return usage_error("boot", "invalid --cut-uboot-write");
			o.cut_uboot_write = n;
			if (*end == ':') {
				char *e2;
				long b = strtol(end + 1, &e2, 10);
				if (*e2 || e2 == end + 1 || b < 0)
					return usage_error("boot", "invalid --cut-uboot-write bytes");
				o.cut_bytes = b;
			} else if (*end) {
				return usage_error("boot", "invalid --cut-uboot-write");
			}
			break;
		}
		default: return usage_error("boot", "invalid option");
		}
	}
	if (o.fail_boot && o.hang)
		return usage_error("boot", "--fail-boot and --hang exclude each other");
	if (argc - optind != 1)
		return usage_error("boot", "DIR expected");
	struct sim s;
	if (sim_load(argv[optind], &s, &err) < 0)
		return fail("boot", &err);
	s.quiet = quiet;
	struct sim_boot_result r;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int ret = sim_boot(&s, &o, &r, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	sim_free(&s);
	if (ret < 0)
		return fail("boot", &err);
	log_info("boot took %.3f ms", (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
					      (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	/* Exit status: 0 running, 3 failed/hung, 4 panic, 137 power cut. */
	if (!strcmp(r.outcome, "running"))
		return 0;
	if (!strcmp(r.outcome, "power-cut"))
		return POWERCUT_EXIT_STATUS;
	if (!strcmp(r.outcome, "panic"))
		return 4;
	return 3;
}

static int record_event(struct sim *s, const char *name, struct json_object *extra,
			struct abota_error *err)
{
	struct json_object *h = extra ? extra : json_object_new_object();
	json_object_object_add(h, "event", json_object_new_string(name));
	json_object_object_add(h, "after", json_object_new_string(s->state));
	s->events++;
	int ret = sim_history(s, h, err);
	if (ret == 0) {
		char path[SIM_PATH_MAX + 64];
		sim_path(s, "console.log", path, sizeof(path));
		FILE *f = fopen(path, "ae");
		if (f) {
			fprintf(f, "=== abota-sim event: %s ===\n", name);
			fclose(f);
		}
	}
	return ret;
}

static const struct gpt_part *find_part(const struct gpt_disk *d, const char *name,
					struct abota_error *err)
{
	const struct gpt_part *p = NULL;
	if (gpt_find_name(d, name, &p, err) < 0)
		return NULL;
	return p;
}

static int read_input(const char *path, char **data, size_t *len, struct abota_error *err)
{
	return fileio_read_all(path, 512u << 20, data, len, err);
}

static int disk_write(const char *disk, uint64_t off, const void *buf, size_t len,
		      struct abota_error *err)
{
	int fd = open(disk, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return abota_error_set(err, -errno, "%s: %s", disk, strerror(errno));
	int ret = fileio_pwrite_full(fd, buf, len, off, err);
	if (ret == 0 && fdatasync(fd) < 0)
		ret = abota_error_set(err, -errno, "%s: %s", disk, strerror(errno));
	close(fd);
	return ret;
}

static int cmd_event(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, O_FROM },
		{ "bytes", required_argument, NULL, O_BYTES },
		{ 0 },
	};
	const char *from = NULL;
	uint64_t bytes = 0;
	bool have_bytes = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_FROM: from = optarg; break;
		case O_BYTES:
			if (parse_u64(optarg, &bytes) < 0)
				return usage_error("event", "invalid --bytes");
			have_bytes = true;
			break;
		default: return usage_error("event", "invalid option");
		}
	}
	if (argc - optind < 2)
		return usage_error("event", "DIR and EVENT expected");
	const char *ev = argv[optind + 1];
	struct sim s;
	struct abota_error err = { 0 };
	int ret = 0;
	struct gpt_disk *gpt = NULL;
	char *data = NULL;
	if (sim_load(argv[optind], &s, &err) < 0)
		return fail("event", &err);
	if (!strcmp(ev, "reset") || !strcmp(ev, "power-loss") || !strcmp(ev, "vbat-loss") ||
	    !strcmp(ev, "tamper")) {
		if (argc - optind != 2) {
			ret = usage_error("event", "unexpected arguments");
			goto out;
		}
		bool clear = !strcmp(ev, "vbat-loss") || !strcmp(ev, "tamper");
		struct json_object *h = json_object_new_object();
		if (clear) {
			uint32_t old = 0;
			(void)sim_fwu_info_read(&s, &old, NULL);
			json_object_object_add(h, "fwu_info_before", json_object_new_int64(old));
			if ((ret = sim_fwu_info_write(&s, 0, &err)) < 0) {
				json_object_put(h);
				goto failed;
			}
		}
		if ((ret = record_event(&s, ev, h, &err)) < 0)
			goto failed;
		snprintf(s.state, sizeof(s.state), "off");
		s.booted_bank = -1;
		char path[SIM_PATH_MAX + 64];
		sim_path(&s, "cmdline", path, sizeof(path));
		if ((ret = fileio_write_atomic(path, "", 0, 0644, &err)) < 0)
			goto failed;
		if ((ret = sim_save(&s, &err)) < 0)
			goto failed;
		goto out;
	}
	if (strcmp(ev, "torn-write") != 0) {
		ret = usage_error("event", "unknown event (reset, power-loss, vbat-loss, tamper, "
					   "torn-write)");
		goto out;
	}
	if (argc - optind != 3) {
		ret = usage_error("event", "torn-write needs metadata1 or metadata2");
		goto out;
	}
	const char *copy = argv[optind + 2];
	if (strcmp(copy, "metadata1") && strcmp(copy, "metadata2")) {
		ret = usage_error("event", "torn-write needs metadata1 or metadata2");
		goto out;
	}
	char disk[SIM_PATH_MAX + 64];
	sim_path(&s, "disk.img", disk, sizeof(disk));
	if ((ret = gpt_read(disk, &gpt, &err)) < 0)
		goto failed;
	const struct gpt_part *p = find_part(gpt, copy, &err);
	if (!p) {
		ret = -ENOENT;
		goto failed;
	}
	struct sim_rng rng;
	sim_rng_init(&rng, s.seed, 100000 + s.events);
	uint8_t buf[FWU_MD_READ_SIZE];
	size_t len;
	size_t md_len = fwu_md_size(s.tfa == BOARD_TFA_V1 ? 1 : 2, s.board->fwu.num_banks,
				    s.board->fwu.num_images);
	if (from) {
		if ((ret = read_input(from, &data, &len, &err)) < 0)
			goto failed;
		if (len > sizeof(buf) || len > p->size || len == 0) {
			ret = abota_error_set(&err, -EINVAL, "%s: %zu bytes do not fit", from, len);
			goto failed;
		}
		memcpy(buf, data, len);
	} else {
		len = md_len;
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)sim_rng_next(&rng);
	}
	if (!have_bytes)
		bytes = 1 + sim_rng_next(&rng) % (len > 1 ? len - 1 : 1);
	if (bytes > len)
		bytes = len;
	if ((ret = disk_write(disk, p->start, buf, (size_t)bytes, &err)) < 0)
		goto failed;
	struct json_object *h = json_object_new_object();
	json_object_object_add(h, "copy", json_object_new_string(copy));
	json_object_object_add(h, "bytes", json_object_new_int64((int64_t)bytes));
	json_object_object_add(h, "of", json_object_new_int64((int64_t)len));
	json_object_object_add(h, "source", json_object_new_string(from ? from : "garbage"));
	if ((ret = record_event(&s, "torn-write", h, &err)) < 0)
		goto failed;
	if ((ret = sim_save(&s, &err)) < 0)
		goto failed;
	printf("torn write: %llu of %zu bytes written to %s\n", (unsigned long long)bytes, len,
	       copy);
	goto out;
failed:
	ret = fail("event", &err);
out:
	free(data);
	gpt_free(gpt);
	sim_free(&s);
	return ret;
}

/* write / erase / fs: board-level flash access (a programmer, a test). */
static int cmd_flash(const char *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bytes", required_argument, NULL, O_BYTES },
		{ 0 },
	};
	uint64_t bytes = 0;
	bool have_bytes = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == O_BYTES && parse_u64(optarg, &bytes) == 0)
			have_bytes = true;
		else
			return usage_error(cmd, "invalid option");
	}
	int nargs = argc - optind;
	if (nargs < 2)
		return usage_error(cmd, "DIR and PARTITION expected");
	struct sim s;
	struct abota_error err = { 0 };
	struct gpt_disk *gpt = NULL;
	char *data = NULL;
	size_t len = 0;
	int ret = 0;
	if (sim_load(argv[optind], &s, &err) < 0)
		return fail(cmd, &err);
	char disk[SIM_PATH_MAX + 64];
	sim_path(&s, "disk.img", disk, sizeof(disk));
	const struct gpt_part *p = NULL;
	if ((ret = gpt_read(disk, &gpt, &err)) < 0 ||
	    !(p = find_part(gpt, argv[optind + 1], &err))) {
		ret = fail(cmd, &err);
		goto out;
	}
	if (!strcmp(cmd, "write")) {
		if (nargs != 3) {
			ret = usage_error(cmd, "DIR PARTITION FILE expected");
			goto out;
		}
		if ((ret = read_input(argv[optind + 2], &data, &len, &err)) < 0)
			goto failed;
		if (len > p->size) {
			ret = abota_error_set(&err, -EFBIG, "%s: %zu bytes do not fit in %s (%llu)",
					      argv[optind + 2], len, p->name,
					      (unsigned long long)p->size);
			goto failed;
		}
		if (have_bytes && bytes < len)
			len = (size_t)bytes;
		if ((ret = disk_write(disk, p->start, data, len, &err)) < 0)
			goto failed;
	} else if (!strcmp(cmd, "erase")) {
		int fd = open(disk, O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			ret = abota_error_set(&err, -errno, "%s: %s", disk, strerror(errno));
			goto failed;
		}
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)p->start,
			      (off_t)p->size) < 0) {
			static uint8_t zero[1 << 16];
			for (uint64_t o = 0; o < p->size && ret == 0; o += sizeof(zero)) {
				size_t n = p->size - o < sizeof(zero) ? (size_t)(p->size - o)
								      : sizeof(zero);
				ret = fileio_pwrite_full(fd, zero, n, p->start + o, &err);
			}
		}
		if (ret == 0 && fdatasync(fd) < 0)
			ret = abota_error_set(&err, -errno, "%s: %s", disk, strerror(errno));
		close(fd);
		if (ret < 0)
			goto failed;
	} else {
		if (nargs < 4) {
			ret = usage_error(cmd, "DIR PARTITION get|put|rm PATH [FILE]");
			goto out;
		}
		const char *op = argv[optind + 2], *fpath = argv[optind + 3];
		if (!strcmp(op, "get") && nargs == 4) {
			if ((ret = ext4img_read(disk, p->start, p->size, fpath, 512u << 20, &data,
						&len, &err)) < 0)
				goto failed;
			fwrite(data, 1, len, stdout);
		} else if (!strcmp(op, "put") && nargs == 5) {
			if ((ret = read_input(argv[optind + 4], &data, &len, &err)) < 0 ||
			    (ret = ext4img_write(disk, p->start, p->size, fpath, data, len, &err)) <
				    0)
				goto failed;
		} else if (!strcmp(op, "rm") && nargs == 4) {
			if ((ret = ext4img_remove(disk, p->start, p->size, fpath, &err)) < 0)
				goto failed;
		} else {
			ret = usage_error(cmd, "DIR PARTITION get|put|rm PATH [FILE]");
			goto out;
		}
	}
	goto out;
failed:
	ret = fail(cmd, &err);
out:
	free(data);
	gpt_free(gpt);
	sim_free(&s);
	return ret;
}

/* --- status ------------------------------------------------------------- */

static struct json_object *bank_json(struct sim *s, const struct gpt_disk *gpt, const char *disk,
				     unsigned bank)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string((char[]){ (char)('A' + bank), 0 }));
	for (size_t i = 0; i < s->board->nparts; i++) {
		const struct board_partition *bp = &s->board->parts[i];
		if (bp->bank != (int)bank)
			continue;
		const struct gpt_part *gp = NULL;
		if (gpt_find_name(gpt, bp->name, &gp, NULL) < 0)
			continue;
		struct json_object *po = json_object_new_object();
		char g[GUID_STR_LEN + 1];
		json_object_object_add(po, "partuuid",
				       json_object_new_string(guid_format(&gp->uuid, g)));
		if (bp->content == BOARD_CONTENT_FIP) {
			uint8_t fip[128];
			int fd = open(disk, O_RDONLY | O_CLOEXEC);
			bool valid = fd >= 0 &&
				     fileio_pread_full(fd, fip, sizeof(fip), gp->start, NULL) == 0 &&
				     sim_fip_valid(fip, sizeof(fip));
			if (fd >= 0)
				close(fd);
			json_object_object_add(po, "content",
					       json_object_new_string(valid ? "fip" : "empty"));
		} else if (bp->content == BOARD_CONTENT_BOOTFS) {
			char *conf = NULL;
			size_t len;
			struct abota_error e = { 0 };
			if (ext4img_read(disk, gp->start, gp->size, "/extlinux/extlinux.conf",
					 64 * 1024, &conf, &len, &e) == 0) {
				char *ap = strstr(conf, "APPEND ");
				if (ap) {
					char *nl = strchr(ap, '\n');
					if (nl)
						*nl = 0;
					json_object_object_add(po, "append",
							       json_object_new_string(ap + 7));
				}
				json_object_object_add(po, "content", json_object_new_string("ext4"));
			} else {
				json_object_object_add(po, "content",
						       json_object_new_string(e.msg));
			}
			free(conf);
		} else if (bp->content != BOARD_CONTENT_NONE) {
			bool fs = ext4img_probe(disk, gp->start, gp->size, NULL) == 0;
			json_object_object_add(po, "content",
					       json_object_new_string(fs ? "ext4" : "empty"));
		}
		json_object_object_add(o, bp->name, po);
	}
	return o;
}

static int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output-format", required_argument, NULL, O_FORMAT },
		{ 0 },
	};
	int fmt = 0; /* 0 readable, 1 json, 2 pretty */
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != O_FORMAT)
			return usage_error("status", "invalid option");
		if (!strcmp(optarg, "readable"))
			fmt = 0;
		else if (!strcmp(optarg, "json"))
			fmt = 1;
		else if (!strcmp(optarg, "json-pretty"))
			fmt = 2;
		else
			return usage_error("status", "unknown output format");
	}
	if (argc - optind != 1)
		return usage_error("status", "DIR expected");
	struct sim s;
	struct abota_error err = { 0 };
	if (sim_load(argv[optind], &s, &err) < 0)
		return fail("status", &err);
	char disk[SIM_PATH_MAX + 64], path[SIM_PATH_MAX + 64];
	sim_path(&s, "disk.img", disk, sizeof(disk));
	struct json_object *root = json_object_new_object();
	json_object_object_add(root, "board", json_object_new_string(s.board->name));
	json_object_object_add(root, "seed", json_object_new_int64((int64_t)s.seed));
	json_object_object_add(root, "tfa", json_object_new_string(board_tfa_name(s.tfa)));
	json_object_object_add(root, "uboot", json_object_new_string(
						      s.uboot == SIM_UBOOT_UPSTREAM ? "upstream" : "st"));
	json_object_object_add(root, "state", json_object_new_string(s.state));
	json_object_object_add(root, "booted_bank", s.booted_bank >= 0
							    ? json_object_new_int64(s.booted_bank)
							    : NULL);
	json_object_object_add(root, "boots", json_object_new_int64((int64_t)s.boots));
	uint32_t reg = 0;
	struct json_object *fi = json_object_new_object();
	if (sim_fwu_info_read(&s, &reg, NULL) == 0) {
		json_object_object_add(fi, "raw", json_object_new_int64(reg));
		json_object_object_add(fi, "boot_index", json_object_new_int64(reg & 0xF));
		json_object_object_add(fi, "trial_counter", json_object_new_int64((reg >> 4) & 0xF));
	}
	json_object_object_add(fi, "register", json_object_new_string(s.board->fwu_info_register));
	json_object_object_add(fi, "address", json_object_new_int64(
						      (int64_t)s.board->fwu_info_address));
	json_object_object_add(root, "fwu_info", fi);
	uint32_t otp = 0;
	if (sim_otp_nvctr_read(&s, &otp, NULL) == 0) {
		struct json_object *oj = json_object_new_object();
		json_object_object_add(oj, "nv_counter", json_object_new_int64(otp));
		json_object_object_add(oj, "budget", json_object_new_int64(SIM_OTP_NVCTR_MAX));
		json_object_object_add(root, "otp", oj);
	}

	struct fwu_md_config cfg = board_fwu_config(s.board);
	cfg.version = s.tfa == BOARD_TFA_V1 ? 1 : 2;
	struct fwu_store *st = NULL;
	struct fwu_store_state *ss = malloc(sizeof(*ss));
	struct json_object *mdj = json_object_new_object();
	struct abota_error me = { 0 };
	if (ss && fwu_store_open_disk(disk, &cfg, &st, &me) == 0 && fwu_store_read(st, ss, &me) == 0) {
		struct json_object *copies = json_object_new_array();
		for (unsigned i = 0; i < ss->ncopies; i++) {
			struct json_object *co = json_object_new_object();
			json_object_object_add(co, "name",
					       json_object_new_string(fwu_store_copy_name(st, i)));
			json_object_object_add(co, "valid", json_object_new_boolean(ss->copy[i].valid));
			if (!ss->copy[i].valid)
				json_object_object_add(co, "error",
						       json_object_new_string(ss->copy[i].error));
			json_object_array_add(copies, co);
		}
		json_object_object_add(mdj, "copies", copies);
		json_object_object_add(mdj, "needs_repair", json_object_new_boolean(ss->needs_repair));
		json_object_object_add(mdj, "in_effect",
				       ss->winner >= 0 ? json_object_new_string(fwu_store_copy_name(
								 st, (unsigned)ss->winner))
						       : NULL);
		json_object_object_add(mdj, "metadata", ss->winner >= 0
								? fwu_md_to_json(&ss->copy[ss->winner].md)
								: NULL);
	} else {
		json_object_object_add(mdj, "error", json_object_new_string(me.msg));
	}
	free(ss);
	fwu_store_free(st);
	json_object_object_add(root, "metadata", mdj);

	struct gpt_disk *gpt = NULL;
	struct json_object *banks = json_object_new_array();
	if (gpt_read(disk, &gpt, NULL) == 0)
		for (unsigned b = 0; b < s.board->fwu.num_banks; b++)
			json_object_array_add(banks, bank_json(&s, gpt, disk, b));
	gpt_free(gpt);
	json_object_object_add(root, "banks", banks);

	char *text = NULL;
	size_t len;
	sim_path(&s, "cmdline", path, sizeof(path));
	if (fileio_read_all(path, 64 * 1024, &text, &len, NULL) == 0) {
		while (len && text[len - 1] == '\n')
			text[--len] = 0;
		json_object_object_add(root, "cmdline", json_object_new_string(text));
		free(text);
		text = NULL;
	}
	struct json_object *hist = json_object_new_array();
	sim_path(&s, "history.log", path, sizeof(path));
	if (fileio_read_all(path, 64u << 20, &text, &len, NULL) == 0) {
		char *save = NULL;
		for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			struct json_object *e = json_tokener_parse(l);
			if (e)
				json_object_array_add(hist, e);
		}
		free(text);
	}
	json_object_object_add(root, "history", hist);

	if (fmt) {
		printf("%s\n", json_object_to_json_string_ext(
				       root, fmt == 2 ? JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN));
	} else {
		printf("board      %s - %s (seed %llu)\n", s.board->name, s.board->description,
		       (unsigned long long)s.seed);
		printf("firmware   TF-A %s, U-Boot %s\n", board_tfa_name(s.tfa),
		       s.uboot == SIM_UBOOT_UPSTREAM ? "upstream" : "st");
		if (s.booted_bank >= 0)
			printf("state      %s, bank %c (power-on %lu)\n", s.state, 'A' + s.booted_bank,
			       s.boots);
		else
			printf("state      %s (power-ons %lu)\n", s.state, s.boots);
		printf("FWU_INFO   0x%08x (%s @ 0x%08llx): boot index %u, trial counter %u\n", reg,
		       s.board->fwu_info_register, (unsigned long long)s.board->fwu_info_address,
		       reg & 0xF, (reg >> 4) & 0xF);
		printf("OTP        anti-rollback counter %u of %u\n", otp, SIM_OTP_NVCTR_MAX);
		struct json_object *v;
		if (json_object_object_get_ex(mdj, "error", &v)) {
			printf("metadata   %s\n", json_object_get_string(v));
		} else {
			struct json_object *copies, *md, *ie;
			json_object_object_get_ex(mdj, "copies", &copies);
			printf("metadata  ");
			for (size_t i = 0; i < json_object_array_length(copies); i++) {
				struct json_object *co = json_object_array_get_idx(copies, i), *n, *ok,
						   *er;
				json_object_object_get_ex(co, "name", &n);
				json_object_object_get_ex(co, "valid", &ok);
				printf(" %s %s", json_object_get_string(n),
				       json_object_get_boolean(ok) ? "valid" : "INVALID");
				if (json_object_object_get_ex(co, "error", &er))
					printf(" (%s)", json_object_get_string(er));
				printf(i + 1 < json_object_array_length(copies) ? "," : "\n");
			}
			json_object_object_get_ex(mdj, "in_effect", &ie);
			json_object_object_get_ex(mdj, "metadata", &md);
			if (md) {
				struct json_object *a, *p, *bk;
				json_object_object_get_ex(md, "active_index", &a);
				json_object_object_get_ex(md, "previous_active_index", &p);
				json_object_object_get_ex(md, "banks", &bk);
				printf("           in effect: %s; active %c, previous %c;",
				       json_object_get_string(ie), 'A' + json_object_get_int(a),
				       'A' + json_object_get_int(p));
				for (size_t i = 0; i < json_object_array_length(bk); i++) {
					struct json_object *bo = json_object_array_get_idx(bk, i), *n,
							   *st2;
					json_object_object_get_ex(bo, "name", &n);
					json_object_object_get_ex(bo, "state", &st2);
					printf(" %s %s", json_object_get_string(n),
					       json_object_get_string(st2));
				}
				printf("\n");
			} else {
				printf("           no valid copy: TF-A BL2 panics (bricked)\n");
			}
		}
		printf("banks\n");
		for (size_t i = 0; i < json_object_array_length(banks); i++) {
			struct json_object *bo = json_object_array_get_idx(banks, i);
			json_object_object_foreach(bo, key, val)
			{
				if (!strcmp(key, "name")) {
					printf("  %s\n", json_object_get_string(val));
					continue;
				}
				struct json_object *ct, *ap;
				printf("    %-11s", key);
				if (json_object_object_get_ex(val, "content", &ct))
					printf(" %s", json_object_get_string(ct));
				if (json_object_object_get_ex(val, "append", &ap))
					printf(": %s", json_object_get_string(ap));
				printf("\n");
			}
		}
		struct json_object *cl;
		if (json_object_object_get_ex(root, "cmdline", &cl))
			printf("cmdline    %s\n", json_object_get_string(cl)[0]
						      ? json_object_get_string(cl)
						      : "(no system running)");
		size_t nh = json_object_array_length(hist);
		printf("history    (%zu entries%s)\n", nh, nh > 12 ? ", last 12" : "");
		for (size_t i = nh > 12 ? nh - 12 : 0; i < nh; i++) {
			struct json_object *e = json_object_array_get_idx(hist, i), *ev, *x;
			json_object_object_get_ex(e, "event", &ev);
			const char *evs = json_object_get_string(ev);
			if (!strcmp(evs, "boot")) {
				struct json_object *n, *oc, *bk, *ci, *co;
				json_object_object_get_ex(e, "n", &n);
				json_object_object_get_ex(e, "outcome", &oc);
				json_object_object_get_ex(e, "bank", &bk);
				printf("  power-on %-3d %-8s", json_object_get_int(n),
				       json_object_get_string(oc));
				if (bk)
					printf(" bank %c", 'A' + json_object_get_int(bk));
				if (json_object_object_get_ex(e, "counter_in", &ci) &&
				    json_object_object_get_ex(e, "counter_out", &co))
					printf("  counter %d -> %d", json_object_get_int(ci),
					       json_object_get_int(co));
				if (json_object_object_get_ex(e, "reason", &x))
					printf("  (%s)", json_object_get_string(x));
				printf("\n");
				struct json_object *acts;
				if (json_object_object_get_ex(e, "actions", &acts))
					for (size_t k = 0; k < json_object_array_length(acts); k++)
						printf("               %s\n",
						       json_object_get_string(
							       json_object_array_get_idx(acts, k)));
			} else {
				printf("  %s\n", json_object_to_json_string_ext(
							 e, JSON_C_TO_STRING_PLAIN));
			}
		}
	}
	json_object_put(root);
	sim_free(&s);
	return 0;
}

int main(int argc, char **argv)
{
	/* Reproducible file systems, and writes are never cut unless asked:
	 * the simulator's own power cuts come from its options. */
	setenv("E2FSPROGS_FAKE_TIME", "1767225600", 1);
	powercut_plan(0, -1);
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *cmd = argv[1];
	argc--;
	argv++;
	if (!strcmp(cmd, "boards"))
		return cmd_boards();
	if (!strcmp(cmd, "create"))
		return cmd_create(argc, argv);
	if (!strcmp(cmd, "boot"))
		return cmd_boot(argc, argv);
	if (!strcmp(cmd, "status"))
		return cmd_status(argc, argv);
	if (!strcmp(cmd, "event"))
		return cmd_event(argc, argv);
	if (!strcmp(cmd, "write") || !strcmp(cmd, "erase") || !strcmp(cmd, "fs"))
		return cmd_flash(cmd, argc, argv);
	fprintf(stderr, "abota-sim: unknown command '%s'\n%s", cmd, usage_text);
	return 2;
}
