# SPDX-License-Identifier: MIT
# libselftest (a convenience library linked into the CLI and the unit tests) and the CLI. The
# import graph is its own library (src/pygraph), linked in here.
noinst_LTLIBRARIES += src/core/libselftest.la
src_core_libselftest_la_SOURCES = \
	src/core/util.c src/core/util.h \
	src/core/log.c src/core/log.h \
	src/core/sdnotify.c src/core/sdnotify.h \
	src/core/signals.c src/core/signals.h \
	src/core/json.c src/core/json.h \
	src/core/settings.c src/core/settings.h \
	src/core/loader.c src/core/loader.h \
	src/core/plugin_services.c src/core/plugin_services.h \
	src/core/results.c src/core/results.h \
	src/core/coverage.c src/core/coverage.h \
	src/core/exitstatus.c src/core/exitstatus.h \
	src/core/pipeline.c src/core/pipeline.h src/core/pipeline_stages.h \
	src/core/pipeline_discover.c src/core/pipeline_progress.c \
	src/core/pipeline_integrate.c src/core/pipeline_export.c \
	src/core/runner.c src/core/runner.h \
	src/core/shards.c src/core/shards.h \
	src/core/lock.c src/core/lock.h \
	src/core/metricsdb.c src/core/metricsdb.h \
	src/core/history.c src/core/history.h \
	src/core/junit.c src/core/junit.h \
	src/core/htmlreport.c src/core/htmlreport.h \
	src/core/plugins.c src/core/plugins.h
# the orphan files of docs/spec.md §7.4 (orphan_modules.json, orphan_classifications.json) and
# the import checks' cache
src_core_libselftest_la_SOURCES += src/core/orphans.c src/core/orphans.h \
	plugins/common/modulemap.c plugins/common/modulemap.h \
	src/core/checkcache.c src/core/checkcache.h \
	src/core/preflightcache.c src/core/preflightcache.h \
	src/core/changed.c src/core/changed.h src/core/pipeline_changed.c \
	src/core/quarantine.c src/core/quarantine.h src/core/pipeline_rerun.c \
	src/core/flakycmd.c src/core/flakycmd.h \
	src/core/testdeps.c src/core/testdeps.h
src_core_libselftest_la_CFLAGS = $(AM_CFLAGS) $(LIBCONFIG_CFLAGS) $(YAJL_CFLAGS) $(SQLITE3_CFLAGS) $(LTDLINCL)
src_core_libselftest_la_LIBADD = src/pygraph/libstpygraph.la src/lib/libstlib.la src/lib/libstlib-json.la \
	$(LIBLTDL) $(LIBCONFIG_LIBS) $(YAJL_LIBS) $(SQLITE3_LIBS) $(PTHREAD_LIBS) -lm

bin_PROGRAMS += selftest-core
selftest_core_SOURCES = src/core/main.c src/core/cli.c src/core/cli.h
selftest_core_CFLAGS = $(AM_CFLAGS) $(LIBCONFIG_CFLAGS) $(YAJL_CFLAGS)
selftest_core_LDADD = src/core/libselftest.la

# JUnit XML and the HTML report (src/core/junit.c, src/core/htmlreport.c)
EXTRA_DIST += docs/reports.md docs/html-report.png
