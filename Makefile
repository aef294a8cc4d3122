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
RUN_ENV = POCL_CACHE_DIR=$(CURDIR)/$(BUILD)/pocl-cache DBLOCKS_CACHE_DIR=$(CURDIR)/$(BUILD)/kernel-cache

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

$(BUILD)/dblocks: $(CLI_OBJ) $(BUILD)/libdblocks.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libdblocks.a $(LDLIBS)

$(BUILD)/dblocks_tests: $(TEST_OBJ) $(BUILD)/libdblocks.a
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/libdblocks.a $(LDLIBS)

test: all
	$(RUN_ENV) DBLOCKS_BIN=$(CURDIR)/$(BUILD)/dblocks ./$(BUILD)/dblocks_tests

demo: all
	$(RUN_ENV) ./$(BUILD)/dblocks demo

bench: all
	$(RUN_ENV) ./$(BUILD)/dblocks bench ops

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
