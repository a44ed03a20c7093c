# SPDX-License-Identifier: MIT
# pygraph: the Python import graph (docs/spec.md §7.1): the pyscan lexer and the pygraph resolver.
# A libtool convenience library of its own, with no dependency on the rest of the core; linked
# into libselftest (the core), its check suites, the fuzz targets and tools/pygraph-dump.
noinst_LTLIBRARIES += src/pygraph/libstpygraph.la
src_pygraph_libstpygraph_la_SOURCES = \
	src/pygraph/pyscan.c src/pygraph/pyscan.h \
	src/pygraph/pygraph.c src/pygraph/pygraph.h \
	src/pygraph/scancache.c src/pygraph/scancache.h
src_pygraph_libstpygraph_la_LIBADD = $(PTHREAD_LIBS)
