# abota-bundle.bbclass -- build RAUC-compatible bundles with `abota bundle`.
#
# SKETCH: this class was written for docs/migration.md and has NOT been built
# or run in a Yocto build. It relies on meta-rauc's `bundle` class (layer
# meta-rauc) for everything except the signing step: the recipe variables
# (RAUC_BUNDLE_COMPATIBLE, RAUC_BUNDLE_VERSION, RAUC_BUNDLE_FORMAT,
# RAUC_BUNDLE_SLOTS, RAUC_SLOT_<slot>[...], RAUC_BUNDLE_HOOKS,
# RAUC_KEY_FILE, RAUC_CERT_FILE, BUNDLE_NAME ...), the manifest it writes into
# ${BUNDLE_DIR} in do_configure, and do_deploy stay as they are. Only
# do_bundle is replaced, and the native tool is abota instead of rauc and
# mksquashfs. What was checked outside Yocto: `abota bundle` accepts a
# manifest shaped like the one meta-rauc writes, and Debian's `rauc info`
# verifies the result.
#
# Use, e.g. in meta-st-ota's update-st-bundle-<board>.bb:
#   inherit abota-bundle            # instead of: inherit bundle
#   ABOTA_BUNDLE_ARGS = "--compression=zstd"   # optional, see `abota bundle --help`

inherit bundle

# abota bundle writes the squashfs itself (libsquashfs): no rauc-native,
# no squashfs-tools-native.
DEPENDS:remove = "rauc-native squashfs-tools-native"
DEPENDS += "abota-native"

ABOTA_BUNDLE_ARGS ??= ""
ABOTA_BUNDLE_ARGS[doc] = "Extra arguments for abota bundle (--compression, --compression-level, --block-size, --intermediate, --format)."

fakeroot do_bundle() {
	if [ -z "${RAUC_KEY_FILE}" ]; then
		bbfatal "'RAUC_KEY_FILE' not set. Please set to a valid key file location."
	fi
	if [ -z "${RAUC_CERT_FILE}" ]; then
		bbfatal "'RAUC_CERT_FILE' not set. Please set to a valid certificate file location."
	fi
	if [ "${RAUC_CASYNC_BUNDLE}" = "1" ]; then
		bbfatal "abota does not make casync bundles (RAUC_CASYNC_BUNDLE=1)"
	fi
	if [ -n "${BUNDLE_ARGS}" ]; then
		bbwarn "BUNDLE_ARGS (rauc bundle options) are ignored by abota-bundle; use ABOTA_BUNDLE_ARGS"
	fi

	# The format comes from the manifest's [bundle] format= (RAUC_BUNDLE_FORMAT);
	# without one abota makes verity bundles. The output must not exist:
	# do_bundle[cleandirs] empties ${B}.
	${STAGING_BINDIR_NATIVE}/abota bundle \
		--cert="${RAUC_CERT_FILE}" \
		--key="${RAUC_KEY_FILE}" \
		${ABOTA_BUNDLE_ARGS} \
		${BUNDLE_DIR} \
		${B}/bundle.raucb
}
