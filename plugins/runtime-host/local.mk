# SPDX-License-Identifier: MIT
# runtime-host: runs pytest as child processes on the host.
if BUILD_PLUGIN_RUNTIME_HOST
pkglib_LTLIBRARIES += plugins/runtime-host/runtime-host.la
endif
plugins_runtime_host_runtime_host_la_SOURCES = plugins/runtime-host/runtime_host.c \
	plugins/runtime-host/contain.c plugins/runtime-host/contain.h
plugins_runtime_host_runtime_host_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_runtime_host_runtime_host_la_LIBADD = $(STLIB_LIBS) $(PTHREAD_LIBS)
EXTRA_DIST += docs/runtime-host.md

# Check suite of the stop signals with the processes runtime-host starts (includes the plugin's
# .c files and drives execute() through the core's real host services and signal handlers).
HOST_UNIT_TESTS =
if BUILD_PLUGIN_RUNTIME_HOST
if HAVE_CHECK
HOST_UNIT_TESTS += tests/plugins/test_host_signals
endif
endif
UNIT_TESTS += $(HOST_UNIT_TESTS)
tests_plugins_test_host_signals_SOURCES = tests/plugins/test_host_signals.c
tests_plugins_test_host_signals_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/plugins/runtime-host -I$(top_srcdir)/tests/unit
tests_plugins_test_host_signals_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(LIBCONFIG_CFLAGS)
tests_plugins_test_host_signals_LDADD = src/core/libselftest.la $(CHECK_LIBS) \
	$(LIBCONFIG_LIBS) $(PTHREAD_LIBS)
