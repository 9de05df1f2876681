# qdf-swift: common tasks. `make test` is what CI runs.
SWIFT ?= swift

.PHONY: setup build release test demo bench clean

setup:
	scripts/setup

build: setup
	$(SWIFT) build

release: setup
	$(SWIFT) build -c release

test: setup
	$(SWIFT) test -c release

demo:
	scripts/demo

bench: release
	.build/release/qdf bench

clean:
	rm -rf .build
