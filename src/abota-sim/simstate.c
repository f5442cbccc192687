/* simstate.c - the simulator directory: state file, history, FWU_INFO
 * register, console, PRNG. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "abota/fileio.h"
#include "abota/keyfile.h"
#include "sim.h"

void sim_path(const struct sim *s, const char *name, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s", s->dir, name);
}

void sim_rng_init(struct sim_rng *r, uint64_t seed, uint64_t stream)
{
	r->x = seed * 0x9E3779B97F4A7C15ull ^ (stream + 1) * 0xD1B54A32D192ED03ull;
}

uint64_t sim_rng_next(struct sim_rng *r)
{
	uint64_t z = (r->x += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

void sim_rng_guid(struct sim_rng *r, struct guid *g)
{
	uint64_t a = sim_rng_next(r), b = sim_rng_next(r);
	memcpy(g->b, &a, 8);
	memcpy(g->b + 8, &b, 8);
	g->b[7] = (uint8_t)((g->b[7] & 0x0f) | 0x40); /* version 4 (EFI order: byte 7) */
	g->b[8] = (uint8_t)((g->b[8] & 0x3f) | 0x80); /* variant */
}

static const char *uboot_name(enum sim_uboot u)
{
	return u == SIM_UBOOT_UPSTREAM ? "upstream" : "st";
}

int sim_load(const char *dir, struct sim *s, struct abota_error *err)
{
	memset(s, 0, sizeof(*s));
	s->booted_bank = -1;
	if (strlen(dir) >= sizeof(s->dir) - 32)
		return abota_error_set(err, -ENAMETOOLONG, "%s: path too long", dir);
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	char path[SIM_PATH_MAX + 64];
	struct keyfile *kf = NULL;
	const char *v;
	uint64_t n;
	sim_path(s, "sim.state", path, sizeof(path));
	int ret = keyfile_load(path, 64 * 1024, &kf, err);
	if (ret < 0) {
		if (ret == -ENOENT)
			abota_error_set(err, ret, "%s: not a simulated board (no sim.state; see "
					"'abota-sim create')", dir);
		return ret;
	}
	if ((ret = keyfile_get_u64(kf, "sim", "seed", &s->seed, err)) < 0)
		goto bad;
	if ((ret = keyfile_get_string(kf, "sim", "tfa", &v, err)) < 0)
		goto bad;
	if ((ret = board_tfa_parse(v, &s->tfa, err)) < 0)
		goto bad;
	if ((ret = keyfile_get_string(kf, "sim", "uboot", &v, err)) < 0)
		goto bad;
	s->uboot = strcmp(v, "upstream") == 0 ? SIM_UBOOT_UPSTREAM : SIM_UBOOT_ST;
	if ((ret = keyfile_get_u64(kf, "sim", "boots", &n, err)) < 0)
		goto bad;
	s->boots = n;
	if ((ret = keyfile_get_u64(kf, "sim", "events", &n, err)) < 0)
		goto bad;
	s->events = n;
	if ((ret = keyfile_get_string(kf, "sim", "state", &v, err)) < 0)
		goto bad;
	snprintf(s->state, sizeof(s->state), "%s", v);
	ret = keyfile_get_u64(kf, "sim", "booted-bank", &n, err);
	if (ret == 0)
		s->booted_bank = n < FWU_MD_MAX_BANKS ? (int)n : -1;
	else if (ret != -ENOENT)
		goto bad;
	keyfile_free(kf);
	kf = NULL;
	sim_path(s, "board.conf", path, sizeof(path));
	ret = board_load(path, &s->board, err);
	if (ret < 0)
		return ret;
	/* The disk must still fit the layout (a truncated or replaced image). */
	struct stat st;
	sim_path(s, "disk.img", path, sizeof(path));
	if (stat(path, &st) < 0) {
		ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
	} else if ((ret = board_check_disk_size(s->board, (uint64_t)st.st_size, err)) < 0) {
		abota_error_prefix(err, "%s", path);
	}
	if (ret < 0) {
		board_free(s->board);
		s->board = NULL;
		return ret;
	}
	return 0;
bad:
	if (ret == -ENOENT)
		ret = abota_error_set(err, -EINVAL, "%s: incomplete", path);
	keyfile_free(kf);
	return ret;
}

