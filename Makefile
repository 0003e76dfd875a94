# cex: quick start targets. Each installs the Debian packages it needs when they are missing.
SWIFT ?= swift
SHELL := /bin/bash
DEBIAN_PACKAGES := libsqlite3-dev libcurl4-openssl-dev libssl-dev pkg-config libespeak-ng-dev flite1-dev libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us

# A real Asterisk 22.10.1 for the integration suite, built once per machine outside the clone
# (about 5 minutes; at once when it is there) from the source beside the repository.
ASTERISK_PREFIX ?= /var/cache/cex/asterisk-22.10.1
ASTERISK_SOURCE ?= $(firstword $(wildcard ../shared/asterisk /work/shared/asterisk))
export CEX_ASTERISK_PREFIX := $(ASTERISK_PREFIX)

.PHONY: demo test build deps bench asterisk integration fuzz

deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

demo: build
	$(SWIFT) run cex demo

# The whole log is kept in .build/test.log; a failing run repeats its failures at the end,
# where a truncated CI log still shows them. The tests' scratch files (stores, campaign
# folders, the processes they start) go to a directory of the run's own, removed at its end.
asterisk:
	@if [ ! -x "$(ASTERISK_PREFIX)/sbin/asterisk" ]; then \
		[ -n "$(ASTERISK_SOURCE)" ] || { echo "no Asterisk source: set ASTERISK_SOURCE to the folder holding build.sh"; exit 1; }; \
		mkdir -p "$(dir $(ASTERISK_PREFIX))"; bash "$(ASTERISK_SOURCE)/build.sh" "$(ASTERISK_PREFIX)"; \
	fi

# Whole campaigns through the real Asterisk only (part of `make test` too).
integration: deps asterisk
	$(SWIFT) test --no-parallel --filter IntegrationTests

test: deps asterisk
	@mkdir -p .build; set -o pipefail; scratch=$$(mktemp -d -t cex-test.XXXXXX); trap 'rm -rf "$$scratch"' EXIT; \
	TMPDIR=$$scratch $(SWIFT) test --no-parallel 2>&1 | tee .build/test.log || { \
		status=$$?; echo "--- failures (whole log: .build/test.log) ---"; \
		grep -E "✘|error:|fatal|Fatal error|Crash" .build/test.log | grep -v "warning:" | tail -n 60; exit $$status; }

bench: deps
	Benchmarks/run.sh

# libFuzzer over the decoders of outside input (Fuzz/): AMI, AudioSocket, CSV, JSON, campaign and
# template YAML, each for FUZZ_RUNS inputs from the seeds in Fuzz/corpus (new ones kept in
# Fuzz/.build/corpus). Found crashers are replayed first from Fuzz/crashers/<target>/ (keep them
# there as regression cases); a crash fails the target, its input in Fuzz/.build/crashes/.
FUZZ_RUNS ?= 10000000
FUZZ_TARGETS := FuzzAMI FuzzAudioSocket FuzzCSV FuzzJSON FuzzYAML
# AddressSanitizer and libFuzzer's coverage on every module; libFuzzer without its main (SwiftPM
# names the executables' entry points itself), from the toolchain's clang runtime.
FUZZ_RUNTIME = $(firstword $(wildcard $(dir $(realpath $(shell command -v swiftc)))../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a))
FUZZ_FLAGS = -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp \
	-Xlinker $(FUZZ_RUNTIME) -Xlinker -lstdc++
fuzz: deps
	@[ -n "$(FUZZ_RUNTIME)" ] || { echo "no libclang_rt.fuzzer_no_main in the Swift toolchain"; exit 1; }
	cd Fuzz && $(SWIFT) build $(FUZZ_FLAGS)
	@set -e; for target in $(FUZZ_TARGETS); do \
		mkdir -p Fuzz/.build/corpus/$$target Fuzz/.build/crashes Fuzz/crashers/$$target; \
		if [ -n "$$(ls Fuzz/crashers/$$target)" ]; then Fuzz/.build/debug/$$target Fuzz/crashers/$$target/*; fi; \
		echo "== $$target: $(FUZZ_RUNS) inputs"; status=0; \
		Fuzz/.build/debug/$$target -runs=$(FUZZ_RUNS) -max_len=8192 -timeout=10 -print_final_stats=1 \
			-artifact_prefix=Fuzz/.build/crashes/$$target- Fuzz/.build/corpus/$$target Fuzz/corpus/$$target \
			> Fuzz/.build/$$target.log 2>&1 || status=$$?; \
		grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" Fuzz/.build/$$target.log || true; \
		if [ $$status != 0 ]; then tail -n 40 Fuzz/.build/$$target.log; echo "$$target crashed: the input is in Fuzz/.build/crashes/"; exit 1; fi; \
	done

