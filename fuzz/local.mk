# SPDX-License-Identifier: MIT
# fuzz: libFuzzer targets for every parser of untrusted bytes (fuzz/README.md). Built with clang
# (libFuzzer, ASan, UBSan) outside the normal build: `make fuzz` builds each target and runs it
# for FUZZ_SECONDS on a scratch corpus (fuzz-corpus/NAME) seeded from fuzz/corpus/NAME; a crash,
# leak, sanitizer report or timeout fails it and leaves the reproducer in fuzz-crashes/NAME/.
FUZZ_TARGETS = pyscan results lcov demux engine_json orphans modulemap history config metrics
FUZZ_SECONDS = 60
FUZZ_CC = clang
FUZZ_MAX_LEN = 8192
# 0: a new random seed each run; a number makes the run repeatable (tools/test-all's short pass)
FUZZ_SEED = 0
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
	$(top_srcdir)/src/core/coverage.c $(top_srcdir)/src/core/exitstatus.c $(STLIB_SRC) \
	$(STLIB_JSON_SRC)
FUZZ_CORE_CFLAGS = $(LIBCONFIG_CFLAGS) $(YAJL_CFLAGS)
FUZZ_CORE_LIBS = $(YAJL_LIBS) $(PTHREAD_LIBS) -lm
FUZZ_HDRS = $(top_srcdir)/fuzz/fuzz_common.h
# the import graph (src/pygraph), for the readers that build one
PYGRAPH_SRC = $(top_srcdir)/src/pygraph/pygraph.c $(top_srcdir)/src/pygraph/pyscan.c \
	$(top_srcdir)/src/pygraph/scancache.c

FUZZ_BINS = $(FUZZ_TARGETS:%=fuzz/fuzz-%)

fuzz/fuzz-pyscan: $(top_srcdir)/fuzz/fuzz_pyscan.c $(top_srcdir)/src/pygraph/pyscan.c $(STLIB_SRC)
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) $(top_srcdir)/fuzz/fuzz_pyscan.c $(top_srcdir)/src/pygraph/pyscan.c $(STLIB_SRC) \
	  -lm -o $@

fuzz/fuzz-results: $(top_srcdir)/fuzz/fuzz_results.c $(FUZZ_CORE_SRC) $(FUZZ_HDRS)
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) $(FUZZ_CORE_CFLAGS) $(top_srcdir)/fuzz/fuzz_results.c $(FUZZ_CORE_SRC) \
	  $(FUZZ_CORE_LIBS) -o $@

fuzz/fuzz-lcov: $(top_srcdir)/fuzz/fuzz_lcov.c $(FUZZ_CORE_SRC) $(FUZZ_HDRS)
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) $(FUZZ_CORE_CFLAGS) $(top_srcdir)/fuzz/fuzz_lcov.c $(FUZZ_CORE_SRC) \
	  $(FUZZ_CORE_LIBS) -o $@

fuzz/fuzz-orphans: $(top_srcdir)/fuzz/fuzz_orphans.c $(top_srcdir)/src/core/orphans.c \
		$(top_srcdir)/plugins/common/modulemap.c $(top_srcdir)/src/core/checkcache.c \
		$(PYGRAPH_SRC) $(FUZZ_CORE_SRC) $(FUZZ_HDRS)
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) $(FUZZ_CORE_CFLAGS) $(top_srcdir)/fuzz/fuzz_orphans.c \
	  $(top_srcdir)/src/core/orphans.c $(top_srcdir)/plugins/common/modulemap.c \
	  $(top_srcdir)/src/core/checkcache.c $(PYGRAPH_SRC) $(FUZZ_CORE_SRC) $(FUZZ_CORE_LIBS) -o $@

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
		$(STLIB_SRC) $(STLIB_JSON_SRC) $(FUZZ_HDRS)
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) $(YAJL_CFLAGS) $(top_srcdir)/fuzz/fuzz_modulemap.c \
	  $(top_srcdir)/plugins/common/modulemap.c $(STLIB_SRC) $(STLIB_JSON_SRC) $(YAJL_LIBS) -lm \
	  -o $@

fuzz/fuzz-demux: $(top_srcdir)/fuzz/fuzz_demux.c $(top_srcdir)/plugins/common/engine_demux.c
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) $(top_srcdir)/fuzz/fuzz_demux.c $(top_srcdir)/plugins/common/engine_demux.c \
	  -o $@

