# SPDX-License-Identifier: MIT
# Tests: check suites (tests/unit), fixture plugins (tests/fixtures/plugins), integration tests
# against the real binary and real pytest (tests/integration, Python + TAP).
#
# Every test speaks TAP (check via CK_TAP_LOG_FILE_NAME=-), so the harness counts single checks,
# not files; .ci/run sums the .trs files.

FIXTURE_LDFLAGS = -module -avoid-version -shared -no-undefined -Wl,-z,defs \
	-export-symbols-regex '^(selftest_plugin_entry|not_the_entry)$$' -rpath /nowhere
FIXTURE_SRC = tests/fixtures/plugins/fixture_plugin.c
check_LTLIBRARIES += tests/fixtures/plugins/fx-good.la tests/fixtures/plugins/fx-major.la \
	tests/fixtures/plugins/fx-minor.la tests/fixtures/plugins/fx-small.la \
	tests/fixtures/plugins/fx-name.la tests/fixtures/plugins/fx-kind.la \
	tests/fixtures/plugins/fx-noentry.la tests/fixtures/plugins/fx-decline.la \
	tests/fixtures/plugins/fx-missing-op.la tests/fixtures/plugins/fx-create-fails.la
tests_fixtures_plugins_fx_good_la_SOURCES = $(FIXTURE_SRC)
tests_fixtures_plugins_fx_good_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_plugins_fx_major_la_SOURCES = $(FIXTURE_SRC)
tests_fixtures_plugins_fx_major_la_CPPFLAGS = $(AM_CPPFLAGS) -DFX_NAME='"fx-major"' -DFX_MAJOR=2 -DFX_MINOR=0
tests_fixtures_plugins_fx_major_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_plugins_fx_minor_la_SOURCES = $(FIXTURE_SRC)
tests_fixtures_plugins_fx_minor_la_CPPFLAGS = $(AM_CPPFLAGS) -DFX_NAME='"fx-minor"' -DFX_MINOR=99
tests_fixtures_plugins_fx_minor_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_plugins_fx_small_la_SOURCES = $(FIXTURE_SRC)
tests_fixtures_plugins_fx_small_la_CPPFLAGS = $(AM_CPPFLAGS) -DFX_NAME='"fx-small"' -DFX_SIZE=8
tests_fixtures_plugins_fx_small_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_plugins_fx_name_la_SOURCES = $(FIXTURE_SRC)
tests_fixtures_plugins_fx_name_la_CPPFLAGS = $(AM_CPPFLAGS) -DFX_NAME='"somebody-else"'
tests_fixtures_plugins_fx_name_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_plugins_fx_kind_la_SOURCES = $(FIXTURE_SRC)
tests_fixtures_plugins_fx_kind_la_CPPFLAGS = $(AM_CPPFLAGS) -DFX_NAME='"fx-kind"' -DFX_KIND=ST_KIND_INTEGRATOR
tests_fixtures_plugins_fx_kind_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_plugins_fx_noentry_la_SOURCES = $(FIXTURE_SRC)
tests_fixtures_plugins_fx_noentry_la_CPPFLAGS = $(AM_CPPFLAGS) -DFX_NAME='"fx-noentry"' -DFX_NO_ENTRY
tests_fixtures_plugins_fx_noentry_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_plugins_fx_decline_la_SOURCES = $(FIXTURE_SRC)
tests_fixtures_plugins_fx_decline_la_CPPFLAGS = $(AM_CPPFLAGS) -DFX_NAME='"fx-decline"' -DFX_DECLINE
tests_fixtures_plugins_fx_decline_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_plugins_fx_missing_op_la_SOURCES = $(FIXTURE_SRC)
tests_fixtures_plugins_fx_missing_op_la_CPPFLAGS = $(AM_CPPFLAGS) -DFX_NAME='"fx-missing-op"' -DFX_MISSING_OP
tests_fixtures_plugins_fx_missing_op_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_plugins_fx_create_fails_la_SOURCES = $(FIXTURE_SRC)
tests_fixtures_plugins_fx_create_fails_la_CPPFLAGS = $(AM_CPPFLAGS) -DFX_NAME='"fx-create-fails"' -DFX_CREATE_FAILS
tests_fixtures_plugins_fx_create_fails_la_LDFLAGS = $(FIXTURE_LDFLAGS)
# runtimes that cannot be set up (the exit status of each)
FIXTURE_RT_SRC = tests/fixtures/plugins/fixture_runtime.c
check_LTLIBRARIES += tests/fixtures/plugins/runtime-fx-create-fails.la \
	tests/fixtures/plugins/runtime-fx-start-fails.la \
	tests/fixtures/plugins/runtime-fx-bad-settings.la
tests_fixtures_plugins_runtime_fx_create_fails_la_SOURCES = $(FIXTURE_RT_SRC)
tests_fixtures_plugins_runtime_fx_create_fails_la_CPPFLAGS = $(AM_CPPFLAGS) \
	-DFX_NAME='"runtime-fx-create-fails"' -DFX_CREATE_FAILS
