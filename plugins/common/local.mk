# SPDX-License-Identifier: MIT
# common: code runtime-docker and runtime-podman share (HTTP to an engine over libcurl, the log
# stream decoder, the container runtime ops); runtime-swarm uses the HTTP client, the decoder and
# the helpers. A libtool convenience library linked into those plugins; never into the core.
ENGINE_COMMON_SRC = \
	plugins/common/engine_http.c plugins/common/engine_http.h \
	plugins/common/engine_demux.c plugins/common/engine_demux.h \
	plugins/common/engine_runtime.c plugins/common/engine_runtime.h \
	plugins/common/engine_util.c plugins/common/engine_util.h \
	plugins/common/engine_multi.c plugins/common/engine_multi.h
# -Wno-format-truncation: messages are cut to fixed buffers (st_exec_result.error) on purpose.
ENGINE_COMMON_CFLAGS = $(AM_CFLAGS) $(LIBCURL_CFLAGS) $(YAJL_CFLAGS) -I$(top_srcdir)/plugins/common \
	-Wno-format-truncation
ENGINE_COMMON_LIBS = plugins/common/libstengine.la $(STLIB_JSON_LIBS) $(STLIB_LIBS) $(LIBCURL_LIBS) $(YAJL_LIBS) $(PTHREAD_LIBS)
if BUILD_PLUGIN_RUNTIME_DOCKER
noinst_LTLIBRARIES += plugins/common/libstengine.la
else
if BUILD_PLUGIN_RUNTIME_PODMAN
noinst_LTLIBRARIES += plugins/common/libstengine.la
else
if BUILD_PLUGIN_RUNTIME_SWARM
noinst_LTLIBRARIES += plugins/common/libstengine.la
endif
endif
endif
plugins_common_libstengine_la_SOURCES = $(ENGINE_COMMON_SRC)
plugins_common_libstengine_la_CFLAGS = $(ENGINE_COMMON_CFLAGS)
EXTRA_DIST += $(ENGINE_COMMON_SRC)

# check suite: the log stream decoder, address parsing, helpers (tests/plugins); in UNIT_TESTS,
# so tests/unit/local.mk builds and runs it and `make check-valgrind` runs it under valgrind.
ENGINE_UNIT_TESTS =
if HAVE_CHECK
if BUILD_PLUGIN_RUNTIME_DOCKER
ENGINE_UNIT_TESTS += tests/plugins/test_engine_common
else
if BUILD_PLUGIN_RUNTIME_PODMAN
ENGINE_UNIT_TESTS += tests/plugins/test_engine_common
else
if BUILD_PLUGIN_RUNTIME_SWARM
ENGINE_UNIT_TESTS += tests/plugins/test_engine_common
endif
endif
endif
endif
UNIT_TESTS += $(ENGINE_UNIT_TESTS)
tests_plugins_test_engine_common_SOURCES = tests/plugins/test_engine_common.c
tests_plugins_test_engine_common_CFLAGS = $(ENGINE_COMMON_CFLAGS) $(CHECK_CFLAGS)
tests_plugins_test_engine_common_LDADD = $(ENGINE_COMMON_LIBS) $(CHECK_LIBS)

# Integration tests against real engines: tests/integration/local.mk.
EXTRA_DIST += tools/engines/engines.sh \
	bench/containers.py docs/containers.md

# Container benchmark (root or ST_ENGINES_DIR): bench/containers.py, figures in docs/containers.md.
bench-containers: selftest-core $(pkglib_LTLIBRARIES)
	SELFTEST_BIN='$(abs_top_builddir)/selftest-core' \
	SELF_TEST_PLUGIN_PATH='$(abs_top_builddir)/plugins' \
	SELF_TEST_SUPPORT_DIR='$(abs_top_srcdir)/python' \
	$(PYTHON) $(top_srcdir)/bench/containers.py
.PHONY: bench-containers
