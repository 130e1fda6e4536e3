# OpenUM — one plain Makefile.
#
#   make            build everything into build/
#   make run        install missing packages, build, start both services on var/
#   make test       unit tests + process tests with real SIP peers
#   make test-matrix the full IPAddressFamily matrix across network namespaces (root)
#   make fuzz       build and briefly run the libFuzzer harnesses
#   make SANITIZER=address,undefined test   the same suite under sanitizers
#   make WERROR=1   warnings are errors (CI)

CC       ?= cc
# A sanitizer build gets its own directory so objects never mix.
BUILD    ?= build$(if $(SANITIZER),-san)
PYTHON   ?= /usr/bin/python3
STATE    ?= var
OPT      ?= -O2

PKGS_SIP    = sofia-sip-ua libuv libcares
PKGS_IPC    = libprotobuf-c
PKGS_DIR    = sqlite3 libcrypto
PKGS_AUDIO  = speexdsp espeak-ng
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS_SIP) $(PKGS_IPC) $(PKGS_DIR) $(PKGS_AUDIO) 2>/dev/null)
# This is read when make starts. The goals that install what is missing
# (run, test, test-matrix, fuzz, bench*) do that first and then build in a
# second make, which reads it again; any other build without the packages
# stops here with what to do, not with a missing header.
DEPS_FIRST = deps test-deps run test test-matrix fuzz bench bench-router \
             bench-deposit bench-outbound clean distclean
# The first two lines of those goals: install (scripts/deps.sh $(1)), then
# build $(2) in a second make.
define deps_then_make
@scripts/deps.sh $(1)
+@$(MAKE) --no-print-directory $(2)
endef
ifneq ($(.SHELLSTATUS),0)
ifneq ($(filter-out $(DEPS_FIRST),$(or $(MAKECMDGOALS),all)),)
$(error development packages missing (pkg-config --cflags $(PKGS_SIP) $(PKGS_IPC) $(PKGS_DIR) $(PKGS_AUDIO) failed): run `make deps`, or `make run` / `make test`, which install them)
endif
endif

WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
           -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN    += -Werror
endif
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) -MMD -MP -I. -I$(BUILD)/gen $(PKG_CFLAGS)
LDFLAGS += -Wl,--as-needed

ifneq ($(SANITIZER),)
CFLAGS  += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZER)
endif

libs = $(shell pkg-config --libs $(1))

PROTO_C  = $(BUILD)/gen/proto/openum.pb-c.c
PROTO_H  = $(BUILD)/gen/proto/openum.pb-c.h

