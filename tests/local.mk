# SPDX-License-Identifier: MIT
# Tests: the data the integration tests use (their rules: tests/integration/local.mk), the
# harness, and `make check-valgrind`. The check suites are in tests/unit/local.mk and
# tests/plugins/local.mk, the fixture plugins in tests/fixtures/plugins/local.mk.
#
# Every test speaks TAP (check via CK_TAP_LOG_FILE_NAME=-), so the harness counts single checks,
# not files; .ci/run sums the .trs files.

# ---- what the integration tests use (their rules: tests/integration/local.mk) ------------------
# LD_PRELOAD shim moving the wall clock under a process (test_clock_jump.py)
check_LTLIBRARIES += tests/fixtures/clockjump/clockjump.la
tests_fixtures_clockjump_clockjump_la_SOURCES = tests/fixtures/clockjump/clockjump.c
tests_fixtures_clockjump_clockjump_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
EXTRA_DIST += tests/fixtures/projects \
	tests/corpus/README.md tests/corpus/toolz.tar.gz tests/corpus/cachetools.tar.gz \
	tests/corpus/simplejson.tar.gz \
	tests/fixtures/plugins/fixture_plugin.c tests/fixtures/plugins/fixture_runtime.c sample

LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
# The tests load the build tree's plugins and never an installed copy: SELF_TEST_PLUGIN_PATH
# names the build tree, an empty SELF_TEST_PLUGIN_SYSTEM_PATH drops the installed plugin dir.
AM_TESTS_ENVIRONMENT = \
	CK_TAP_LOG_FILE_NAME=-; export CK_TAP_LOG_FILE_NAME; \
	CK_VERBOSITY=silent; export CK_VERBOSITY; \
	SELFTEST_BIN='$(abs_top_builddir)/selftest-core'; export SELFTEST_BIN; \
	SELF_TEST_PLUGIN_PATH='$(abs_top_builddir)/plugins:$(abs_top_builddir)/tests/fixtures/plugins'; \
	export SELF_TEST_PLUGIN_PATH; \
	SELF_TEST_PLUGIN_SYSTEM_PATH=; export SELF_TEST_PLUGIN_SYSTEM_PATH; \
	SELF_TEST_SUPPORT_DIR='$(abs_top_srcdir)/python'; export SELF_TEST_SUPPORT_DIR; \
	FIXTURE_PLUGIN_DIR='$(abs_top_builddir)/tests/fixtures/plugins'; export FIXTURE_PLUGIN_DIR; \
	top_srcdir='$(abs_top_srcdir)'; export top_srcdir; \
	top_builddir='$(abs_top_builddir)'; export top_builddir; \
	PYTHON='$(PYTHON)'; export PYTHON; \
	unset SELF_TEST_ARGS SELF_TEST_WORKERS SELF_TEST_TIMEOUT SELF_TEST_RETRIES SANDBOX_REPO_PATH \
	  SANDBOX_DATA_DIR SELF_TEST_PYTHON SELF_TEST_PYTHONPATH SELF_TEST_JUNIT_XML;

# valgrind memcheck over the check suites (no fork, so every allocation is seen).
VALGRIND_FLAGS = --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite,indirect --track-fds=no
check-valgrind: $(check_LTLIBRARIES) $(check_PROGRAMS)
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(UNIT_TESTS)' \
	  LOG_COMPILER='env CK_FORK=no $(VALGRIND) $(VALGRIND_FLAGS)' \
	  TEST_SUITE_LOG=test-suite-valgrind.log
.PHONY: check-valgrind
