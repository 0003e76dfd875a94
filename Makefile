# cex: quick start targets. Each installs the Debian packages it needs when they are missing.
SWIFT ?= swift
DEBIAN_PACKAGES := libsqlite3-dev libcurl4-openssl-dev libssl-dev pkg-config libespeak-ng-dev flite1-dev libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us

.PHONY: demo test build deps bench

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

test: deps
	$(SWIFT) test --no-parallel

bench: deps
	Benchmarks/run.sh
