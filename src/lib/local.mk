# SPDX-License-Identifier: MIT
# libstlib: the helper library the core and every plugin link (buffers with a size cap, string
# vectors, paths, atomic file writes, clocks and random ids, number formatting, enum-to-string
# tables, the unknown-settings check); libstlib-json: the part that needs yajl (bounded parsing,
# located errors). Libtool convenience libraries of PIC objects: the core links them through
# libselftest, each plugin links them into its module. Built with hidden visibility, so a plugin
# never exports them (PLUGIN_LDFLAGS exports selftest_plugin_entry alone as well): every plugin
# carries its own copy and none can bind to another's or to the core's.
noinst_LTLIBRARIES += src/lib/libstlib.la src/lib/libstlib-json.la
STLIB_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
src_lib_libstlib_la_SOURCES = \
	src/lib/st_buf.c src/lib/st_buf.h \
	src/lib/st_path.c src/lib/st_path.h \
	src/lib/st_file.c src/lib/st_file.h \
	src/lib/st_time.c src/lib/st_time.h \
	src/lib/st_num.c src/lib/st_num.h \
	src/lib/st_enum.c src/lib/st_enum.h \
	src/lib/st_settings.c src/lib/st_settings.h
src_lib_libstlib_la_CFLAGS = $(STLIB_CFLAGS)
src_lib_libstlib_la_LIBADD = -lm
src_lib_libstlib_json_la_SOURCES = src/lib/st_json.c src/lib/st_json.h
src_lib_libstlib_json_la_CFLAGS = $(STLIB_CFLAGS) $(YAJL_CFLAGS)
src_lib_libstlib_json_la_LIBADD = $(YAJL_LIBS)
# what a plugin adds to its LIBADD (a plugin that parses no JSON needs only STLIB_LIBS)
STLIB_LIBS = src/lib/libstlib.la
STLIB_JSON_LIBS = src/lib/libstlib-json.la $(YAJL_LIBS)
# the sources, for targets built from sources directly (fuzz/local.mk)
STLIB_SRC = $(top_srcdir)/src/lib/st_buf.c $(top_srcdir)/src/lib/st_path.c \
	$(top_srcdir)/src/lib/st_file.c $(top_srcdir)/src/lib/st_time.c \
	$(top_srcdir)/src/lib/st_num.c $(top_srcdir)/src/lib/st_enum.c \
	$(top_srcdir)/src/lib/st_settings.c
STLIB_JSON_SRC = $(top_srcdir)/src/lib/st_json.c

# check suite: every helper (tests/unit/test_stlib.c)
if HAVE_CHECK
UNIT_TESTS += tests/unit/test_stlib
endif
tests_unit_test_stlib_SOURCES = tests/unit/test_stlib.c tests/unit/unit.h
tests_unit_test_stlib_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(YAJL_CFLAGS)
tests_unit_test_stlib_LDADD = src/lib/libstlib-json.la src/lib/libstlib.la $(CHECK_LIBS) \
	$(YAJL_LIBS) -lm

# every bundled plugin carries the library without exporting it (nm):
# tests/integration/test_plugin_symbols.py, in tests/integration/local.mk
