/* sim.h - abota-sim: STM32MP board simulator (TF-A BL2 + ST U-Boot + kernel
 * hand-over) on a GPT disk image.  See docs/fwu.md "Simulator".
 *
 * A simulated board is a directory:
 *   board.conf   copy of the board profile it was created from
 *   sim.state    key file: seed, firmware flavours, power-on count, state
 *   disk.img     the boot disk (GPT, sparse)
 *   fwu_info     the TAMP FWU_INFO backup register, 4 bytes little-endian
 *   otp_nvctr    the OTP anti-rollback (trusted NV) counter, 4 bytes little-
 *                endian; absent = 0 (fuses blank).  Monotonic, at most
 *                SIM_OTP_NVCTR_MAX; BL2 advances it only for an accepted bank
 *   cmdline      kernel command line of the running system ("/proc/cmdline")
 *   console.log  everything the firmware printed, per power-on
 *   history.log  one JSON object per event / power-on (machine readable)
 *   system.conf  abota configuration pointing at the files above
 * Only the boundary we cannot run is mocked: the TAMP register is a file and
 * the flash is the disk image; everything the firmware reads is read from
 * the image with the same rules (GPT lookups, metadata checks, ext4 bootfs).
 */
#ifndef ABOTA_SIM_H
#define ABOTA_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "abota/board.h"
#include "abota/error.h"

#define SIM_PATH_MAX 4096

enum sim_uboot {
	SIM_UBOOT_ST,       /* ST v2023.10-stm32mp: fallback keeps the failed bank VALID */
	SIM_UBOOT_UPSTREAM, /* upstream >= v2026.07: marks it INVALID first */
};

struct sim {
	char dir[SIM_PATH_MAX];
	struct board *board;
	uint64_t seed;
	enum board_tfa tfa;
	enum sim_uboot uboot;
	unsigned long boots;  /* power-ons so far */
	unsigned long events; /* events so far (PRNG stream selector) */
	char state[16];       /* off | running | failed | hung | panic */
	int booted_bank;      /* bank of the running system, -1 none */
	FILE *console;        /* open during a boot */
	bool quiet;           /* do not echo the console to stdout */
};

/* Paths inside the simulator directory. */
void sim_path(const struct sim *s, const char *name, char *buf, size_t cap);

int sim_load(const char *dir, struct sim *s, struct abota_error *err);
int sim_save(const struct sim *s, struct abota_error *err);
void sim_free(struct sim *s);

/* History: appends one JSON line (the object is consumed). */
int sim_history(const struct sim *s, void *json_object, struct abota_error *err);

/* FWU_INFO register file. */
int sim_fwu_info_read(const struct sim *s, uint32_t *val, struct abota_error *err);
int sim_fwu_info_write(const struct sim *s, uint32_t val, struct abota_error *err);

/* OTP anti-rollback counter (STM32MP1: MAX_MONOTONIC_VALUE 32, one fuse
 * bit per step, so a board has 32 increments for its whole life).  Writes
 * never lower it (fuses cannot be unburnt) and refuse values above the
 * budget. */
#define SIM_OTP_NVCTR_MAX 32u
int sim_otp_nvctr_read(const struct sim *s, uint32_t *val, struct abota_error *err);
int sim_otp_nvctr_advance(const struct sim *s, uint32_t val, struct abota_error *err);

/* Deterministic PRNG (splitmix64) for one operation: seeded with the board
 * seed and a stream number, so every run of a sequence is identical. */
struct sim_rng {
	uint64_t x;
};
void sim_rng_init(struct sim_rng *r, uint64_t seed, uint64_t stream);
uint64_t sim_rng_next(struct sim_rng *r);
void sim_rng_guid(struct sim_rng *r, struct guid *g); /* random v4 GUID */

/* Console output of the emulated firmware: stdout (unless quiet) and the
 * console log. */
void sim_console(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* create.c */
struct sim_create_opts {
	uint64_t image_size; /* 0 = board default */
	uint64_t seed;
	int tfa;        /* -1 = board */
	int md_version; /* 0 = board (or 1 when tfa is v1) */
	enum sim_uboot uboot;
	bool full;  /* program both banks (ST's "-full" flash layout) */
	bool force; /* replace an existing simulator directory */
};
int sim_create(const char *board, const char *dir, const struct sim_create_opts *o,
	       struct abota_error *err);

/* firmware.c: one power-on. */
struct sim_boot_opts {
	int tfa;   /* -1 = as created */
	int uboot; /* -1 = as created */
	bool fail_boot;
	bool hang;
	unsigned long cut_uboot_write; /* power cut at U-Boot's N-th write point */
	long cut_bytes;
};
/* Result of a power-on. */
struct sim_boot_result {
	char outcome[16]; /* running | failed | hung | panic */
	int bank;         /* booted bank, -1 when BL2 panicked */
	uint32_t fwu_info_before, fwu_info_after;
	bool uboot_wrote;
	uint32_t otp_nvctr_before, otp_nvctr_after;
	char reason[512];
};
int sim_boot(struct sim *s, const struct sim_boot_opts *o, struct sim_boot_result *res,
	     struct abota_error *err);

/* ext4img.c: ext4 file systems inside the disk image (libext2fs, no mount). */
struct ext4img_file {
	const char *path;
	const void *data;
	size_t len;
};
int ext4img_create(const char *image, uint64_t offset, uint64_t size, const char *label,
		   const struct guid *uuid, const struct ext4img_file *files, size_t nfiles,
		   struct abota_error *err);
int ext4img_read(const char *image, uint64_t offset, uint64_t size, const char *path,
		 size_t max, char **data, size_t *len, struct abota_error *err);
int ext4img_write(const char *image, uint64_t offset, uint64_t size, const char *path,
		  const void *data, size_t len, struct abota_error *err);
int ext4img_remove(const char *image, uint64_t offset, uint64_t size, const char *path,
		   struct abota_error *err);
int ext4img_probe(const char *image, uint64_t offset, uint64_t size, struct abota_error *err);

/* Contents the simulator generates. */
int sim_fip_image(unsigned bank, uint8_t *buf, size_t cap, size_t *len);
bool sim_fip_valid(const uint8_t *buf, size_t len);
/* The FIP's anti-rollback counter: the platform-defined bits 32-47 of the
 * ToC header flags (bytes 12-13).  A real FIP carries it in the trusted key
 * certificate's TrustedNvCounter extension; the simulator has no
 * certificates, so the header carries it. */
uint32_t sim_fip_nvctr(const uint8_t *buf, size_t len);
char *sim_extlinux_conf(const struct board *b, const struct guid *rootfs_uuid, char bank_letter);

#endif
