# s2s_tracking: PGXS build.
#
#   make [WERROR=1]          build (WERROR=1 turns every warning into an error, as CI does)
#   make install             install into the server that PG_CONFIG names
#   make check-regress       pg_regress suites (test/sql/ + test/expected/) on a temporary instance
#   make check-isolation     pg_isolation_regress specs (test/specs/ + test/expected/) on a
#                            temporary instance
#   make check-tap           TAP tests (test/t/*.pl) on throwaway clusters
#   make installcheck        all three
#
# The test targets start PostgreSQL, which refuses to run as root: run them as an
# unprivileged user on a tree it can write (./run-tests does all of this for you).

EXTENSION  = s2s_tracking
# The version is the control file's default_version, and only there: the install script's
# name and the C code's S2S_VERSION (the User-Agent) follow from it.
EXTVERSION := $(shell sed -nE "s/^default_version *= *'([^']+)'.*/\1/p" $(EXTENSION).control)
ifeq ($(EXTVERSION),)
$(error no default_version in $(EXTENSION).control)
endif

MODULE_big = s2s_tracking
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script is assembled from one fragment per concern (sql/install/NN_*.sql);
# older versions' full scripts (frozen) and the upgrade scripts are installed as they are.
# sql/ holds nothing else: the tests are under test/.
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))

PG_CPPFLAGS = -I$(srcdir)/src -DS2S_VERSION='"$(EXTVERSION)"'
SHLIB_LINK = -lcurl -pthread
ifeq ($(WERROR),1)
PG_CFLAGS += -Werror
endif

