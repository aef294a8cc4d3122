# dblocks: `make demo` and `make test` are the whole set-up on Debian 12.
CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -MMD -MP
LDLIBS  = -lclblast -lOpenCL -ljansson -lpng -lz -lm
BUILD   = build

LIB_SRC  = $(wildcard runtime/*.c ops/*.c models/*.c data/*.c)
CLI_SRC  = $(filter-out tools/embed_cl.c,$(wildcard tools/*.c))
TEST_SRC = $(wildcard tests/*.c)
CL_SRC   = $(sort $(wildcard cl/*.cl))

LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/cl_sources.o
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ = $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
DEPS_OK  = $(BUILD)/.deps-ok

# Caches live in the build folder for tests and the demo, so a clean clone
# starts cold and `make clean` resets them.
RUN_ENV = POCL_CACHE_DIR=$(CURDIR)/$(BUILD)/pocl-cache DBLOCKS_CACHE_DIR=$(CURDIR)/$(BUILD)/kernel-cache DBLOCKS_TUNE=off

.PHONY: all deps test demo bench clean
all: $(BUILD)/dblocks $(BUILD)/dblocks_tests

deps:
	@sh tools/deps.sh

$(DEPS_OK): tools/deps.sh
	@sh tools/deps.sh
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/embed_cl: tools/embed_cl.c | $(DEPS_OK)
	@mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Wextra -o $@ $<

$(BUILD)/cl_sources.c: $(BUILD)/embed_cl $(CL_SRC) cl/common.clh
	$(BUILD)/embed_cl $@ --prelude cl/common.clh $(CL_SRC)

$(BUILD)/obj/cl_sources.o: $(BUILD)/cl_sources.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iruntime -c -o $@ $<

$(BUILD)/obj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libdblocks.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

# Open MPI (tools/dist.c only: block-parallel training and replicas under mpirun).
# Recursive (=): read after tools/deps.sh has installed libopenmpi-dev.
MPI_CFLAGS = $(shell mpicc -showme:compile 2>/dev/null)
MPI_LIBS   = $(shell mpicc -showme:link 2>/dev/null)
$(BUILD)/obj/tools/dist.o: CFLAGS += $(MPI_CFLAGS)

# cairo (the figures of `dblocks report`: tools/plot.c, tools/cmd_report.c, tools/report_traces.c).
# Recursive (=): read after tools/deps.sh has installed libcairo2-dev.
CAIRO_CFLAGS = $(shell pkg-config --cflags cairo 2>/dev/null)
CAIRO_LIBS   = $(shell pkg-config --libs cairo 2>/dev/null)
$(BUILD)/obj/tools/plot.o $(BUILD)/obj/tools/cmd_report.o $(BUILD)/obj/tools/report_traces.o: CFLAGS += $(CAIRO_CFLAGS)

$(BUILD)/dblocks: $(CLI_OBJ) $(BUILD)/libdblocks.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libdblocks.a $(LDLIBS) $(MPI_LIBS) $(CAIRO_LIBS)

# the tests link the chart layer too (tests/test_report.c draws with it)
$(BUILD)/dblocks_tests: $(TEST_OBJ) $(BUILD)/obj/tools/plot.o $(BUILD)/libdblocks.a
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/obj/tools/plot.o $(BUILD)/libdblocks.a $(LDLIBS) $(CAIRO_LIBS)

test: all
	$(RUN_ENV) DBLOCKS_BIN=$(CURDIR)/$(BUILD)/dblocks ./$(BUILD)/dblocks_tests

demo: all
	$(RUN_ENV) ./$(BUILD)/dblocks demo

bench: all
	$(RUN_ENV) ./$(BUILD)/dblocks bench ops

# ---- make test-asan: the whole suite built with AddressSanitizer + UBSan in
# build-asan (the CLI the tests run, DBLOCKS_BIN, is the sanitized one too).
# Options and why: docs/testing.md. Run by .ci/run after make test.
ASAN_BUILD   = build-asan
ASAN_CFLAGS  = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_OPTS    = detect_leaks=0:allocator_may_return_null=1:detect_stack_use_after_return=1:strict_string_checks=1:exitcode=66
UBSAN_OPTS   = halt_on_error=1:print_stacktrace=1:exitcode=66
.PHONY: test-asan
test-asan:
	CFLAGS="$(ASAN_CFLAGS)" ASAN_OPTIONS="$(ASAN_OPTS)" UBSAN_OPTIONS="$(UBSAN_OPTS)" $(MAKE) BUILD=$(ASAN_BUILD) test

# ---- make test-oclgrind: the op test suites on Oclgrind's simulated device,
# small shapes (DBLOCKS_TEST_SMALL=1), with --data-races --uninitialized
# --check-api; fails on any failing check and on any report. Run by .ci/run;
# docs/testing.md ("Oclgrind": what each suite takes, what is left out, why).
# Every op suite; attention's blocked CPU kernels are left out on Oclgrind
# (docs/testing.md: its checker aborts on their lane-built vectors).
# make test-oclgrind OCLGRIND_SUITES==gemm runs one suite alone.
OCLGRIND_SUITES = =layernorm =losses =reduce =modulate =gated_residual =activations =bias_gelu \
                  =layernorm_modulate =embedding =patchify =window_patches =gather_bytes =glue_ops =adamw =linear =gemm =attention =rmsnorm =rope =swiglu
.PHONY: test-oclgrind
test-oclgrind: all
	sh tools/test_oclgrind.sh $(BUILD) $(OCLGRIND_SUITES)

# ---- make fuzz: libFuzzer harnesses of the file parsers (tests/fuzz/), by hand,
# not in CI. clang builds the library and the harnesses in build-fuzz; the seed
# corpora come from the CLI (tests/fuzz/seeds.sh, once); each fuzzer then runs
# FUZZ_SECONDS. One alone: make fuzz FUZZ_TARGETS=npy FUZZ_SECONDS=600.
FUZZ_CC      = clang
FUZZ_BUILD   = build-fuzz
FUZZ_CFLAGS  = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_TARGETS = idx npy safetensors manifest
FUZZ_SECONDS = 60
.PHONY: fuzz fuzz-build
fuzz: fuzz-build all
	@test -f $(FUZZ_BUILD)/corpus/.seeded || { $(RUN_ENV) sh tests/fuzz/seeds.sh $(BUILD)/dblocks $(FUZZ_BUILD)/corpus && touch $(FUZZ_BUILD)/corpus/.seeded; }
	sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)
fuzz-build:
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz needs clang and libFuzzer: apt-get install clang libclang-rt-14-dev" >&2; exit 1; }
	CFLAGS="$(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link" $(MAKE) BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) $(FUZZ_BUILD)/libdblocks.a
	$(MAKE) $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_BUILD)/libdblocks.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -std=c11 -D_GNU_SOURCE -Wall -Wextra -o $@ $< $(FUZZ_BUILD)/libdblocks.a $(LDLIBS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
