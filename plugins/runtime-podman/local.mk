# SPDX-License-Identifier: MIT
# runtime-podman: one container per batch through the Podman API service (plugins/common).
if BUILD_PLUGIN_RUNTIME_PODMAN
pkglib_LTLIBRARIES += plugins/runtime-podman/runtime-podman.la
endif
plugins_runtime_podman_runtime_podman_la_SOURCES = plugins/runtime-podman/runtime_podman.c
plugins_runtime_podman_runtime_podman_la_CFLAGS = $(ENGINE_COMMON_CFLAGS)
plugins_runtime_podman_runtime_podman_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_runtime_podman_runtime_podman_la_LIBADD = $(ENGINE_COMMON_LIBS)
