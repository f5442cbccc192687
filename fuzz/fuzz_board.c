/* fuzz_board.c - board_parse of a board profile from memory, then the
 * layout queries, FWU GUID filling and board_parse_size on every value. */
#include <stdlib.h>
#include <string.h>

#include "abota/board.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	struct abota_error err = { 0 };
	struct board *b = NULL;
	if (board_parse((const char *)data, size, "fuzz/board.conf", &b, &err) == 0) {
		(void)board_min_disk_size(b);
		(void)board_check_disk_size(b, b->disk_size, &err);
		struct fwu_md_config cfg = board_fwu_config(b);
		for (unsigned bank = 0; bank < cfg.num_banks + 1u; bank++) {
			for (unsigned img = 0; img < cfg.num_images + 1u; img++)
				(void)board_image_partition(b, img, bank);
			(void)board_bank_partition(b, bank, BOARD_CONTENT_ROOTFS);
			(void)board_bank_partition(b, bank, BOARD_CONTENT_FIP);
		}
		for (size_t i = 0; i < b->nparts; i++)
			FUZZ_CHECK(board_partition(b, b->parts[i].name) != NULL);
		struct fwu_metadata md;
		if (fwu_md_init(&md, cfg.version, cfg.num_banks, cfg.num_images, NULL) == 0)
			(void)board_fill_metadata_guids(b, &md, &err);
		board_free(b);
	}
	/* The size syntax on a NUL-terminated prefix of the input. */
	char s[64];
	size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
	memcpy(s, data, n);
	s[n] = '\0';
	uint64_t v;
	(void)board_parse_size(s, &v);
	return 0;
}
