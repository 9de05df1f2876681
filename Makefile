# qdf-swift: common tasks. `make test` is what CI runs.
SWIFT ?= swift

.PHONY: setup build release test test-python demo demo-train bench clean

setup:
	scripts/setup

build: setup
	$(SWIFT) build

release: setup
	$(SWIFT) build -c release

test: setup
	$(SWIFT) test -c release

# The ASE calculator (python/qdf_ase.py) against the built qdf; ASE goes into .build/python-venv.
test-python: release
	scripts/test-python

# The first run: the bundled model on nine QM9 molecules (5-29 atoms) and benzene's density.
demo: release
	.build/release/qdf demo

# The whole job from scratch: fetch QM9, train on small molecules, predict larger ones, report.
demo-train:
	scripts/demo-train

bench: release
	.build/release/qdf bench

clean:
	rm -rf .build
