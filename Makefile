# Thin wrapper around meson/ninja.  The real build is meson.build.
#   make            build (installs Debian build dependencies first when root)
#   make check      unit tests, end-to-end tests, unit tests again under ASan+UBSan
#   make demo       the main job end to end
#   make bench      benchmarks side by side with the peer tools (slow)
#   make faults     the full power-cut campaign (docs/reliability.md; minutes)
#   make fuzz       every libFuzzer target for FUZZ_SECONDS (clang, ASan+UBSan; docs/security.md)

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 30
PYTHON     ?= /usr/bin/python3
MESON      ?= meson
NINJA      ?= ninja

.PHONY: all deps build check unit e2e asan demo bench faults clean fuzz-build fuzz fuzz-smoke

all: build

deps:
	sh scripts/install-deps.sh

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD)

build: deps $(BUILD)/build.ninja
	$(NINJA) -C $(BUILD)

unit: build
	$(MESON) test -C $(BUILD) --suite unit --print-errorlogs

e2e: build
	ABOTA_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q tests/e2e

$(ASAN_BUILD)/build.ninja:
	$(MESON) setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

asan: deps $(ASAN_BUILD)/build.ninja
	$(NINJA) -C $(ASAN_BUILD)
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
		$(MESON) test -C $(ASAN_BUILD) --suite unit --print-errorlogs
	ABOTA_BUILD=$(abspath $(ASAN_BUILD)) UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		ASAN_OPTIONS=detect_leaks=1 $(PYTHON) -m pytest -q tests/e2e -m "not slow"

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

check: unit e2e asan demo fuzz-smoke

demo: build
	sh scripts/demo.sh $(abspath $(BUILD))

faults: build
	ABOTA_BUILD=$(abspath $(BUILD)) $(PYTHON) tests/e2e/powercut_campaign.py

bench: build
	sh bench/run.sh $(abspath $(BUILD))

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
