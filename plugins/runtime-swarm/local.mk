# SPDX-License-Identifier: MIT
# runtime-swarm: one Docker Swarm replicated-job service per batch (plugins/common: the HTTP
# client, the log decoder and engine_util's helpers, in libstengine.la).
if BUILD_PLUGIN_RUNTIME_SWARM
pkglib_LTLIBRARIES += plugins/runtime-swarm/runtime-swarm.la
endif
plugins_runtime_swarm_runtime_swarm_la_SOURCES = plugins/runtime-swarm/runtime_swarm.c
plugins_runtime_swarm_runtime_swarm_la_CFLAGS = $(ENGINE_COMMON_CFLAGS)
plugins_runtime_swarm_runtime_swarm_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_runtime_swarm_runtime_swarm_la_LIBADD = $(ENGINE_COMMON_LIBS)
EXTRA_DIST += docs/scale-out.md
