#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abota/fileio.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/abota-fileio-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static int count_entries(void)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void test_atomic_replace(void **state)
{
	(void)state;
	char path[128];
	snprintf(path, sizeof(path), "%s/status", dir);
	assert_int_equal(fileio_write_atomic(path, "one", 3, 0644, NULL), 0);
	assert_int_equal(fileio_write_atomic(path, "second", 6, 0600, NULL), 0);
	char *data;
	size_t len;
	assert_int_equal(fileio_read_all(path, 100, &data, &len, NULL), 0);
	assert_int_equal(len, 6);
	assert_string_equal(data, "second");
	free(data);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* no temp files left behind */
	assert_int_equal(count_entries(), 1);
}

static void test_atomic_failure_keeps_old(void **state)
{
	(void)state;
	char path[128];
	snprintf(path, sizeof(path), "%s/nodir/x", dir);
	struct abota_error err = { 0 };
	assert_true(fileio_write_atomic(path, "x", 1, 0644, &err) < 0);
	assert_non_null(strstr(err.msg, "cannot create temporary file"));
}

static void test_read_limits(void **state)
{
	(void)state;
	char path[128];
	snprintf(path, sizeof(path), "%s/big", dir);
	assert_int_equal(fileio_write_atomic(path, "0123456789", 10, 0644, NULL), 0);
	char *data = (char *)0x1;
	size_t len = 77;
	struct abota_error err = { 0 };
	assert_int_equal(fileio_read_all(path, 9, &data, &len, &err), -EFBIG);
	/* out-parameters untouched on failure */
	assert_ptr_equal(data, (char *)0x1);
	assert_int_equal(len, 77);
	assert_non_null(strstr(err.msg, "too large"));
	assert_int_equal(fileio_read_all(dir, 9, &data, &len, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a regular file"));
}

/* procfs files say st_size 0 and have content (/proc/cmdline, the boot
 * id): read to EOF, still bounded. */
static void test_read_procfs(void **state)
{
	(void)state;
	char *data = NULL;
	size_t len = 0;
	assert_int_equal(fileio_read_all("/proc/sys/kernel/random/boot_id", 256, &data, &len, NULL),
			 0);
	assert_int_equal(len, 37); /* a UUID and a newline */
	assert_int_equal(data[36], '\n');
	free(data);
	assert_int_equal(fileio_read_all("/proc/self/status", 64, &data, &len, NULL), -EFBIG);
	assert_int_equal(fileio_read_all("/proc/cmdline", 1 << 16, &data, &len, NULL), 0);
	assert_true(len > 0 && data[len] == '\0');
	free(data);
}

/* Zeroing [off, off + len) of a file of 0xAB bytes in dir d: only that
 * range changes, the size stays. */
static void zero_range_in(const char *d)
{
	enum { SIZE = 1 << 20 };
	char path[128];
	snprintf(path, sizeof(path), "%s/zero-XXXXXX", d);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	uint8_t *buf = malloc(SIZE);
	memset(buf, 0xAB, SIZE);
	assert_int_equal(fileio_pwrite_full(fd, buf, SIZE, 0, NULL), 0);
	uint64_t off = 3 * 4096, len = 200000; /* the end is not block aligned */
	assert_int_equal(fileio_zero_range(fd, off, len, NULL), 0);
	assert_int_equal(fileio_zero_range(fd, 5, 0, NULL), 0); /* nothing */
	uint8_t *got = malloc(SIZE);
	assert_int_equal(fileio_pread_full(fd, got, SIZE, 0, NULL), 0);
	memset(buf + off, 0, len);
	assert_memory_equal(got, buf, SIZE);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, SIZE);
	close(fd);
	unlink(path);
	free(buf);
	free(got);
}

/* A block device (BLKZEROOUT): a loop device over a file of 0xAB bytes,
 * when running as root. */
static void zero_range_blockdev(void)
{
	enum { SIZE = 1 << 20 };
	char img[128], cmd[256], dev[64] = "";
	if (geteuid() != 0)
		return;
	snprintf(img, sizeof(img), "%s/loop.img", dir);
	FILE *f = fopen(img, "w");
	assert_non_null(f);
	uint8_t *buf = malloc(SIZE);
	memset(buf, 0xAB, SIZE);
	assert_int_equal(fwrite(buf, 1, SIZE, f), SIZE);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "losetup -f --show '%s' 2>/dev/null", img);
	FILE *p = popen(cmd, "r");
	if (!p || !fgets(dev, sizeof(dev), p) || strncmp(dev, "/dev/loop", 9) != 0) {
		if (p)
			pclose(p);
		free(buf);
		return; /* no loop devices here */
	}
	pclose(p);
	dev[strcspn(dev, "\n")] = '\0';
	int fd = open(dev, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fileio_zero_range(fd, 8192, 65536, NULL), 0);
	assert_int_equal(fileio_zero_range(fd, 100000, 1000, NULL), 0); /* unaligned: written */
	uint8_t *got = malloc(SIZE);
	assert_int_equal(fileio_pread_full(fd, got, SIZE, 0, NULL), 0);
	memset(buf + 8192, 0, 65536);
	memset(buf + 100000, 0, 1000);
	assert_memory_equal(got, buf, SIZE);
	close(fd);
	snprintf(cmd, sizeof(cmd), "losetup -d '%s'", dev);
	assert_int_equal(system(cmd), 0);
	free(buf);
	free(got);
}

static void test_zero_range(void **state)
{
	(void)state;
	zero_range_in(dir);        /* FALLOC_FL_ZERO_RANGE where the file system has it */
	zero_range_in("/dev/shm"); /* tmpfs: no ZERO_RANGE, zeros are written */
	zero_range_blockdev();
	assert_int_equal(fileio_zero_range(-1, 0, 1, NULL), -EBADF);
	/* a character device: neither call applies, zeros are written */
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_true(null >= 0);
	errno = ENOSPC; /* a stale errno must not be taken for the call's */
	assert_int_equal(fileio_zero_range(null, 0, 100000, NULL), 0);
	close(null);
	assert_int_equal(fileio_zero_range(0, UINT64_MAX - 5, 10, NULL), -EOVERFLOW);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_atomic_replace),
		cmocka_unit_test(test_atomic_failure_keeps_old),
		cmocka_unit_test(test_read_limits),
		cmocka_unit_test(test_read_procfs),
		cmocka_unit_test(test_zero_range),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
