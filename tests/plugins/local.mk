# SPDX-License-Identifier: MIT
# Check suites of the plugins (tests/plugins); the integration tests of their stages are in
# tests/integration/local.mk. The suites of exporter-prometheus and of plugins/common sit beside
# their plugin, in its local.mk.

# Tests of discovery-python: the check suite (includes the plugin's .c files, collectd style, and
# drives discover() through the core's real host services and import graph over the fixture
# trees of tests/fixtures/discovery); its integration tests are in tests/integration/local.mk.
DISCOVERY_UNIT_TESTS = tests/plugins/test_discovery_python
if BUILD_PLUGIN_DISCOVERY_PYTHON
if HAVE_CHECK
UNIT_TESTS += $(DISCOVERY_UNIT_TESTS)
endif
endif
tests_plugins_test_discovery_python_SOURCES = tests/plugins/test_discovery_python.c
tests_plugins_test_discovery_python_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/plugins/discovery-python -I$(top_srcdir)/plugins/common \
	-I$(top_srcdir)/tests/unit \
	-DDISCOVERY_FIXTURE_DIR='"$(abs_top_srcdir)/tests/fixtures/discovery"'
tests_plugins_test_discovery_python_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(LIBCONFIG_CFLAGS) \
	$(YAJL_CFLAGS)
tests_plugins_test_discovery_python_LDADD = src/core/libselftest.la $(CHECK_LIBS) \
	$(LIBCONFIG_LIBS) $(YAJL_LIBS) $(PTHREAD_LIBS)
EXTRA_DIST += tests/fixtures/discovery tests/corpus/toolz.orphans \
	tests/corpus/cachetools.orphans tests/corpus/simplejson.orphans

# integrator-modulemap and the plugin SDK: the check suite and the out-of-tree example
# integrator.

# Check suite: includes the plugin's main .c, links its other sources, uses a fake host;
# valgrind-clean (make check-valgrind runs UNIT_TESTS). Only UNIT_TESTS is appended to:
# tests/unit/local.mk's `check_PROGRAMS += $(UNIT_TESTS)` and `TESTS += $(UNIT_TESTS)` expand it
# lazily, so adding the suite to check_PROGRAMS and TESTS here too would list it twice (and
# the harness would count it twice).
if HAVE_CHECK
if BUILD_PLUGIN_INTEGRATOR_MODULEMAP
UNIT_TESTS += tests/plugins/test_integrator_modulemap
endif
endif
tests_plugins_test_integrator_modulemap_SOURCES = tests/plugins/test_integrator_modulemap.c \
	plugins/integrator-modulemap/mm_store.c plugins/integrator-modulemap/workflows.c \
	plugins/common/modulemap.c
tests_plugins_test_integrator_modulemap_CPPFLAGS = $(MODULEMAP_INTEGRATOR_CPPFLAGS)
tests_plugins_test_integrator_modulemap_CFLAGS = $(MODULEMAP_INTEGRATOR_CFLAGS) $(CHECK_CFLAGS)
tests_plugins_test_integrator_modulemap_LDADD = $(STLIB_JSON_LIBS) $(STLIB_LIBS) $(CHECK_LIBS) $(YAJL_LIBS) $(SQLITE3_LIBS)
EXTRA_DIST += tests/plugins/test_integrator_modulemap.c

# Integration tests (the integrate stage, the SDK as a third party sees it):
# tests/integration/local.mk.
EXTRA_DIST += docs/selftest-plugin.7

# Installed for plugin authors: the ABI man page, the plugin guide and the example plugin's source
# ($(docdir)/plugin-guide.md, $(docdir)/examples/integrator-example/).
man7_MANS = docs/selftest-plugin.7
plugindocdir = $(docdir)
dist_plugindoc_DATA = docs/plugin-guide.md
integratorexampledir = $(docdir)/examples/integrator-example
dist_integratorexample_DATA = examples/integrator-example/integrator_example.c \
	examples/integrator-example/Makefile examples/integrator-example/README.md
