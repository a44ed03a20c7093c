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