# includes engine_runtime.c (its reply readers are static); links the rest of the engine code
fuzz/fuzz-engine_json: $(top_srcdir)/fuzz/fuzz_engine_json.c $(ENGINE_COMMON_SRC) $(STLIB_SRC) \
		$(STLIB_JSON_SRC) $(FUZZ_HDRS)
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) $(LIBCURL_CFLAGS) $(YAJL_CFLAGS) \
	  $(top_srcdir)/fuzz/fuzz_engine_json.c $(top_srcdir)/plugins/common/engine_http.c \
	  $(top_srcdir)/plugins/common/engine_demux.c $(top_srcdir)/plugins/common/engine_util.c \
	  $(STLIB_SRC) $(STLIB_JSON_SRC) $(LIBCURL_LIBS) $(YAJL_LIBS) $(PTHREAD_LIBS) -lm -o $@

# includes exporter_prometheus.c (its request handler is static) and drives libmicrohttpd
fuzz/fuzz-metrics: $(top_srcdir)/fuzz/fuzz_metrics.c $(PROM_SOURCES) $(STLIB_SRC) $(FUZZ_HDRS)
	@$(MKDIR_P) fuzz
	$(FUZZ_COMPILE) -I$(top_srcdir)/plugins/exporter-prometheus $(LIBMICROHTTPD_CFLAGS) \
	  $(LIBCURL_CFLAGS) $(top_srcdir)/fuzz/fuzz_metrics.c \
	  $(top_srcdir)/plugins/exporter-prometheus/prom_text.c $(STLIB_SRC) $(LIBMICROHTTPD_LIBS) \
	  $(LIBCURL_LIBS) $(PTHREAD_LIBS) -lm -o $@

fuzz-build: $(FUZZ_BINS)

# make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS='results lcov']: each target in turn, then a summary.
# A failed target does not stop the others; make fails at the end.
fuzz: fuzz-build
	$(SHELL) $(top_srcdir)/fuzz/run.sh --bindir fuzz --corpus $(top_srcdir)/fuzz/corpus \
	  --scratch $(FUZZ_SCRATCH) --crashes $(FUZZ_CRASHES) --seconds $(FUZZ_SECONDS) \
	  --max-len $(FUZZ_MAX_LEN) --seed $(FUZZ_SEED) $(FUZZ_TARGETS)

fuzz-clean:
	rm -rf fuzz-corpus fuzz-crashes $(FUZZ_BINS)

.PHONY: fuzz fuzz-build fuzz-clean
CLEANFILES += $(FUZZ_BINS)
EXTRA_DIST += fuzz/README.md fuzz/run.sh fuzz/lsan.supp fuzz/fuzz_common.h $(FUZZ_TARGETS:%=fuzz/fuzz_%.c) \
	fuzz/corpus

# make check: every target, built with the normal compiler and fuzz/replay.c instead of
# libFuzzer, replays its kept corpus (seeds and the reproducers of what was found and fixed);
# in UNIT_TESTS, so check-valgrind replays them under valgrind too.
FUZZ_REPLAY_TESTS = fuzz/replay-pyscan fuzz/replay-results fuzz/replay-lcov fuzz/replay-demux \
	fuzz/replay-orphans fuzz/replay-modulemap fuzz/replay-history fuzz/replay-config
