# SPDX-License-Identifier: MIT
# The orphan files of docs/spec.md §7.4 (orphan_modules.json, orphan_classifications.json), owned
# by the core, and their check suite.
src_core_libselftest_la_SOURCES += src/core/orphans.c src/core/orphans.h \
	plugins/common/modulemap.c plugins/common/modulemap.h \
	src/core/checkcache.c src/core/checkcache.h

ORPHANS_UNIT_TESTS = tests/unit/test_orphans
if HAVE_CHECK
UNIT_TESTS += $(ORPHANS_UNIT_TESTS)
endif
tests_unit_test_orphans_SOURCES = tests/unit/test_orphans.c tests/unit/unit.h
tests_unit_test_orphans_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(YAJL_CFLAGS) $(LIBCONFIG_CFLAGS)
tests_unit_test_orphans_LDADD = src/core/libselftest.la $(CHECK_LIBS)
