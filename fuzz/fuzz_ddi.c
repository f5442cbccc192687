/* fuzz_ddi.c - the DDI JSON parsers of abotad (ddi.h): every response a
 * hawkBit server (or anyone pretending to be one) sends is parsed here
 * first.  The first input byte picks the parser (poll / deployment / cancel
 * / sleep / href action id), the rest is the body.  Besides memory safety
 * it checks what the agent relies on: accepted values are within the
 * bounds the parser promises.  SC-119 (security-cases.md): multi-MB bodies,
 * deep nesting, invalid UTF-8, duplicate keys, out-of-range size/id are
 * rejected without a crash. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "abota/ddi.h"
#include "fuzz_common.h"

static void check_href(const char *h)
{
	if (!h)
		return;
	FUZZ_CHECK(!strncmp(h, "http://", 7) || !strncmp(h, "https://", 8));
	FUZZ_CHECK(strlen(h) <= DDI_MAX_HREF);
	for (const char *p = h; *p; p++)
		FUZZ_CHECK((unsigned char)*p > 0x20 && *p != 0x7f);
}

static void check_hex(const char *s, size_t n)
{
	FUZZ_CHECK(strlen(s) == n);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(isdigit((unsigned char)s[i]) || (s[i] >= 'a' && s[i] <= 'f'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 256 * 1024)
		return 0;
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	struct abota_error err = { 0 };
	switch (data[0] % 5) {
	case 0: {
		struct ddi_base b = { 0 };
		if (ddi_parse_base(body, len, &b, &err) == 0) {
			check_href(b.deployment_href);
			check_href(b.cancel_href);
			check_href(b.config_data_href);
			check_href(b.installed_href);
			check_href(b.confirmation_href);
			ddi_base_clear(&b);
		} else {
			FUZZ_CHECK(err.msg[0] && !b.deployment_href);
		}
		break;
	}
	case 1: {
		struct ddi_deployment d = { 0 };
		if (ddi_parse_deployment(body, len, &d, &err) == 0) {
			FUZZ_CHECK(ddi_valid_action_id(d.id));
			FUZZ_CHECK(d.nchunks <= DDI_MAX_CHUNKS);
			for (size_t i = 0; i < d.nchunks; i++) {
				const struct ddi_chunk *c = &d.chunks[i];
				FUZZ_CHECK(c->part && c->version && c->name);
				FUZZ_CHECK(c->nartifacts <= DDI_MAX_ARTIFACTS);
				for (size_t j = 0; j < c->nartifacts; j++) {
					const struct ddi_artifact *a = &c->artifacts[j];
					FUZZ_CHECK(a->filename && *a->filename && !strchr(a->filename, '/'));
					if (a->has_sha256)
						check_hex(a->sha256, 64);
					if (a->has_sha1)
						check_hex(a->sha1, 40);
					if (a->has_md5)
						check_hex(a->md5, 32);
					FUZZ_CHECK(!a->has_size || a->size < (UINT64_C(1) << 63));
					check_href(a->download_href);
					check_href(a->download_http_href);
				}
			}
			ddi_deployment_clear(&d);
		} else {
			FUZZ_CHECK(err.msg[0] && d.nchunks == 0 && !d.chunks);
		}
		break;
	}
	case 2: {
		char id[DDI_MAX_ACTION_ID + 1];
		if (ddi_parse_cancel(body, len, id, &err) == 0)
			FUZZ_CHECK(ddi_valid_action_id(id));
		break;
	}
	case 3: {
		char s[64];
		if (len >= sizeof(s))
			return 0;
		memcpy(s, body, len);
		s[len] = '\0';
		uint64_t v;
		if (ddi_parse_sleep(s, &v))
			FUZZ_CHECK(v < UINT64_C(1) << 50);
		break;
	}
	case 4: {
		char *h = malloc(len + 1);
		if (!h)
			return 0;
		memcpy(h, body, len);
		h[len] = '\0';
		char id[DDI_MAX_ACTION_ID + 1];
		if (ddi_href_action_id(h, "deploymentBase", id))
			FUZZ_CHECK(ddi_valid_action_id(id) && strstr(h, id));
		free(h);
		break;
	}
	}
	return 0;
}
