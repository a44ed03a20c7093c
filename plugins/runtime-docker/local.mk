# SPDX-License-Identifier: MIT
# runtime-docker: one container per batch through the Docker Engine API (plugins/common).
if BUILD_PLUGIN_RUNTIME_DOCKER
pkglib_LTLIBRARIES += plugins/runtime-docker/runtime-docker.la
endif
plugins_runtime_docker_runtime_docker_la_SOURCES = plugins/runtime-docker/runtime_docker.c
plugins_runtime_docker_runtime_docker_la_CFLAGS = $(ENGINE_COMMON_CFLAGS)
plugins_runtime_docker_runtime_docker_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_runtime_docker_runtime_docker_la_LIBADD = $(ENGINE_COMMON_LIBS)
