# SPDX-License-Identifier: MIT
# tools: tools/pygraph-dump, the import graph printer the reference comparison
# (tests/integration/test_pygraph_reference.py, with tools/pygraph_ref.py) and the benchmark
# (bench/pygraph.sh) use.
noinst_PROGRAMS += tools/pygraph-dump
tools_pygraph_dump_SOURCES = tools/pygraph-dump.c
tools_pygraph_dump_CFLAGS = $(AM_CFLAGS)
tools_pygraph_dump_LDADD = src/pygraph/libstpygraph.la $(STLIB_LIBS)

EXTRA_DIST += tools/pygraph_ref.py bench/pygraph.sh

# make lint: cppcheck and clang-tidy over src/ and plugins/ with the checked-in configuration
# (.clang-tidy, tools/cppcheck.supp); fails on any finding, skips (saying so) when a tool is
# missing. Needs config.h and <selftest/version.h>, which configure makes.
CPPCHECK = cppcheck
CLANG_TIDY = clang-tidy
lint: config.h include/selftest/version.h
	CPPCHECK='$(CPPCHECK)' CLANG_TIDY='$(CLANG_TIDY)' $(SHELL) $(top_srcdir)/tools/lint.sh \
	  '$(abs_top_srcdir)' '$(abs_top_builddir)' $(AM_CPPFLAGS) $(CPPFLAGS) $(LIBCONFIG_CFLAGS) \
	  $(YAJL_CFLAGS) $(SQLITE3_CFLAGS) $(LIBCURL_CFLAGS) $(LIBMICROHTTPD_CFLAGS)
.PHONY: lint
EXTRA_DIST += tools/lint.sh tools/cppcheck.supp
