/* fuzz_config.c - config_parse of system.conf text.  The first line of the
 * input, if it starts with "#!", is taken as -C overrides separated by
 * spaces (so the fuzzer also exercises the override path). */
#include <stdlib.h>
#include <string.h>

#include "abota/config.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	const char *text = (const char *)data;
	size_t len = size;
	char *ovbuf = NULL;
	const char *ov[9] = { NULL };
	if (size >= 2 && data[0] == '#' && data[1] == '!') {
		const uint8_t *nl = memchr(data, '\n', size);
		size_t l = nl ? (size_t)(nl - data) : size;
		ovbuf = strndup(text + 2, l > 2 ? l - 2 : 0);
		if (!ovbuf)
			return 0;
		size_t n = 0;
		for (char *save = NULL, *t = strtok_r(ovbuf, " ", &save); t && n < 8;
		     t = strtok_r(NULL, " ", &save))
			ov[n++] = t;
		text += nl ? l + 1 : l;
		len -= nl ? l + 1 : l;
	}
	struct abota_error err = { 0 };
	struct system_config *cfg = NULL;
	if (config_parse(text, len, "system.conf", "/nonexistent/fuzz", ov[0] ? ov : NULL, &cfg,
			 &err) == 0) {
		FUZZ_CHECK(cfg->compatible != NULL);
		(void)config_bootloader_name(cfg->bootloader);
		for (size_t i = 0; i < cfg->nslots; i++)
			(void)cfg->slots[i];
		config_free(cfg);
	}
	free(ovbuf);
	return 0;
}
