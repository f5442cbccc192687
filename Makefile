# Thin wrapper around meson/ninja.  The real build is meson.build.
#   make            build (installs Debian build dependencies first when root)
#   make check      unit tests, end-to-end tests, unit tests again under ASan+UBSan
#   make demo       the main job end to end
#   make bench      benchmarks side by side with the peer tools (slow)
#   make faults     the full power-cut campaign (docs/reliability.md; minutes)
#   make fuzz       every libFuzzer target for FUZZ_SECONDS (clang, ASan+UBSan; docs/security.md)
#   make cross      cross builds for arm64 (build-arm64) and armhf (build-armhf); README "Cross builds"
#                   (both are built by make check: arm64 for the QEMU test, armhf as the 32-bit target)
#   make qemu-test  the arm64 abota updating a real kernel under real U-Boot in QEMU (docs/qemu.md)
#   make man        regenerate man/ from the programs' --help (help2man; docs/cli.md)
#   make static-analysis  cppcheck and clang-tidy, must be clean (part of make check; docs/security.md)
#   make release-build  everything again with -O3 (gcc's flow warnings need optimisation; part of make check)
#   make coverage   line coverage of lib/ by the unit and (not slow) e2e tests (gcovr; docs/security.md)

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
ARM64_BUILD ?= build-arm64
ARMHF_BUILD ?= build-armhf
RELEASE_BUILD ?= build-release
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 30
PYTHON     ?= /usr/bin/python3
MESON      ?= meson
NINJA      ?= ninja

.PHONY: all deps build check unit e2e asan demo bench faults clean fuzz-build fuzz fuzz-smoke \
	cross cross-arm64 cross-armhf qemu-test man static-analysis coverage release-build

all: build

deps:
	sh scripts/install-deps.sh

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD)

build: deps $(BUILD)/build.ninja
	$(NINJA) -C $(BUILD)

unit: build
	$(MESON) test -C $(BUILD) --suite unit --print-errorlogs

# Two pytest workers (pytest-xdist), a test file per worker at a time: the
# e2e suite takes a third of the time on 2 cores (most tests wait on I/O).
E2E_JOBS ?= 2
PYTEST_E2E = $(PYTHON) -m pytest -q -n $(E2E_JOBS) --dist loadfile

e2e: build
	ABOTA_BUILD=$(abspath $(BUILD)) $(PYTEST_E2E) tests/e2e

$(ASAN_BUILD)/build.ninja:
	$(MESON) setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

asan: deps $(ASAN_BUILD)/build.ninja
	$(NINJA) -C $(ASAN_BUILD)
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
		$(MESON) test -C $(ASAN_BUILD) --suite unit --print-errorlogs
	ABOTA_BUILD=$(abspath $(ASAN_BUILD)) UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		ASAN_OPTIONS=detect_leaks=1 $(PYTEST_E2E) tests/e2e -m "not slow"

$(FUZZ_BUILD)/build.ninja:
	CC=clang $(MESON) setup $(FUZZ_BUILD) -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false

fuzz-build: deps $(FUZZ_BUILD)/build.ninja
	$(NINJA) -C $(FUZZ_BUILD)

# Each target for FUZZ_SECONDS; findings in $(FUZZ_BUILD)/artifacts/<target>/.
fuzz: fuzz-build
	sh fuzz/run.sh $(FUZZ_BUILD) fuzz $(FUZZ_SECONDS)

# Every target over its corpus plus FUZZ_SMOKE_SECONDS of fuzzing in total.
fuzz-smoke: fuzz-build
	sh fuzz/run.sh $(FUZZ_BUILD) smoke $(FUZZ_SMOKE_SECONDS)

# cppcheck + clang-tidy (.clang-tidy) over lib/, src/abota, src/abota-sim; docs/security.md
static-analysis: deps $(BUILD)/build.ninja
	sh scripts/static-analysis.sh $(BUILD)

# -Werror at -O3: -Wmaybe-uninitialized and friends only run with optimisation, and a
# distribution or Yocto build may well use buildtype=release (docs/security.md).
$(RELEASE_BUILD)/build.ninja:
	$(MESON) setup $(RELEASE_BUILD) -Dbuildtype=release

release-build: deps $(RELEASE_BUILD)/build.ninja
	$(NINJA) -C $(RELEASE_BUILD)

# cross-armhf: STM32MP1 is 32-bit; a narrowing that only a 32-bit long or size_t shows
# would otherwise pass every x86-64 test
check: unit e2e asan demo fuzz-smoke qemu-test static-analysis release-build cross-armhf

coverage: deps
	command -v gcovr >/dev/null || apt-get install -y -q gcovr
	sh scripts/coverage.sh

# Cross builds with Debian's cross toolchains.  arm64: multiarch -dev packages; ext2fs
# comes from cross/pkgconfig-arm64/ (libext2fs-dev is not Multi-Arch; see the .pc file).
$(ARM64_BUILD)/build.ninja:
	$(MESON) setup --cross-file cross/arm64.ini -Dpkg_config_path=$(abspath cross/pkgconfig-arm64) $(ARM64_BUILD)

cross-arm64: deps $(ARM64_BUILD)/build.ninja
	$(NINJA) -C $(ARM64_BUILD)

# armhf links against a sysroot of Debian's armhf -dev packages (cross/sysroot.sh: apt
# downloads with private lists, nothing installed; docs/qemu.md says why not multiarch).
ARMHF_SYSROOT ?= $(HOME)/.cache/abota/sysroot-armhf
$(ARMHF_BUILD)/build.ninja:
	sh cross/sysroot.sh armhf $(ARMHF_SYSROOT)
	$(MESON) setup --cross-file cross/armhf.ini --cross-file $(ARMHF_SYSROOT)/cross.ini $(ARMHF_BUILD)

cross-armhf: deps $(ARMHF_BUILD)/build.ninja
	$(NINJA) -C $(ARMHF_BUILD)

cross: cross-arm64 cross-armhf

# Real U-Boot + real kernel in qemu-system-aarch64; arm64 packages cached in ~/.cache/abota.
# QEMU's TCG runs a guest on one host thread: two VMs at a time use both cores.
# Console logs: $(QEMU_TMP)/<worker>/<test>/console.log (kept until the next run).
QEMU_JOBS ?= 2
QEMU_TMP  ?= /tmp/abota-qemu-test
qemu-test: build cross-arm64
	ABOTA_BUILD=$(abspath $(BUILD)) ABOTA_CROSS_BUILD=$(abspath $(ARM64_BUILD)) \
		$(PYTHON) -m pytest -q -n $(QEMU_JOBS) --basetemp=$(QEMU_TMP) tests/qemu

# Man pages from --help (help2man), committed in man/; tests/e2e/test_docs.py checks them.
man: build
	sh scripts/gen-man.sh $(BUILD) man

# SERVE=1: leave abota-server (web UI) running at the end, until Ctrl-C
SERVE ?= 0
demo: build
	SERVE=$(SERVE) sh scripts/demo.sh $(abspath $(BUILD))

faults: build
	ABOTA_BUILD=$(abspath $(BUILD)) $(PYTHON) tests/e2e/powercut_campaign.py

bench: build
	sh bench/run.sh $(abspath $(BUILD))

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
