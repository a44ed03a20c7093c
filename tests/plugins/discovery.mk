# SPDX-License-Identifier: MIT
# Tests of discovery-python: the check suite (includes the plugin's .c files, collectd style, and
# drives discover() through the core's real host services and import graph over the fixture
# trees of tests/fixtures/discovery) and the integration test of `selftest-core discover`.
DISCOVERY_UNIT_TESTS = tests/plugins/test_discovery_python
if BUILD_PLUGIN_DISCOVERY_PYTHON
if HAVE_CHECK
UNIT_TESTS += $(DISCOVERY_UNIT_TESTS)
endif
TESTS += tests/integration/test_discovery.py tests/integration/test_corpus_discover.py \
	tests/integration/test_orphan_rules.py
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
EXTRA_DIST += tests/integration/test_discovery.py tests/fixtures/discovery \
	tests/integration/test_corpus_discover.py tests/integration/test_orphan_rules.py \
	tests/corpus/toolz.orphans \
	tests/corpus/cachetools.orphans tests/corpus/simplejson.orphans