# The tests live under test/ (--inputdir): every test/sql/NAME.sql is a pg_regress test,
# every test/specs/NAME.spec an isolation test, their outputs in test/expected/.
# "extension" (which creates the extension in the test database) runs first.
REGRESS_ALL = $(sort $(patsubst test/sql/%.sql,%,$(wildcard test/sql/*.sql)))
REGRESS = extension $(filter-out extension,$(REGRESS_ALL))
REGRESS_OPTS = --inputdir=test --temp-instance=tmp_check_regress \
	--temp-config=$(srcdir)/test/regress.conf
ISOLATION = $(sort $(patsubst test/specs/%.spec,%,$(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --temp-instance=tmp_check_isolation \
	--temp-config=$(srcdir)/test/regress.conf
TAP_TESTS = 1
PROVE_TESTS = $(or $(TAP),$(sort $(wildcard test/t/*.pl)))
PROVE_FLAGS = -I $(srcdir)/test/perl

EXTRA_CLEAN = sql/$(EXTENSION)--$(EXTVERSION).sql tmp_check_regress tmp_check_isolation \
	results output_iso regression.diffs regression.out

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/$(EXTENSION)--$(EXTVERSION).sql: $(sort $(wildcard sql/install/*.sql))
	cat $^ > $@

# Headers are few; rebuild every object when any of them changes, or the version does.
$(OBJS): $(wildcard src/*.h) $(EXTENSION).control

.PHONY: check-regress check-isolation check-tap
check-regress:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
check-isolation:
ifneq ($(ISOLATION),)
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)
endif
check-tap:
	$(prove_installcheck)

# Standalone C unit tests (test/unit/): the pure retry, netcheck, redaction and amount modules and the
# libcurl client, linked directly, without a server. The HTTP tests start
# test/receiver/receiver.py on loopback (test/unit/receiver.c). Each prints TAP lines and a
# "NAME: N passed, M failed" line.
UNIT_TESTS = test/unit/retry_test test/unit/http_test test/unit/http_driver_test \
	test/unit/http_driver_fault_test test/unit/netcheck_test test/unit/redact_test \
	test/unit/amount_test
EXTRA_CLEAN += $(UNIT_TESTS)

test/unit/retry_test: test/unit/retry_test.c src/retry.c src/retry.h src/http.h test/unit/unit.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ test/unit/retry_test.c src/retry.c -lm

test/unit/http_test: test/unit/http_test.c test/unit/receiver.c test/unit/receiver.h src/http.c \
		src/http.h src/netcheck.c src/netcheck.h test/unit/unit.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ test/unit/http_test.c test/unit/receiver.c src/http.c \
		src/netcheck.c -lcurl

# the same tests, the client driven by a thread of its own (src/http_driver.c)
test/unit/http_driver_test: test/unit/http_test.c test/unit/receiver.c test/unit/receiver.h src/http.c \
		src/http.h src/http_driver.c src/http_driver.h src/netcheck.c src/netcheck.h test/unit/unit.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -DHTTP_TEST_DRIVER -o $@ test/unit/http_test.c test/unit/receiver.c \
		src/http.c src/http_driver.c src/netcheck.c -lcurl -lpthread

# The driver when memory, its thread or its descriptors cannot be had (test/unit/fault.h):
# linked with copies of http_driver.o and http.o whose calls to the allocator,
# pthread_create and eventfd are renamed to test/unit/fault.c's, which fail them when the
# test says. Nothing else in the process is touched (libcurl's own allocations neither),
# and a call the renaming missed (another name for an allocator) fails the build.
OBJCOPY ?= objcopy
FAULT_DRIVER_CALLS = malloc calloc realloc free pthread_create eventfd
FAULT_CLIENT_CALLS = malloc calloc realloc strdup free
FAULT_UNRENAMED = malloc|calloc|realloc|reallocarray|free|strdup|strndup|__strdup|__strndup|pthread_create|eventfd
test/unit/fault_http_driver.o: src/http_driver.c src/http_driver.h src/http.h src/netcheck.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ src/http_driver.c
	$(OBJCOPY) $(foreach f,$(FAULT_DRIVER_CALLS),--redefine-sym $(f)=fault_driver_$(f)) $@
	@! nm -u $@ | grep -wE '$(FAULT_UNRENAMED)' || { echo "$@: calls left unrenamed"; exit 1; }
test/unit/fault_http.o: src/http.c src/http.h src/netcheck.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ src/http.c
	$(OBJCOPY) $(foreach f,$(FAULT_CLIENT_CALLS),--redefine-sym $(f)=fault_client_$(f)) $@
	@! nm -u $@ | grep -wE '$(FAULT_UNRENAMED)' || { echo "$@: calls left unrenamed"; exit 1; }
test/unit/http_driver_fault_test: test/unit/http_driver_fault_test.c test/unit/fault.c \
		test/unit/fault.h test/unit/fault_http_driver.o test/unit/fault_http.o test/unit/receiver.c \
		test/unit/receiver.h src/http_driver.h src/http.h src/netcheck.c src/netcheck.h test/unit/unit.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ test/unit/http_driver_fault_test.c test/unit/fault.c \
		test/unit/receiver.c test/unit/fault_http_driver.o test/unit/fault_http.o src/netcheck.c \
		-lcurl -lpthread
EXTRA_CLEAN += test/unit/fault_http_driver.o test/unit/fault_http.o

test/unit/netcheck_test: test/unit/netcheck_test.c src/netcheck.c src/netcheck.h test/unit/unit.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ test/unit/netcheck_test.c src/netcheck.c

test/unit/redact_test: test/unit/redact_test.c src/redact.c src/redact.h src/hex.h test/unit/unit.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ test/unit/redact_test.c src/redact.c

test/unit/amount_test: test/unit/amount_test.c src/amount.c src/amount.h test/unit/unit.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ test/unit/amount_test.c src/amount.c

.PHONY: check-unit
check-unit: $(UNIT_TESTS)
	@rc=0; for t in $(UNIT_TESTS); do ./$$t $(srcdir)/test/receiver/receiver.py || rc=1; done; exit $$rc

# Hand-written or library, measured (doc/transport.md): the percent-encoder, URL building and
# Retry-After dates against libcurl's. Outside the server, with the fuzz targets' palloc
# (test/fuzz/shim.c) and the frontend libpgcommon.
EXTRA_CLEAN += test/bench/library_bench
test/bench/library_bench: test/bench/library_bench.c src/render.c src/render.h src/amount.c src/amount.h \
		src/retry.c src/retry.h test/fuzz/shim.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -I$(srcdir)/test/fuzz -o $@ test/bench/library_bench.c src/render.c \
		src/amount.c src/retry.c test/fuzz/shim.c $(pkglibdir)/libpgcommon.a $(pkglibdir)/libpgport.a \
		-lcurl -lm -Wno-missing-prototypes

# ---- hardening (doc/hardening.md) ----
# make fuzz [FUZZ_SECONDS=20] [FUZZ_PG=17|18]: libFuzzer targets for the pure modules
# (clang; replays the stored corpus, then fuzzes each target for FUZZ_SECONDS; fails on
# any crash). FUZZ_PG builds them with the headers and libpgcommon of that version's
# Debian root instead of PG_CONFIG's.
# make asan: the regression, isolation and TAP suites against a build with AddressSanitizer
# and UndefinedBehaviorSanitizer (gcc), the sanitizer runtime preloaded into the server.
# make valgrind: the server under valgrind while the worker delivers a few hundred requests;
# fails on a definite leak or a memory error in our code.
# make tsan: the HTTP client driven by its thread (http_driver_test) under ThreadSanitizer
# (gcc); fails on any data race between the caller's thread and the HTTP thread.
FUZZ_SECONDS ?= 20
EXTRA_CLEAN += test/fuzz/out test/unit/http_driver_tsan_test

.PHONY: fuzz asan valgrind tsan
tsan:
	$(CC) $(CPPFLAGS) -Isrc -fsanitize=thread -fno-omit-frame-pointer -g -O1 -DHTTP_TEST_DRIVER \
		-o test/unit/http_driver_tsan_test test/unit/http_test.c test/unit/receiver.c src/http.c \
		src/http_driver.c src/netcheck.c -lcurl -lpthread
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" ./test/unit/http_driver_tsan_test \
		$(srcdir)/test/receiver/receiver.py
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_PG=$(FUZZ_PG) PG_CONFIG=$(PG_CONFIG) \
		$(srcdir)/test/fuzz/run-fuzz $(FUZZ_TARGETS)
asan:
	PG_CONFIG=$(PG_CONFIG) $(srcdir)/test/asan/run
valgrind:
	PG_CONFIG=$(PG_CONFIG) $(srcdir)/test/asan/valgrind-worker