if BUILD_PLUGIN_RUNTIME_DOCKER
FUZZ_REPLAY_TESTS += fuzz/replay-engine_json
else
if BUILD_PLUGIN_RUNTIME_PODMAN
FUZZ_REPLAY_TESTS += fuzz/replay-engine_json
endif
endif
if BUILD_PLUGIN_EXPORTER_PROMETHEUS
FUZZ_REPLAY_TESTS += fuzz/replay-metrics
endif
UNIT_TESTS += $(FUZZ_REPLAY_TESTS)
FUZZ_REPLAY_CFLAGS = $(AM_CFLAGS) -I$(top_srcdir)/fuzz -I$(top_srcdir)/plugins/common
FUZZ_REPLAY_CORE_LIBS = src/core/libselftest.la
fuzz_replay_pyscan_SOURCES = fuzz/replay.c fuzz/fuzz_pyscan.c
fuzz_replay_pyscan_CFLAGS = $(FUZZ_REPLAY_CFLAGS) -DFUZZ_NAME='"pyscan"'
fuzz_replay_pyscan_LDADD = src/pygraph/libstpygraph.la $(STLIB_LIBS)
fuzz_replay_results_SOURCES = fuzz/replay.c fuzz/fuzz_results.c
fuzz_replay_results_CFLAGS = $(FUZZ_REPLAY_CFLAGS) $(YAJL_CFLAGS) -DFUZZ_NAME='"results"'
fuzz_replay_results_LDADD = $(FUZZ_REPLAY_CORE_LIBS)
fuzz_replay_lcov_SOURCES = fuzz/replay.c fuzz/fuzz_lcov.c
fuzz_replay_lcov_CFLAGS = $(FUZZ_REPLAY_CFLAGS) $(YAJL_CFLAGS) -DFUZZ_NAME='"lcov"'
fuzz_replay_lcov_LDADD = $(FUZZ_REPLAY_CORE_LIBS)
fuzz_replay_orphans_SOURCES = fuzz/replay.c fuzz/fuzz_orphans.c
fuzz_replay_orphans_CFLAGS = $(FUZZ_REPLAY_CFLAGS) $(YAJL_CFLAGS) -DFUZZ_NAME='"orphans"'
fuzz_replay_orphans_LDADD = $(FUZZ_REPLAY_CORE_LIBS)
fuzz_replay_history_SOURCES = fuzz/replay.c fuzz/fuzz_history.c
fuzz_replay_history_CFLAGS = $(FUZZ_REPLAY_CFLAGS) $(YAJL_CFLAGS) -DFUZZ_NAME='"history"'
fuzz_replay_history_LDADD = $(FUZZ_REPLAY_CORE_LIBS)
fuzz_replay_config_SOURCES = fuzz/replay.c fuzz/fuzz_config.c
fuzz_replay_config_CFLAGS = $(FUZZ_REPLAY_CFLAGS) $(LIBCONFIG_CFLAGS) -DFUZZ_NAME='"config"'
fuzz_replay_config_LDADD = $(FUZZ_REPLAY_CORE_LIBS)
fuzz_replay_modulemap_SOURCES = fuzz/replay.c fuzz/fuzz_modulemap.c plugins/common/modulemap.c
fuzz_replay_modulemap_CFLAGS = $(FUZZ_REPLAY_CFLAGS) $(YAJL_CFLAGS) -DFUZZ_NAME='"modulemap"'
fuzz_replay_modulemap_LDADD = $(STLIB_JSON_LIBS) $(STLIB_LIBS) $(YAJL_LIBS)
fuzz_replay_demux_SOURCES = fuzz/replay.c fuzz/fuzz_demux.c plugins/common/engine_demux.c
fuzz_replay_demux_CFLAGS = $(FUZZ_REPLAY_CFLAGS) -DFUZZ_NAME='"demux"'
fuzz_replay_engine_json_SOURCES = fuzz/replay.c fuzz/fuzz_engine_json.c \
	plugins/common/engine_http.c plugins/common/engine_demux.c plugins/common/engine_util.c
fuzz_replay_engine_json_CFLAGS = $(FUZZ_REPLAY_CFLAGS) $(ENGINE_COMMON_CFLAGS) \
	-DFUZZ_NAME='"engine_json"'
fuzz_replay_engine_json_LDADD = $(STLIB_JSON_LIBS) $(STLIB_LIBS) $(LIBCURL_LIBS) $(YAJL_LIBS) $(PTHREAD_LIBS)
fuzz_replay_metrics_SOURCES = fuzz/replay.c fuzz/fuzz_metrics.c \
	plugins/exporter-prometheus/prom_text.c
fuzz_replay_metrics_CFLAGS = $(FUZZ_REPLAY_CFLAGS) -I$(top_srcdir)/plugins/exporter-prometheus \
	$(LIBMICROHTTPD_CFLAGS) $(LIBCURL_CFLAGS) -DFUZZ_NAME='"metrics"'
fuzz_replay_metrics_LDADD = $(STLIB_LIBS) $(LIBMICROHTTPD_LIBS) $(LIBCURL_LIBS) $(PTHREAD_LIBS) -lm
EXTRA_DIST += fuzz/replay.c
