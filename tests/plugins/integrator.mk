# SPDX-License-Identifier: MIT
# integrator-modulemap and the plugin SDK: the check suite, the integration tests, the
# out-of-tree example integrator. Include after tests/local.mk (it appends to UNIT_TESTS).

# Check suite: includes the plugin's main .c, links its other sources, uses a fake host;
# valgrind-clean (make check-valgrind runs UNIT_TESTS). Only UNIT_TESTS is appended to:
# tests/local.mk's `check_PROGRAMS += $(UNIT_TESTS)` and `TESTS += $(UNIT_TESTS)` expand it
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
tests_plugins_test_integrator_modulemap_LDADD = $(CHECK_LIBS) $(YAJL_LIBS) $(SQLITE3_LIBS)
EXTRA_DIST += tests/plugins/test_integrator_modulemap.c

# Integration tests: the integrate stage through the real binary, and the SDK as a third party
# sees it (make install DESTDIR=..., the example built with pkg-config against it).
INTEGRATOR_INTEGRATION_TESTS = tests/integration/test_integration_stage.py \
	tests/integration/test_plugin_sdk.py
TESTS += $(INTEGRATOR_INTEGRATION_TESTS)
EXTRA_DIST += $(INTEGRATOR_INTEGRATION_TESTS) \
	examples/integrator-example/integrator_example.c examples/integrator-example/Makefile \
	examples/integrator-example/README.md \
	docs/plugin-guide.md docs/selftest-plugin.7

# The ABI man page is installed for plugin authors.
man7_MANS = docs/selftest-plugin.7
