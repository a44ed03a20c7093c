# SPDX-License-Identifier: MIT
# tools: tools/pygraph-dump, the import graph printer the reference comparison
# (tests/integration/test_pygraph_reference.py, with tools/pygraph_ref.py) and the benchmark
# (bench/pygraph.sh) use.
noinst_PROGRAMS += tools/pygraph-dump
tools_pygraph_dump_SOURCES = tools/pygraph-dump.c
tools_pygraph_dump_CFLAGS = $(AM_CFLAGS)
tools_pygraph_dump_LDADD = src/pygraph/libstpygraph.la $(STLIB_LIBS)

EXTRA_DIST += tools/pygraph_ref.py bench/pygraph.sh
