# SPDX-License-Identifier: MIT
# The Python import graph (docs/spec.md §7.1): the pyscan lexer, the pygraph resolver, and
# tools/pygraph-dump, the graph printer the reference comparison and the benchmark use.
src_core_libselftest_la_SOURCES += src/core/pyscan.c src/core/pyscan.h \
	src/core/pygraph.c src/core/pygraph.h

noinst_PROGRAMS += tools/pygraph-dump
tools_pygraph_dump_SOURCES = tools/pygraph-dump.c
tools_pygraph_dump_CFLAGS = $(AM_CFLAGS)
tools_pygraph_dump_LDADD = src/core/libselftest.la

EXTRA_DIST += tools/pygraph_ref.py bench/pygraph.sh
