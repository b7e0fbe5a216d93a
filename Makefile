# lua-stream build. Knobs: LUA_VERSION (5.4, 5.3, 5.1 or jit), LUA_INCDIR,
# LUA (the interpreter), PREFIX, DESTDIR, CFLAGS, DEV=1 (warnings as errors).

LUA_VERSION ?= 5.4
ifeq ($(LUA_VERSION),jit)
  LUA        ?= luajit
  LUA_INCDIR ?= $(firstword $(wildcard /usr/include/luajit-2.1) /usr/include/luajit-2.1)
  LUA_ABI    := 5.1
else
  LUA        ?= lua$(LUA_VERSION)
  LUA_INCDIR ?= /usr/include/lua$(LUA_VERSION)
  LUA_ABI    := $(LUA_VERSION)
endif

PREFIX     ?= /usr/local
LUA_LIBDIR ?= $(PREFIX)/lib/lua/$(LUA_ABI)
LUA_SHAREDIR ?= $(PREFIX)/share/lua/$(LUA_ABI)

BUILD   := build/$(LUA_VERSION)
CORE    := $(BUILD)/stream/core.so
SRCS    := $(wildcard csrc/*.c)
OBJS    := $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(SRCS))
HDRS    := $(wildcard csrc/*.h)
LUAFILES := $(shell find lua -name '*.lua' 2>/dev/null)

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(DEV),1)
  WARN  += -Werror
endif
CURL_CFLAGS := $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS   := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
SSL_LIBS    := $(shell pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto)
ALL_CFLAGS  := -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden \
               $(WARN) -I$(LUA_INCDIR) $(CURL_CFLAGS) $(CFLAGS)
LIBS        := $(CURL_LIBS) $(SSL_LIBS)

BUSTED_SCRIPT ?= $(firstword $(shell command -v busted) /usr/bin/busted)
# Run busted inside the chosen interpreter itself (no re-exec), so valgrind
# and sanitizers see the process that loads the core.
BUSTED  ?= $(LUA) $(BUSTED_SCRIPT) --ignore-lua --cpath='$(BUILD)/?.so'
DEB_PACKAGES := gcc libc6-dev lua5.4 liblua5.4-dev libcurl4-openssl-dev libssl-dev pkg-config \
                lua-cjson lua-busted lua-socket nginx-light libnginx-mod-http-lua \
                curl openssl valgrind luajit2 libluajit2-5.1-dev libsqlite3-0 \
                libvips42 libgumbo1 lua-luv lua-cqueues
# luajit2 is the OpenResty flavour of LuaJIT, the one Debian's
# lua-nginx-module links (the plain luajit packages conflict with it); the
# OpenResty specs load a core built for it inside nginx.
DEB_5.1 := lua5.1 liblua5.1-0-dev
DEB_5.3 := lua5.3 liblua5.3-dev
DEB_PACKAGES += $(DEB_$(LUA_VERSION))

.PHONY: all deps test unit demo server install uninstall clean valgrind lint ngx-core bench \
        asan fuzz soak fuzz-server soak-feeds load soak-openresty

all: $(CORE)

$(CORE): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJS) $(LIBS) $(LDFLAGS)

$(BUILD)/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

deps:
	@./.ci/deps $(DEB_PACKAGES)

clean:
	rm -rf build

# ------------------------------------------------------------------ tests
# The whole suite: unit specs, the local server's specs, the client's
# integration specs (each spec file starts its own local server), and the
# OpenResty specs. Under LuaJIT or 5.1 (LUA_VERSION=jit|5.1) the specs that
# run in the chosen interpreter: codec, signing, config and client.
PORTABLE_SPECS := spec/json_spec.lua spec/jwt_spec.lua spec/config_spec.lua spec/unit spec/client
ifeq ($(filter $(LUA_VERSION),5.3 5.4),)
  TEST_SPECS := $(PORTABLE_SPECS)
  NGX_CORE :=
else
  # spec/openresty runs nginx, which loads the core built for its LuaJIT
  NGX_CORE := ngx-core
endif

test: deps all $(NGX_CORE)
	$(BUSTED) $(TEST_SPECS)

ngx-core:
	@$(MAKE) --no-print-directory LUA_VERSION=jit all

unit: all
	$(BUSTED) spec/json_spec.lua spec/jwt_spec.lua spec/config_spec.lua spec/unit spec/server/json_spec.lua \
	  $(if $(TEST_SPECS),,spec/lua53)

# The whole suite with the interpreter (and so the core) under valgrind
# memcheck; fails on any error or definite leak. A full collection follows
# every test so finalizers run while the core is in use. (Servers and peers
# the specs start are separate processes and are not instrumented.)
# Under valgrind: every spec that loads the C core into the busted process
# (the local server's specs talk to nginx with curl and openssl, and the
# OpenResty specs load the core into nginx: valgrind would only slow them).
CORE_SPECS := $(PORTABLE_SPECS) spec/transport_headers_spec.lua \
  $(if $(filter $(LUA_VERSION),5.3 5.4),spec/lua53)
valgrind: deps all
	STREAM_SPEC_AGGRESSIVE_GC=1 valgrind --quiet --error-exitcode=99 --leak-check=full \
	  --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	  --suppressions=.ci/valgrind.supp \
	  $(BUSTED) $(CORE_SPECS)

# The lua5.4 suite (spec/openresty aside: nginx runs the LuaJIT core)
# against a core built with AddressSanitizer + UBSan, the GC running often;
# fails on any report.
asan: deps
	./.ci/asan

# The libFuzzer harnesses in fuzz/, FUZZ_SECONDS each (default 60); clang.
fuzz:
	./.ci/deps clang libclang-rt-14-dev
	./fuzz/run

# Hostile requests (mutated paths, queries, headers, JSON bodies from the
# seeds in fuzz/corpus/server/) against a private local server over
# loopback: never a 5xx, a dropped connection, a Lua error in the error log
# or a write from a refused request. FUZZ_SERVER_SECONDS (default 60) and
# FUZZ_SERVER_COUNT (20000) bound it.
fuzz-server: deps all
	./fuzz/server

# 200,000 mixed calls with faults against a private local server; checks
# that nothing written is lost and RSS stays flat. Not part of make test.
soak: deps all
	./bench/soak

# Feeds, follows, reactions and enriched reads under the same faults, then
# every feed, follow and reaction checked against what was acknowledged
# (bench/soak_feeds.lua); SOAK_CALLS (default 5000) bounds it.
soak-feeds: deps all
	./bench/soak feeds

# nginx with one client per worker under concurrent requests mixing plain calls,
# parallel/go with ngx.sleep and close in flight, SOAK_OR_SECONDS (default 20): 0 hangs,
# 0 crashed workers, every answer checked (bench/soak_openresty.lua).
soak-openresty: deps all ngx-core
	./bench/soak-openresty

# 64 connections mixing adds, reads (plain and enriched), follows and
# reactions on a 2-worker local server for LOAD_SECONDS (default 30): no
# failed call, no Lua error, the soak's checks afterwards; p50/p99 printed.
load: deps all
	./bench/load

lint:
	luacheck lua spec server examples fuzz bench/soak.lua bench/soak_feeds.lua bench/soak_common.lua \
	  bench/soak_openresty.lua bench/soak_openresty_app.lua
	lua5.4 server/funclen.lua server/lua/stream_local/*.lua

# Benchmarks against raw libcurl, wrk and the official JavaScript client
# (bench/README.md); a few minutes, never part of `make test`.
bench: all
	./bench/run

# ------------------------------------------------------------------ running
demo: deps all
	@./examples/demo.sh

server: deps
	./server/start

# ------------------------------------------------------------------ install
install: all
	install -d $(DESTDIR)$(LUA_LIBDIR)/stream $(DESTDIR)$(LUA_SHAREDIR)/stream/transport
	install -m 0755 $(CORE) $(DESTDIR)$(LUA_LIBDIR)/stream/core.so
	install -m 0644 lua/stream/*.lua $(DESTDIR)$(LUA_SHAREDIR)/stream/
	install -m 0644 lua/stream/transport/*.lua $(DESTDIR)$(LUA_SHAREDIR)/stream/transport/
	install -d $(DESTDIR)$(LUA_SHAREDIR)/stream/loop
	install -m 0644 lua/stream/loop/*.lua $(DESTDIR)$(LUA_SHAREDIR)/stream/loop/

uninstall:
	rm -rf $(DESTDIR)$(LUA_LIBDIR)/stream $(DESTDIR)$(LUA_SHAREDIR)/stream
