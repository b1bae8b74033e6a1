# Thin aliases over deno tasks. Installs the pinned Deno from npm into .tools/ when the deno on
# PATH is not that version, so `make test` works on a fresh machine with only npm available.
DENO_VERSION := 2.9.6
PINNED_DENO := .tools/node_modules/@deno/linux-x64-glibc/deno
DENO := $(shell command -v deno >/dev/null 2>&1 && deno --version 2>/dev/null | head -n1 | grep -q "^deno $(DENO_VERSION) " && echo deno || echo $(PINNED_DENO))
# What must exist before Deno runs: the pinned binary, or nothing when PATH has the right one.
DENO_DEP := $(if $(filter deno,$(DENO)),,$(PINNED_DENO))

.PHONY: test ok deps browser server peer bench bench-index bench-ui ui screenshots bundle compile fmt clean

test: deps browser
	$(DENO) task ok

ok: test

deps: $(DENO_DEP)
	$(DENO) install --frozen

# The browser tests drive Debian's Chromium; installed once, silent when already there.
CHROMIUM := /usr/bin/chromium
browser: $(CHROMIUM)

$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	test -x $(CHROMIUM)

$(PINNED_DENO):
	npm install --prefix .tools --no-audit --no-fund --save-exact deno@$(DENO_VERSION)
	test -x $(PINNED_DENO)

# make server [ARGS="--db FILE ..."]: read/write access limited to the server's code, that
# database (with its -wal, -shm and -journal files, and the dashboard's token file beside it) and
# the server's identity folder.
# The database is the word after --db (or --db=FILE) in ARGS, else $$LANSHARE_DB, else the default.
word_after = $(if $(filter $(1),$(firstword $(2))),$(word 2,$(2)),$(if $(word 2,$(2)),$(call word_after,$(1),$(wordlist 2,$(words $(2)),$(2)))))
SERVER_DB = $(or $(call word_after,--db,$(ARGS)),$(patsubst --db=%,%,$(filter --db=%,$(ARGS))),$(LANSHARE_DB),lanshare-index.db)
SERVER_DB_FILES = $(SERVER_DB),$(SERVER_DB)-wal,$(SERVER_DB)-shm,$(SERVER_DB)-journal,$(SERVER_DB).ui-token
# The identity folder: the word after --identity, else beside a database file, else
# ./lanshare-server.identity (for :memory: and postgres://), as server/config.ts decides.
SERVER_MEMORY_DB = $(filter :memory: postgres://% postgresql://%,$(SERVER_DB))
SERVER_IDENTITY = $(or $(call word_after,--identity,$(ARGS)),$(patsubst --identity=%,%,$(filter --identity=%,$(ARGS))),$(LANSHARE_IDENTITY),$(if $(SERVER_MEMORY_DB),lanshare-server.identity,$(SERVER_DB).identity))
# The network key (--join key): the word after --network-key-file, else
# $$LANSHARE_NETWORK_KEY_FILE; read access to that file only, and only when one is named.
NETWORK_KEY_FILE = $(or $(call word_after,--network-key-file,$(ARGS)),$(patsubst --network-key-file=%,%,$(filter --network-key-file=%,$(ARGS))),$(LANSHARE_NETWORK_KEY_FILE))
KEY_READ = $(if $(NETWORK_KEY_FILE),$(,)$(NETWORK_KEY_FILE))
SERVER_DB_ACCESS = $(if $(SERVER_MEMORY_DB),--allow-read=server$(,)shared$(,)$(SERVER_IDENTITY)$(KEY_READ) --allow-write=$(SERVER_IDENTITY),--allow-read=server$(,)shared$(,)$(SERVER_DB_FILES)$(,)$(SERVER_IDENTITY)$(KEY_READ) --allow-write=$(SERVER_DB_FILES)$(,)$(SERVER_IDENTITY))
# The V8 flags of deno.json's server task, so that both ways of starting the server agree.
SERVER_V8_FLAGS = $(shell grep -o -- '--v8-flags=[^ "]*' deno.json | head -n1)
, := ,

server: deps
	$(DENO) run $(SERVER_V8_FLAGS) --allow-net --allow-env=LANSHARE_*,PG* \
	  --allow-sys=hostname,networkInterfaces $(SERVER_DB_ACCESS) server/main.ts $(ARGS)

# make peer [REPO=dir] [ARGS="--server host:port ..."]: read/write access limited to REPO (its
# identity is kept there, in .lanshare/identity/), plus reading a --network-key-file if named.
REPO ?= lanshare-repo
peer: deps
	$(DENO) run --allow-net --allow-env=LANSHARE_* --allow-sys=hostname,networkInterfaces,statfs \
	  --allow-read=$(REPO)$(KEY_READ) --allow-write=$(REPO) peer/main.ts --repo $(REPO) $(ARGS)

bench: deps
	$(DENO) task bench

bench-index: deps
	$(DENO) task bench:index

# The UI benchmarks (fetch and lookups with a UI open, first load, asset size).
bench-ui: deps
	$(DENO) task bench:ui

# Retakes the README's screenshots (docs/screenshots/) with the browser test.
screenshots: deps browser
	LANSHARE_UPDATE_SCREENSHOTS=1 $(DENO) task test:browser

# Rebuilds shared/http/ui_assets.gen.ts and ui_render.gen.js from ui/ after editing the pages.
ui: deps
	$(DENO) task ui:build

bundle: deps
	$(DENO) task bundle

compile: deps
	$(DENO) task compile

fmt: $(DENO_DEP)
	$(DENO) fmt

clean:
	rm -rf dist cov