int sim_save(const struct sim *s, struct abota_error *err)
{
	char path[SIM_PATH_MAX + 64];
	struct keyfile *kf = keyfile_new("sim.state");
	char *data = NULL;
	size_t len;
	int ret = -ENOMEM;
	if (!kf)
		return abota_error_set(err, -ENOMEM, "out of memory");
	if (keyfile_set_string(kf, "sim", "board", s->board->name) < 0 ||
	    keyfile_set_u64(kf, "sim", "seed", s->seed) < 0 ||
	    keyfile_set_string(kf, "sim", "tfa", board_tfa_name(s->tfa)) < 0 ||
	    keyfile_set_string(kf, "sim", "uboot", uboot_name(s->uboot)) < 0 ||
	    keyfile_set_u64(kf, "sim", "boots", s->boots) < 0 ||
	    keyfile_set_u64(kf, "sim", "events", s->events) < 0 ||
	    keyfile_set_string(kf, "sim", "state", s->state) < 0 ||
	    (s->booted_bank >= 0 &&
	     keyfile_set_u64(kf, "sim", "booted-bank", (uint64_t)s->booted_bank) < 0) ||
	    keyfile_to_data(kf, &data, &len) < 0) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	sim_path(s, "sim.state", path, sizeof(path));
	ret = fileio_write_atomic(path, data, len, 0644, err);
out:
	free(data);
	keyfile_free(kf);
	return ret;
}

void sim_free(struct sim *s)
{
	board_free(s->board);
	s->board = NULL;
	if (s->console)
		fclose(s->console);
	s->console = NULL;
}

int sim_history(const struct sim *s, void *obj, struct abota_error *err)
{
	char path[SIM_PATH_MAX + 64];
	sim_path(s, "history.log", path, sizeof(path));
	const char *line = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN);
	int ret = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	ret = fileio_write_full(fd, line, strlen(line), err);
	if (ret == 0)
		ret = fileio_write_full(fd, "\n", 1, err);
	close(fd);
out:
	json_object_put(obj);
	return ret;
}

int sim_fwu_info_read(const struct sim *s, uint32_t *val, struct abota_error *err)
{
	char path[SIM_PATH_MAX + 64];
	char *data = NULL;
	size_t len;
	sim_path(s, "fwu_info", path, sizeof(path));
	int ret = fileio_read_all(path, 16, &data, &len, err);
	if (ret < 0)
		return ret;
	if (len != 4) {
		free(data);
		return abota_error_set(err, -EIO, "%s: %zu bytes, a 32-bit register has 4", path, len);
	}
	const uint8_t *p = (const uint8_t *)data;
	*val = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	free(data);
	return 0;
}

int sim_fwu_info_write(const struct sim *s, uint32_t val, struct abota_error *err)
{
	char path[SIM_PATH_MAX + 64];
	uint8_t b[4] = { (uint8_t)val, (uint8_t)(val >> 8), (uint8_t)(val >> 16),
			 (uint8_t)(val >> 24) };
	sim_path(s, "fwu_info", path, sizeof(path));
	return fileio_write_atomic(path, b, 4, 0644, err);
}

int sim_otp_nvctr_read(const struct sim *s, uint32_t *val, struct abota_error *err)
{
	char path[SIM_PATH_MAX + 64];
	char *data = NULL;
	size_t len = 0;
	struct abota_error e = { 0 };
	sim_path(s, "otp_nvctr", path, sizeof(path));
	int ret = fileio_read_all(path, 16, &data, &len, &e);
	if (ret == -ENOENT) {
		*val = 0; /* blank fuses */
		return 0;
	}
	if (ret < 0)
		return abota_error_set(err, ret, "%s", e.msg);
	const uint8_t *p = (const uint8_t *)data;
	uint32_t v = len == 4 ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
					(uint32_t)p[3] << 24
			      : 0;
	free(data);
	if (len != 4 || v > SIM_OTP_NVCTR_MAX)
		return abota_error_set(err, -EIO, "%s: not an OTP counter (4 bytes, at most %u)",
				       path, SIM_OTP_NVCTR_MAX);
	*val = v;
	return 0;
}

int sim_otp_nvctr_advance(const struct sim *s, uint32_t val, struct abota_error *err)
{
	char path[SIM_PATH_MAX + 64];
	uint32_t cur;
	int ret = sim_otp_nvctr_read(s, &cur, err);
	if (ret < 0)
		return ret;
	if (val > SIM_OTP_NVCTR_MAX)
		return abota_error_set(err, -ERANGE, "OTP counter: %u is beyond the budget of %u",
				       val, SIM_OTP_NVCTR_MAX);
	if (val <= cur)
		return 0;
	uint8_t b[4] = { (uint8_t)val, (uint8_t)(val >> 8), (uint8_t)(val >> 16),
			 (uint8_t)(val >> 24) };
	sim_path(s, "otp_nvctr", path, sizeof(path));
	return fileio_write_atomic(path, b, 4, 0644, err);
}

void sim_console(struct sim *s, const char *fmt, ...)
{
	va_list ap;
	if (!s->quiet) {
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		fputc('\n', stdout);
	}
	if (s->console) {
		va_start(ap, fmt);
		vfprintf(s->console, fmt, ap);
		va_end(ap);
		fputc('\n', s->console);
	}
}
