# fuzz: libFuzzer targets for every parser of untrusted bytes (fuzz/README.md). Built with clang
# (libFuzzer, ASan, UBSan) outside the normal build: `make fuzz` builds each target and runs it
# for FUZZ_SECONDS on a scratch corpus (fuzz-corpus/NAME) seeded from fuzz/corpus/NAME; a crash,
# leak, sanitizer report or timeout fails it and leaves the reproducer in fuzz-crashes/NAME/.
FUZZ_TARGETS = pyscan results lcov demux engine_json orphans modulemap history config metrics
FUZZ_SECONDS = 60
FUZZ_CC = clang
FUZZ_MAX_LEN = 8192
FUZZ_SCRATCH = fuzz-corpus
FUZZ_CRASHES = fuzz-crashes
FUZZ_FLAGS = -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined
FUZZ_CPPFLAGS = $(DEFS) -I$(top_builddir) $(AM_CPPFLAGS) -I$(top_srcdir)/fuzz \
	-I$(top_srcdir)/plugins/common
FUZZ_COMPILE = $(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_CPPFLAGS)
# the core's readers, with what they call
FUZZ_CORE_SRC = $(top_srcdir)/src/core/util.c $(top_srcdir)/src/core/log.c \
	$(top_srcdir)/src/core/json.c $(top_srcdir)/src/core/results.c \
	$(top_srcdir)/src/core/exitstatus.c
FUZZ_CORE_CFLAGS = $(LIBCONFIG_CFLAGS) $(YAJL_CFLAGS)
FUZZ_CORE_LIBS = $(YAJL_LIBS) $(PTHREAD_LIBS) -lm
FUZZ_HDRS = $(top_srcdir)/fuzz/fuzz_common.h

FUZZ_BINS = $(FUZZ_TARGETS:%=fuzz/fuzz-%)

fuzz/fuzz-pyscan: $(top_srcdir)/fuzz/fuzz_pyscan.c $(top_srcdir)/src/core/pyscan.c
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) $(top_srcdir)/fuzz/fuzz_pyscan.c $(top_srcdir)/src/core/pyscan.c -o $@

fuzz/fuzz-results: $(top_srcdir)/fuzz/fuzz_results.c $(FUZZ_CORE_SRC) $(FUZZ_HDRS)
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) $(FUZZ_CORE_CFLAGS) $(top_srcdir)/fuzz/fuzz_results.c $(FUZZ_CORE_SRC) \
	  $(FUZZ_CORE_LIBS) -o $@

fuzz/fuzz-lcov: $(top_srcdir)/fuzz/fuzz_lcov.c $(FUZZ_CORE_SRC) $(FUZZ_HDRS)
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) $(FUZZ_CORE_CFLAGS) $(top_srcdir)/fuzz/fuzz_lcov.c $(FUZZ_CORE_SRC) \
	  $(FUZZ_CORE_LIBS) -o $@

fuzz/fuzz-orphans: $(top_srcdir)/fuzz/fuzz_orphans.c $(top_srcdir)/src/core/orphans.c \
		$(FUZZ_CORE_SRC) $(FUZZ_HDRS)
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) $(FUZZ_CORE_CFLAGS) $(top_srcdir)/fuzz/fuzz_orphans.c \
	  $(top_srcdir)/src/core/orphans.c $(FUZZ_CORE_SRC) $(FUZZ_CORE_LIBS) -o $@

fuzz/fuzz-history: $(top_srcdir)/fuzz/fuzz_history.c $(top_srcdir)/src/core/history.c \
		$(FUZZ_CORE_SRC) $(FUZZ_HDRS)
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) $(FUZZ_CORE_CFLAGS) $(SQLITE3_CFLAGS) $(top_srcdir)/fuzz/fuzz_history.c \
	  $(top_srcdir)/src/core/history.c $(FUZZ_CORE_SRC) $(FUZZ_CORE_LIBS) $(SQLITE3_LIBS) -o $@

fuzz/fuzz-config: $(top_srcdir)/fuzz/fuzz_config.c $(top_srcdir)/src/core/settings.c \
		$(FUZZ_CORE_SRC) $(FUZZ_HDRS)
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) $(FUZZ_CORE_CFLAGS) $(top_srcdir)/fuzz/fuzz_config.c \
	  $(top_srcdir)/src/core/settings.c $(FUZZ_CORE_SRC) $(FUZZ_CORE_LIBS) $(LIBCONFIG_LIBS) -o $@

fuzz/fuzz-modulemap: $(top_srcdir)/fuzz/fuzz_modulemap.c $(top_srcdir)/plugins/common/modulemap.c \
		$(FUZZ_HDRS)
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) $(YAJL_CFLAGS) $(top_srcdir)/fuzz/fuzz_modulemap.c \
	  $(top_srcdir)/plugins/common/modulemap.c $(YAJL_LIBS) -o $@

fuzz/fuzz-demux: $(top_srcdir)/fuzz/fuzz_demux.c $(top_srcdir)/plugins/common/engine_demux.c
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) $(top_srcdir)/fuzz/fuzz_demux.c $(top_srcdir)/plugins/common/engine_demux.c \
	  -o $@

# includes engine_runtime.c (its reply readers are static); links the rest of the engine code
fuzz/fuzz-engine_json: $(top_srcdir)/fuzz/fuzz_engine_json.c $(ENGINE_COMMON_SRC) $(FUZZ_HDRS)
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) $(LIBCURL_CFLAGS) $(YAJL_CFLAGS) \
	  $(top_srcdir)/fuzz/fuzz_engine_json.c $(top_srcdir)/plugins/common/engine_http.c \
	  $(top_srcdir)/plugins/common/engine_demux.c $(LIBCURL_LIBS) $(YAJL_LIBS) \
	  $(PTHREAD_LIBS) -o $@

# includes exporter_prometheus.c (its request handler is static) and drives libmicrohttpd
fuzz/fuzz-metrics: $(top_srcdir)/fuzz/fuzz_metrics.c $(PROM_SOURCES) $(FUZZ_HDRS)
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) -I$(top_srcdir)/plugins/exporter-prometheus $(LIBMICROHTTPD_CFLAGS) \
	  $(LIBCURL_CFLAGS) $(top_srcdir)/fuzz/fuzz_metrics.c \
	  $(top_srcdir)/plugins/exporter-prometheus/prom_text.c $(LIBMICROHTTPD_LIBS) \
	  $(LIBCURL_LIBS) $(PTHREAD_LIBS) -lm -o $@

fuzz-build: $(FUZZ_BINS)

# make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS='results lcov']: each target in turn, then a summary.
# A failed target does not stop the others; make fails at the end.
fuzz: fuzz-build
	$(SHELL) $(top_srcdir)/fuzz/run.sh --bindir fuzz --corpus $(top_srcdir)/fuzz/corpus \
	  --scratch $(FUZZ_SCRATCH) --crashes $(FUZZ_CRASHES) --seconds $(FUZZ_SECONDS) \
	  --max-len $(FUZZ_MAX_LEN) $(FUZZ_TARGETS)

fuzz-clean:
	rm -rf fuzz-corpus fuzz-crashes $(FUZZ_BINS)

.PHONY: fuzz fuzz-build fuzz-clean
CLEANFILES += $(FUZZ_BINS)
EXTRA_DIST += fuzz/README.md fuzz/run.sh fuzz/lsan.supp fuzz/fuzz_common.h $(FUZZ_TARGETS:%=fuzz/fuzz_%.c) \
	fuzz/corpus
