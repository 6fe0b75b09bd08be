# Atrium - build, run, test, bench, lint.
#
#   make          release binaries in build/release/
#   make run      install what is missing, build, start the local stack in var/
#   make stop     stop the local stack
#   make test     sanitizer build, throwaway stack on free ports, prove -r t/
#   make bench    wrk figures against a running stack (see scripts/bench)
#   make bench-notifier  notifier throughput from a 10,000-row backlog
#   make lint     clang-format check, cppcheck, OpenAPI lint
#   make fuzz     libFuzzer drivers of every parser of untrusted bytes

SHELL := /bin/bash
CC ?= cc

# fcgi has no .pc file on Debian: its flags are spelled out
PKG_CFLAGS = $(shell pkg-config --cflags json-c libpq openssl libcurl libargon2 2>/dev/null) \
	-DATRIUM_REPO_DIR='"$(CURDIR)"'
PKG_LIBS   = -lfcgi $(shell pkg-config --libs json-c libpq openssl libcurl libargon2 2>/dev/null)

WARN := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wpointer-arith -Wcast-qual -Wformat=2 -Wvla \
	-fstack-protector-strong
RELEASE_FLAGS := -O2 -D_FORTIFY_SOURCE=3
TEST_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
	-DATRIUM_FAULTS

SRC_DIR := fcgi-app
# every module of the worker except main.c (unit tests link these)
LIB_OBJS := arena.o json.o http.o router.o db.o log.o config.o page.o tenant.o audit.o util.o idem.o \
	resource.o people.o projects.o work.o password.o token.o auth.o \
	s3sign.o store.o attachments.o messages.o portal.o unsub.o notify.o outbox.o events.o \
	app.o routes.o
UNIT_TESTS := arena json router http page template s3sign whatsapp
# atrium-notifier: the outbox delivery daemon (its own main)
NOTIFIER_OBJS := notifier.o mail.o template.o whatsapp.o

REL := build/release
TST := build/test
FUZZ := build/fuzz
FUZZ_TARGETS := json request cursor s3sign
FUZZ_SECONDS ?= 60
# libFuzzer needs clang; the objects get coverage instrumentation too
FUZZ_CC := clang
FUZZ_FLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all

# objects are kept (not deleted as intermediates of the fuzz drivers)
.SECONDARY:

.PHONY: all test-build fuzz-build fuzz run stop test bench bench-notifier bench-events lint clean deps format unit
all: $(REL)/atrium-fcgi $(REL)/atrium-notifier

$(REL)/%.o: $(SRC_DIR)/%.c | $(REL)
	$(CC) $(WARN) $(RELEASE_FLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@
$(TST)/%.o: $(SRC_DIR)/%.c | $(TST)
	$(CC) $(WARN) $(TEST_FLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(REL)/atrium-fcgi: $(addprefix $(REL)/,$(LIB_OBJS) main.o)
	$(CC) $(WARN) $(RELEASE_FLAGS) $^ $(PKG_LIBS) -o $@
$(TST)/atrium-fcgi: $(addprefix $(TST)/,$(LIB_OBJS) main.o)
	$(CC) $(WARN) $(TEST_FLAGS) $^ $(PKG_LIBS) -o $@
$(REL)/atrium-notifier: $(addprefix $(REL)/,$(NOTIFIER_OBJS) $(LIB_OBJS))
	$(CC) $(WARN) $(RELEASE_FLAGS) $^ $(PKG_LIBS) -o $@
$(TST)/atrium-notifier: $(addprefix $(TST)/,$(NOTIFIER_OBJS) $(LIB_OBJS))
	$(CC) $(WARN) $(TEST_FLAGS) $^ $(PKG_LIBS) -o $@

$(TST)/unit/%: t/unit/%.c t/unit/tap.h $(addprefix $(TST)/,$(LIB_OBJS)) | $(TST)/unit
	$(CC) $(WARN) $(TEST_FLAGS) -I$(SRC_DIR) -It/unit $(PKG_CFLAGS) $< \
		$(addprefix $(TST)/,$(LIB_OBJS)) $(PKG_LIBS) -o $@

$(FUZZ)/%.o: $(SRC_DIR)/%.c | $(FUZZ)
	$(FUZZ_CC) $(WARN) $(FUZZ_FLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@
$(FUZZ)/fuzz-%: t/fuzz/%.c $(addprefix $(FUZZ)/,$(LIB_OBJS)) | $(FUZZ)
	$(FUZZ_CC) $(WARN) -Wno-missing-prototypes $(FUZZ_FLAGS) -fsanitize=fuzzer -I$(SRC_DIR) \
		$(PKG_CFLAGS) $< $(addprefix $(FUZZ)/,$(LIB_OBJS)) $(PKG_LIBS) -o $@

# the template test compiles the renderer and mail builder in itself
$(TST)/unit/template: $(SRC_DIR)/template.c $(SRC_DIR)/mail.c
$(TST)/unit/whatsapp: $(SRC_DIR)/whatsapp.c

# t/s3sign-crosscheck.t's driver (presigns cases read on stdin): not a unit
# test, so it lives outside $(TST)/unit, where t/unit/unit.t runs everything
$(TST)/unit-tools/s3sign-gen: t/unit/s3sign-gen.c $(addprefix $(TST)/,arena.o util.o s3sign.o)
	@mkdir -p $(@D)
	$(CC) $(WARN) $(TEST_FLAGS) -I$(SRC_DIR) $(PKG_CFLAGS) $< $(filter %.o,$^) $(PKG_LIBS) -o $@
test-build: $(TST)/unit-tools/s3sign-gen

$(REL) $(TST) $(TST)/unit $(FUZZ):
	mkdir -p $@

-include $(wildcard $(REL)/*.d $(TST)/*.d $(FUZZ)/*.d)

test-build: $(TST)/atrium-fcgi $(TST)/atrium-notifier $(addprefix $(TST)/unit/,$(UNIT_TESTS)) fuzz-build

fuzz-build: $(addprefix $(FUZZ)/fuzz-,$(FUZZ_TARGETS))

# make fuzz: each driver for FUZZ_SECONDS, seeded from t/fuzz/corpus/NAME;
# new inputs go to build/fuzz/corpus-NAME (copy the interesting ones into
# t/fuzz/corpus to keep them as regressions: t/fuzz/fuzz.t replays them)
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ)/corpus-$$t; \
		echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
		$(FUZZ)/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=1 \
			$(FUZZ)/corpus-$$t t/fuzz/corpus/$$t || exit 1; \
	done

deps:
	@scripts/deps

run: deps all
	@scripts/run

stop:
	@scripts/stack down

test: deps test-build
	@scripts/test

bench:
	@scripts/bench

bench-notifier:
	@scripts/bench-notifier

bench-events:
	@scripts/bench-events

lint:
	@scripts/lint

format:
	clang-format -i $(SRC_DIR)/*.c $(SRC_DIR)/*.h t/unit/*.c t/unit/*.h

clean:
	rm -rf build
