# abota_git.bb -- abota for the target, and abota-native for abota-bundle.bbclass.
#
# SKETCH: written for docs/migration.md, NOT built in a Yocto build. The
# dependency recipe names are the usual OpenEmbedded ones but were not checked
# against a layer index; libsquashfs comes from squashfs-tools-ng and
# libdeflate, libubootenv and libmicrohttpd may need meta-oe. Adjust SRC_URI
# and SRCREV to where your copy of abota lives.

SUMMARY = "abota: robust A/B over-the-air updates (RAUC-compatible bundles, Arm FWU metadata)"
LICENSE = "CLOSED"
# Set LICENSE and LIC_FILES_CHKSUM to abota's licence before use.

SRC_URI = "git://example.invalid/abota.git;protocol=https;branch=main"
SRCREV = "${AUTOREV}"
PV = "0.1.0+git"

S = "${WORKDIR}/git"

inherit meson pkgconfig systemd

DEPENDS = "openssl squashfs-tools-ng libdeflate zstd xz zlib lz4 json-c curl \
           util-linux e2fsprogs libubootenv systemd sqlite3 libmicrohttpd"
# The native build only needs what `abota bundle` uses, but meson builds all
# programs whose dependencies are found; trim DEPENDS:class-native if needed.
DEPENDS:class-native = "openssl-native squashfs-tools-ng-native libdeflate-native \
                        zstd-native xz-native zlib-native lz4-native json-c-native \
                        curl-native util-linux-native e2fsprogs-native"

# abota opens libsystemd (D-Bus) and libcurl (http bundles) when it first
# needs them; abotad links both, so the package's automatic run-time
# dependencies include them. Split abota into its own package and add
# RDEPENDS:${PN}-cli = "libsystemd libcurl" (docs/dbus.md).

# meson.build installs abota, abotad, abota-sim, abota-server, the web UI and
# the systemd units (abota-mark-good.service, abotad.service).
SYSTEMD_SERVICE:${PN} = "abota-mark-good.service abotad.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

# The device configuration: start from boards/<board>/system.conf of the
# abota tree and the CA that signs your bundles.
# do_install:append:class-target() {
#     install -D -m 0644 ${S}/boards/stm32mp157f-dk2/system.conf ${D}${sysconfdir}/abota/system.conf
#     install -D -m 0644 ${WORKDIR}/ca.cert.pem ${D}${sysconfdir}/abota/ca.cert.pem
# }

BBCLASSEXTEND = "native"
