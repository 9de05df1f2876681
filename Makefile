# qdf-swift: common tasks. `make test` is what CI runs.
SWIFT ?= swift

.PHONY: setup build release test demo clean

setup:
	scripts/setup

build: setup
	$(SWIFT) build

release: setup
	$(SWIFT) build -c release

test: setup
	$(SWIFT) test -c release

clean:
	rm -rf .build