COMMON_SRC = common/log.c
ROUTER_SRC = $(wildcard callrouter/*.c)
SERVICE_SRC = $(wildcard umservice/*.c)
UMCTL_SRC  = $(wildcard umctl/*.c)
PROTO_SRC  = $(filter-out proto/fuzz_%.c,$(wildcard proto/*.c))
COMMON_ALL = $(wildcard common/*.c)
UNIT_SRC   = $(wildcard tests/unit/*.c)
# Process modules that are pure enough to unit-test.
UNIT_EXTRA = umservice/tokens.c callrouter/registry.c callrouter/route.c \
             callrouter/routepick.c callrouter/redirects.c \
             callrouter/sipmsg.c callrouter/sipnet.c callrouter/siptcp.c \
             umservice/tts.c umservice/audio.c umservice/playout.c \
             umservice/spoken.c umservice/pacer.c \
             umservice/mwi.c umservice/outreq.c callrouter/popfwd.c

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

BINS = $(BUILD)/umcallrouter $(BUILD)/umservice $(BUILD)/umctl $(BUILD)/unit-tests

.PHONY: all deps test-deps run test unit e2e fuzz bench clean distclean
all: $(BINS)

deps:
	@scripts/deps.sh
test-deps:
	@scripts/deps.sh test

$(PROTO_C) $(PROTO_H): proto/openum.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen proto/openum.proto

$(BUILD)/obj/$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-missing-prototypes -c -o $@ $<

$(BUILD)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

LIBS_ALL = $(call libs,$(PKGS_SIP) $(PKGS_IPC) $(PKGS_DIR) $(PKGS_AUDIO)) -lm -lpthread

$(BUILD)/umcallrouter: $(call obj,$(ROUTER_SRC) $(COMMON_ALL) $(PROTO_SRC) $(PROTO_C))
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_ALL)

$(BUILD)/umservice: $(call obj,$(SERVICE_SRC) $(COMMON_ALL) $(PROTO_SRC) $(PROTO_C))
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_ALL)

$(BUILD)/umctl: $(call obj,$(UMCTL_SRC) $(COMMON_ALL) $(PROTO_SRC) $(PROTO_C))
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_ALL)

$(BUILD)/unit-tests: $(call obj,$(UNIT_SRC) $(UNIT_EXTRA) $(COMMON_ALL) $(PROTO_SRC) $(PROTO_C) $(filter-out umctl/main.c,$(UMCTL_SRC)))
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_ALL)

# Both services in the foreground on the state directory var/; Ctrl-C stops both.
run:
	$(call deps_then_make,,all)
	@scripts/run.sh $(BUILD) $(STATE)

unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests

e2e: all
	$(PYTHON) -m pytest -q tests/e2e

# The README's test command: unit tests, then the process tests against the
# real daemons and real SIP peers; one summary line at the end.
test:
	$(call deps_then_make,test,all)
	@scripts/test.sh $(BUILD) $(PYTHON)

# The whole IPAddressFamily matrix (issue 6): 243 cells, router x UM service
# x gateway family x gateway host x gateway Address, in network namespaces
# (needs root); `make test` runs a representative subset of it.
.PHONY: test-matrix
test-matrix:
	$(call deps_then_make,test,all)
	OPENUM_BUILD=$(BUILD) OPENUM_MATRIX=full $(PYTHON) -m pytest -q -p no:cacheprovider \
	  tests/e2e/test_matrix.py

# libFuzzer harnesses (clang); FUZZ_SECONDS each.
FUZZ_SECONDS ?= 20
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -I. -I$(BUILD)/gen $(PKG_CFLAGS) \
              -fsanitize=fuzzer,address,undefined
FUZZERS = $(BUILD)/fuzz/fuzz_ipc_frame $(BUILD)/fuzz/fuzz_sipuri \
          $(BUILD)/fuzz/fuzz_rtp $(BUILD)/fuzz/fuzz_sdp $(BUILD)/fuzz/fuzz_sipmsg \
          $(BUILD)/fuzz/fuzz_floor302
fuzz:
	$(call deps_then_make,test,$(FUZZERS))
	@for f in $(FUZZERS); do \
	  n=$$(basename $$f); mkdir -p $(BUILD)/fuzz/corpus-$$n; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -max_len=70000 $(BUILD)/fuzz/corpus-$$n tests/fuzz/corpus/$$n || exit 1; \
	done

$(BUILD)/fuzz/fuzz_ipc_frame: tests/fuzz/fuzz_ipc_frame.c $(PROTO_SRC) $(PROTO_C) common/log.c common/cause.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^ $(call libs,$(PKGS_IPC))

$(BUILD)/fuzz/fuzz_sipuri: tests/fuzz/fuzz_sipuri.c common/sipuri.c common/hex.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^

# The router's SIP parser and what it needs, alone.
SIPMSG_SRC = callrouter/sipmsg.c common/sipuri.c common/hex.c common/netaddr.c
$(BUILD)/fuzz/fuzz_sipmsg: tests/fuzz/fuzz_sipmsg.c $(SIPMSG_SRC)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^

# bench/floor302 (bench-router's floor server) frames TCP with the router's
# parser; the harness includes floor302.c and links the parser.
FLOOR302_SRC = bench/floor302.c $(SIPMSG_SRC)
$(BUILD)/fuzz/fuzz_floor302: tests/fuzz/fuzz_floor302.c $(FLOOR302_SRC)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(SIPMSG_SRC)

$(BUILD)/fuzz/fuzz_rtp: tests/fuzz/fuzz_rtp.c common/rtp.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^

$(BUILD)/fuzz/fuzz_sdp: tests/fuzz/fuzz_sdp.c common/sdp.c common/cause.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^ $(call libs,sofia-sip-ua)

clean:
	rm -rf $(BUILD)
distclean: clean
	rm -rf $(STATE)

# Benchmark, not a test (issue 3): umcallrouter against Kamailio under SIPp,
# UDP and TCP, rising rates; ~10 minutes. BENCH_ARGS passes options through
# (bench/router --help), e.g. make bench-router BENCH_ARGS=--perf
.PHONY: bench-router
$(BUILD)/bench/floor302: $(call obj,$(FLOOR302_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^
bench-router:
	$(call deps_then_make,bench,all $(BUILD)/bench/floor302)
	bench/router --build $(BUILD) $(BENCH_ARGS)

# Benchmark, not a test (issue 4): N simultaneous voicemail deposits against
# umservice, rising N, from bench/deposit_load (a small C caller); ~5-10
# minutes. BENCH_ARGS passes options through (bench/deposit --help).
.PHONY: bench-deposit
$(BUILD)/bench/deposit_load: bench/deposit_load.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(OPT) -g $(WARN) -o $@ $< -lm
bench-deposit:
	$(call deps_then_make,test,all $(BUILD)/bench/deposit_load)
	bench/deposit --build $(BUILD) $(BENCH_ARGS)

# Benchmark, not a test (issue 6): time to a connected transport toward a
# 4-address gateway with 0-3 dead addresses, staggered policy (common/outconn)
# against plain sequential attempts, on loopback; ~1-2 minutes. BENCH_ARGS
# passes options through (build/bench/outbound --help), e.g. --reps 50.
.PHONY: bench-outbound
OUTBOUND_SRC = bench/outbound.c common/outconn.c common/resolver.c \
               common/netaddr.c common/log.c common/cause.c
$(BUILD)/bench/outbound: $(call obj,$(OUTBOUND_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(call libs,libuv libcares)
bench-outbound:
	$(call deps_then_make,,$(BUILD)/bench/outbound)
	$(BUILD)/bench/outbound $(BENCH_ARGS)
bench: bench-router bench-deposit bench-outbound

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
