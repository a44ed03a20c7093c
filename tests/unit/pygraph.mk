# SPDX-License-Identifier: MIT
# Tests of the import graph: lexer traps (test_pyscan), resolution against the hand-written
# fixture tree tests/fixtures/pygraph/EXPECTED and bad input (test_pygraph), and the comparison
# with the Python ast reference on real trees (test_pygraph_reference.py, TAP).
PYGRAPH_UNIT_TESTS = tests/unit/test_pyscan tests/unit/test_pygraph
if HAVE_CHECK
UNIT_TESTS += $(PYGRAPH_UNIT_TESTS)
endif
tests_unit_test_pyscan_SOURCES = tests/unit/test_pyscan.c
tests_unit_test_pyscan_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_test_pyscan_LDADD = src/core/libselftest.la $(CHECK_LIBS)
tests_unit_test_pygraph_SOURCES = tests/unit/test_pygraph.c
tests_unit_test_pygraph_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) \
	-DPYGRAPH_FIXTURE_DIR='"$(abs_top_srcdir)/tests/fixtures/pygraph"'
tests_unit_test_pygraph_LDADD = src/core/libselftest.la $(CHECK_LIBS)

TESTS += tests/integration/test_pygraph_reference.py
EXTRA_DIST += tests/integration/test_pygraph_reference.py tests/fixtures/pygraph
