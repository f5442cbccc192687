/* fuzz_bundle.c - a whole bundle file from the input: trailer, CMS
 * parse/verify, manifest, squashfs open, payload checks and streaming of
 * every image into a null sink.
 *
 * Each input is opened twice: verified against the fuzz keyring (what an
 * install does; hostile input mostly stops at the trailer/CMS, the valid
 * seed bundles go all the way), and with no_verify (what `abota info
 * --no-verify` does), so the parsers behind the signature (squashfs glue,
 * manifest, verity parameters) get hostile input too.
 *
 * The input is written to a memfd and opened by its /proc/self/fd path, as
 * bundle_open() takes a path.  Keyring: $ABOTA_FUZZ_KEYRING, else
 * fuzz/keyring.pem of the source tree (the public CA of the RAUC interop
 * fixtures). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "abota/bundle.h"
#include "fuzz_common.h"

#ifndef FUZZ_KEYRING
#define FUZZ_KEYRING "fuzz/keyring.pem"
#endif

#define MAX_STREAM (8u << 20)

static void exercise(const char *path, bool no_verify)
{
	static struct sig_policy policy;
	policy.keyring_path = getenv("ABOTA_FUZZ_KEYRING") ? getenv("ABOTA_FUZZ_KEYRING")
							    : FUZZ_KEYRING;
	policy.no_check_time = true; /* runs must not depend on the date */
	struct bundle_open_opts opts = { .policy = &policy, .no_verify = no_verify };
	struct abota_error err = { 0 };
	struct bundle *b = NULL;
	if (bundle_open(path, &opts, &b, &err) < 0) {
		if (getenv("FUZZ_VERBOSE"))
			fprintf(stderr, "bundle_open(no_verify=%d): %s\n", no_verify, err.msg);
		return;
	}
	FUZZ_CHECK(bundle_is_verified(b) == !no_verify);
	const struct manifest *m = bundle_get_manifest(b);
	FUZZ_CHECK(m != NULL);
	FUZZ_CHECK(strlen(bundle_manifest_hash(b)) == 64);
	size_t mlen = 0;
	(void)bundle_manifest_data(b, &mlen);
	(void)bundle_get_format(b);
	FUZZ_CHECK(bundle_payload_size(b) + bundle_signature_size(b) + 8 == bundle_file_size(b));
	FUZZ_CHECK(bundle_squashfs_size(b) <= bundle_payload_size(b));
	uint8_t buf[512];
	if (bundle_payload_size(b) >= sizeof(buf))
		(void)bundle_read_payload(b, buf, sizeof(buf),
					  bundle_payload_size(b) - sizeof(buf), &err);
	(void)bundle_read_payload(b, buf, 1, bundle_payload_size(b), &err);
	(void)bundle_check_payload(b, &err);
	struct squashfs_reader *r = bundle_squashfs(b);
	if (r)
		squashfs_reader_set_workers(r, SQUASHFS_READER_SERIAL);
	for (size_t i = 0; i < m->n_images; i++) {
		if (!m->images[i].filename)
			continue;
		struct null_sink s = { .cap = MAX_STREAM };
		int ret = bundle_stream_image(b, &m->images[i], null_sink_fn, &s, &err);
		if (getenv("FUZZ_VERBOSE"))
			fprintf(stderr, "stream %s (no_verify=%d): %d %s\n", m->images[i].filename,
				no_verify, ret, ret < 0 ? err.msg : "");
		if (ret == 0)
			FUZZ_CHECK(!m->images[i].has_size || s.bytes == m->images[i].size);
	}
	bundle_close(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	char path[64];
	int fd = fuzz_memfd_path(data, size, "fuzz-bundle", path, sizeof(path));
	exercise(path, false);
	exercise(path, true);
	close(fd);
	return 0;
}
