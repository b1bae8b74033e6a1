# Thin aliases over deno tasks. Installs the pinned Deno from npm into .tools/ when the deno on
# PATH is not that version, so `make test` works on a fresh machine with only npm available.
DENO_VERSION := 2.9.6
PINNED_DENO := .tools/node_modules/@deno/linux-x64-glibc/deno
DENO := $(shell command -v deno >/dev/null 2>&1 && deno --version 2>/dev/null | head -n1 | grep -q "^deno $(DENO_VERSION) " && echo deno || echo $(PINNED_DENO))
# What must exist before Deno runs: the pinned binary, or nothing when PATH has the right one.
DENO_DEP := $(if $(filter deno,$(DENO)),,$(PINNED_DENO))

.PHONY: test ok deps server peer bench bench-index bundle compile fmt clean

test: deps
	$(DENO) task ok

ok: test

deps: $(DENO_DEP)
	$(DENO) install --frozen

$(PINNED_DENO):
	npm install --prefix .tools --no-audit --no-fund --save-exact deno@$(DENO_VERSION)
	test -x $(PINNED_DENO)

server: deps
	$(DENO) task server $(ARGS)

# make peer [REPO=dir] [ARGS="--server host:port ..."]: read/write access limited to REPO.
REPO ?= lanshare-repo
peer: deps
	$(DENO) run --allow-net --allow-env=LANSHARE_* --allow-sys=hostname,networkInterfaces,statfs \
	  --allow-read=$(REPO) --allow-write=$(REPO) peer/main.ts --repo $(REPO) $(ARGS)

bench: deps
	$(DENO) task bench

bench-index: deps
	$(DENO) task bench:index

bundle: deps
	$(DENO) task bundle

compile: deps
	$(DENO) task compile

fmt: $(DENO_DEP)
	$(DENO) fmt

clean:
	rm -rf dist cov
