/* pagecache.h - for tests: how much of a file the page cache holds. */
#ifndef ABOTA_TEST_PAGECACHE_H
#define ABOTA_TEST_PAGECACHE_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Pages of [off, off+len) in the page cache (off page-aligned), or -1. */
static inline long pagecache_resident(int fd, uint64_t off, uint64_t len)
{
	if (len == 0)
		return 0;
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)off);
	if (p == MAP_FAILED)
		return -1;
	size_t n = (len + (uint64_t)page - 1) / (uint64_t)page;
	unsigned char *vec = malloc(n);
	long res = -1;
	if (vec && mincore(p, len, vec) == 0) {
		res = 0;
		for (size_t i = 0; i < n; i++)
			res += vec[i] & 1;
	}
	free(vec);
	munmap(p, len);
	return res;
}

/* Whether dropping a file's clean pages works in directory dir (not on
 * tmpfs, whose pages are the file): a scratch file written, synced,
 * dropped and looked at. */
static inline int pagecache_can_drop_in(const char *dir)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/pagecache-XXXXXX", dir);
	int fd = mkstemp(path);
	if (fd < 0)
		return 0;
	unlink(path);
	static const char block[16384];
	int ok = write(fd, block, sizeof(block)) == (ssize_t)sizeof(block) && fdatasync(fd) == 0 &&
		 posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0 &&
		 pagecache_resident(fd, 0, sizeof(block)) == 0;
	close(fd);
	return ok;
}

#endif