tests_fixtures_plugins_runtime_fx_create_fails_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_plugins_runtime_fx_start_fails_la_SOURCES = $(FIXTURE_RT_SRC)
tests_fixtures_plugins_runtime_fx_start_fails_la_CPPFLAGS = $(AM_CPPFLAGS) \
	-DFX_NAME='"runtime-fx-start-fails"' -DFX_START_FAILS
tests_fixtures_plugins_runtime_fx_start_fails_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_plugins_runtime_fx_bad_settings_la_SOURCES = $(FIXTURE_RT_SRC)
tests_fixtures_plugins_runtime_fx_bad_settings_la_CPPFLAGS = $(AM_CPPFLAGS) \
	-DFX_NAME='"runtime-fx-bad-settings"' -DFX_BAD_SETTINGS
tests_fixtures_plugins_runtime_fx_bad_settings_la_LDFLAGS = $(FIXTURE_LDFLAGS)

# ---- check suites ----------------------------------------------------------------------------
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
UNIT_TESTS += tests/unit/test_metricsdb
tests_unit_test_metricsdb_SOURCES = tests/unit/test_metricsdb.c tests/unit/unit.h
tests_unit_test_metricsdb_CFLAGS = $(UNIT_CFLAGS) $(SQLITE3_CFLAGS)
tests_unit_test_metricsdb_LDADD = $(UNIT_LDADD) $(SQLITE3_LIBS)

# ---- integration tests (the real binary, real pytest) ---------------------------------------
INTEGRATION_TESTS = tests/integration/test_taplib.py tests/integration/test_pytest_plugin.py \
	tests/integration/test_cli.py tests/integration/test_run_fixtures.py \
	tests/integration/test_networkx.py tests/integration/test_stores.py \
	tests/integration/test_orphan_checks.py tests/integration/test_paths.py \
	tests/integration/test_corpus_run.py tests/integration/test_batch_outcomes.py \
	tests/integration/test_daemon.py tests/integration/test_host_containment.py \
	tests/integration/test_crash_consistency.py tests/integration/test_faults.py
INTEGRATION_TESTS += tests/integration/test_reliability.py
INTEGRATION_TESTS += tests/integration/test_visible.py tests/integration/test_docs.py
TESTS += $(INTEGRATION_TESTS)
EXTRA_DIST += $(INTEGRATION_TESTS) tests/integration/taplib.py tests/fixtures/projects \
	tests/corpus/README.md tests/corpus/toolz.tar.gz tests/corpus/cachetools.tar.gz \
	tests/corpus/simplejson.tar.gz \
	tests/fixtures/plugins/fixture_plugin.c tests/fixtures/plugins/fixture_runtime.c sample

TEST_EXTENSIONS = .py
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
PY_LOG_DRIVER = $(LOG_DRIVER)
PY_LOG_COMPILER = $(PYTHON)
AM_TESTS_ENVIRONMENT = \
	CK_TAP_LOG_FILE_NAME=-; export CK_TAP_LOG_FILE_NAME; \
	CK_VERBOSITY=silent; export CK_VERBOSITY; \
	SELFTEST_BIN='$(abs_top_builddir)/selftest-core'; export SELFTEST_BIN; \
	SELF_TEST_PLUGIN_PATH='$(abs_top_builddir)/plugins:$(abs_top_builddir)/tests/fixtures/plugins'; \
	export SELF_TEST_PLUGIN_PATH; \
	SELF_TEST_SUPPORT_DIR='$(abs_top_srcdir)/python'; export SELF_TEST_SUPPORT_DIR; \
	FIXTURE_PLUGIN_DIR='$(abs_top_builddir)/tests/fixtures/plugins'; export FIXTURE_PLUGIN_DIR; \
	top_srcdir='$(abs_top_srcdir)'; export top_srcdir; \
	top_builddir='$(abs_top_builddir)'; export top_builddir; \
	PYTHON='$(PYTHON)'; export PYTHON; \
	unset SELF_TEST_ARGS SELF_TEST_WORKERS SELF_TEST_TIMEOUT SELF_TEST_RETRIES SANDBOX_REPO_PATH \
	  SANDBOX_DATA_DIR SELF_TEST_PYTHON SELF_TEST_PYTHONPATH;

# valgrind memcheck over the check suites (no fork, so every allocation is seen).
VALGRIND_FLAGS = --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite,indirect --track-fds=no
check-valgrind: $(check_LTLIBRARIES) $(check_PROGRAMS)
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(UNIT_TESTS)' \
	  LOG_COMPILER='env CK_FORK=no $(VALGRIND) $(VALGRIND_FLAGS)' \
	  TEST_SUITE_LOG=test-suite-valgrind.log
.PHONY: check-valgrind
