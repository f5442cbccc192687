# Thin wrapper around meson/ninja.  The real build is meson.build.
#   make            build (installs Debian build dependencies first when root)
#   make check      unit tests, end-to-end tests, unit tests again under ASan+UBSan
#   make demo       the main job end to end
#   make bench      benchmarks side by side with the peer tools (slow)

BUILD      ?= build
ASAN_BUILD ?= build-asan
PYTHON     ?= /usr/bin/python3
MESON      ?= meson
NINJA      ?= ninja

.PHONY: all deps build check unit e2e asan demo bench clean

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

check: unit e2e asan demo

demo: build
	sh scripts/demo.sh $(abspath $(BUILD))

bench: build
	sh bench/run.sh $(abspath $(BUILD))

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
