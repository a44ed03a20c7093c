# SPDX-License-Identifier: MIT
# Check suites of the core (tests/unit). Every suite is in UNIT_TESTS, which the component
# local.mk files append to as well (tests/plugins, fuzz replays, plugins/*): the lines below
# expand it lazily into check_PROGRAMS and TESTS, and `make check-valgrind` (tests/local.mk) runs
# it under valgrind. Append a suite to UNIT_TESTS only, never to check_PROGRAMS or TESTS too
# (it would be listed, and counted, twice).
UNIT_TESTS += tests/unit/test_util tests/unit/test_settings tests/unit/test_loader \
	tests/unit/test_results tests/unit/test_runner
if HAVE_CHECK
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)
endif
UNIT_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(LIBCONFIG_CFLAGS) $(YAJL_CFLAGS)
UNIT_LDADD = src/core/libselftest.la $(CHECK_LIBS)
tests_unit_test_util_SOURCES = tests/unit/test_util.c tests/unit/unit.h
tests_unit_test_util_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_util_LDADD = $(UNIT_LDADD)
tests_unit_test_settings_SOURCES = tests/unit/test_settings.c tests/unit/unit.h
tests_unit_test_settings_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_settings_LDADD = $(UNIT_LDADD)
tests_unit_test_loader_SOURCES = tests/unit/test_loader.c tests/unit/unit.h
tests_unit_test_loader_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_loader_LDADD = $(UNIT_LDADD)
tests_unit_test_results_SOURCES = tests/unit/test_results.c tests/unit/unit.h
tests_unit_test_results_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_results_LDADD = $(UNIT_LDADD)
tests_unit_test_runner_SOURCES = tests/unit/test_runner.c tests/unit/unit.h
tests_unit_test_runner_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_runner_LDADD = $(UNIT_LDADD)
# hostile and corrupted input: the lock, JSON nesting, LCOV edge cases
UNIT_TESTS += tests/unit/test_reliability
tests_unit_test_reliability_SOURCES = tests/unit/test_reliability.c tests/unit/unit.h
tests_unit_test_reliability_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_reliability_LDADD = $(UNIT_LDADD)
# the one status convention: st_status_str, the status/verdict -> exit status mapping, and the
# statuses the readers and stores report
UNIT_TESTS += tests/unit/test_exitstatus
tests_unit_test_exitstatus_SOURCES = tests/unit/test_exitstatus.c tests/unit/unit.h
tests_unit_test_exitstatus_CFLAGS = $(UNIT_CFLAGS) $(SQLITE3_CFLAGS)
tests_unit_test_exitstatus_LDADD = $(UNIT_LDADD) $(SQLITE3_LIBS)
UNIT_TESTS += tests/unit/test_metricsdb
tests_unit_test_metricsdb_SOURCES = tests/unit/test_metricsdb.c tests/unit/unit.h
tests_unit_test_metricsdb_CFLAGS = $(UNIT_CFLAGS) $(SQLITE3_CFLAGS)
tests_unit_test_metricsdb_LDADD = $(UNIT_LDADD) $(SQLITE3_LIBS)
UNIT_TESTS += tests/unit/test_quarantine
tests_unit_test_quarantine_SOURCES = tests/unit/test_quarantine.c tests/unit/unit.h
tests_unit_test_quarantine_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_quarantine_LDADD = $(UNIT_LDADD)

# The orphan files (orphan_modules.json, orphan_classifications.json) and the check cache.
ORPHANS_UNIT_TESTS = tests/unit/test_orphans
if HAVE_CHECK
UNIT_TESTS += $(ORPHANS_UNIT_TESTS)
endif
tests_unit_test_orphans_SOURCES = tests/unit/test_orphans.c tests/unit/unit.h
tests_unit_test_orphans_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(YAJL_CFLAGS) $(LIBCONFIG_CFLAGS)
tests_unit_test_orphans_LDADD = src/core/libselftest.la $(CHECK_LIBS)

# The import graph (src/pygraph): lexer traps (test_pyscan), resolution against the hand-written
# fixture tree tests/fixtures/pygraph/EXPECTED and bad input (test_pygraph), and the comparison
# with the Python ast reference on real trees (tests/integration/test_pygraph_reference.py).
PYGRAPH_UNIT_TESTS = tests/unit/test_pyscan tests/unit/test_pygraph
if HAVE_CHECK
UNIT_TESTS += $(PYGRAPH_UNIT_TESTS)
endif
tests_unit_test_pyscan_SOURCES = tests/unit/test_pyscan.c
tests_unit_test_pyscan_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_test_pyscan_LDADD = src/pygraph/libstpygraph.la $(STLIB_LIBS) $(CHECK_LIBS)
tests_unit_test_pygraph_SOURCES = tests/unit/test_pygraph.c
tests_unit_test_pygraph_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) \
	-DPYGRAPH_FIXTURE_DIR='"$(abs_top_srcdir)/tests/fixtures/pygraph"'
# the suite builds its trees with the core's helpers (paths, buffers, st_rm_rf)
tests_unit_test_pygraph_LDADD = src/pygraph/libstpygraph.la src/core/libselftest.la $(CHECK_LIBS)

EXTRA_DIST += tests/fixtures/pygraph

# Change-aware runs (run --changed): the selection on a tree with a known import graph, the
# batch plan, and what metrics.db (schema 2: runs.git_commit) says about the last passing run.
UNIT_TESTS += tests/unit/test_changed
tests_unit_test_changed_SOURCES = tests/unit/test_changed.c tests/unit/unit.h
tests_unit_test_changed_CFLAGS = $(UNIT_CFLAGS) $(SQLITE3_CFLAGS)
tests_unit_test_changed_LDADD = $(UNIT_LDADD) $(SQLITE3_LIBS)
# JUnit XML and the HTML report: escaping, names and counts, the crash batch, the page
UNIT_TESTS += tests/unit/test_reports
tests_unit_test_reports_SOURCES = tests/unit/test_reports.c tests/unit/unit.h
tests_unit_test_reports_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_reports_LDADD = $(UNIT_LDADD)
