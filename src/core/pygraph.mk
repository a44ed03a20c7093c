# The Python import graph (spec §7.1): the pyscan lexer, the pygraph resolver, and
# tools/pygraph-dump, the graph printer the reference comparison and the benchmark use.
src_core_libselftest_la_SOURCES += src/core/pyscan.c src/core/pyscan.h \
	src/core/pygraph.c src/core/pygraph.h

noinst_PROGRAMS += tools/pygraph-dump
tools_pygraph_dump_SOURCES = tools/pygraph-dump.c
tools_pygraph_dump_CFLAGS = $(AM_CFLAGS)
tools_pygraph_dump_LDADD = src/core/libselftest.la

EXTRA_DIST += tools/pygraph_ref.py bench/pygraph.sh \
	fuzz/fuzz_pyscan.c fuzz/README-pyscan.md fuzz/corpus/pyscan

# make fuzz: builds the libFuzzer target with clang (apt-get install clang) and runs it for
# FUZZ_SECONDS on a scratch corpus seeded from fuzz/corpus/pyscan (fuzz/README-pyscan.md).
FUZZ_SECONDS = 60
FUZZ_CC = clang
fuzz:
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -I$(top_srcdir)/src/core $(top_srcdir)/fuzz/fuzz_pyscan.c $(top_srcdir)/src/core/pyscan.c \
	  -o fuzz_pyscan
	$(MKDIR_P) fuzz-corpus
	./fuzz_pyscan -max_total_time=$(FUZZ_SECONDS) -max_len=8192 fuzz-corpus \
	  $(top_srcdir)/fuzz/corpus/pyscan
.PHONY: fuzz
CLEANFILES += fuzz_pyscan
