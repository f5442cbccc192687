/* fuzz_slot_status.c - slot_status_load of a hostile central status file
 * (there is no in-memory entry point: the input goes to a memfd that is
 * loaded by its /proc/self/fd path), then lookups, rank and bookkeeping in
 * memory.  Never saved. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "abota/slot_status.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	char path[64];
	int fd = fuzz_memfd_path(data, size, "fuzz-status", path, sizeof(path));
	struct abota_error err = { 0 };
	struct slot_status_store *st = NULL;
	if (slot_status_load(path, &st, &err) == 0) {
		(void)slot_status_was_broken(st);
		(void)slot_status_boot_id(st);
		static const char *const names[] = { "rootfs.0", "rootfs.1", "bootloader.0", "" };
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			const struct slot_status *s = slot_status_find(st, names[i]);
			if (s && s->status)
				(void)strlen(s->status);
		}
		struct slot a = { 0 }, b = { 0 };
		a.name = "rootfs.0";
		b.name = "rootfs.1";
		(void)slot_status_rank(st, &a, &b);
		(void)slot_status_rank(st, &b, &a);
		struct slot_status *s = slot_status_get(st, "rootfs.1");
		if (s) {
			(void)slot_status_set(&s->status, "ok");
			slot_status_clear(s);
		}
		slot_status_store_free(st);
	}
	close(fd);
	return 0;
}
