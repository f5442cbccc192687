#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_atomic_replace),
		cmocka_unit_test(test_atomic_failure_keeps_old),
		cmocka_unit_test(test_read_limits),
		cmocka_unit_test(test_read_procfs),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
