# SPDX-License-Identifier: MIT
# discovery-python: test batches, orphan and isolated modules from the core's import graph, and
# their classification. Links the module_map.json reader of plugins/common (shared later with
# integrator-modulemap) and yajl; never the core.
if BUILD_PLUGIN_DISCOVERY_PYTHON
pkglib_LTLIBRARIES += plugins/discovery-python/discovery-python.la
endif
DISCOVERY_PYTHON_SRC = plugins/discovery-python/discovery_python.c \
	plugins/discovery-python/pytokens.c plugins/discovery-python/pytokens.h \
	plugins/common/modulemap.c plugins/common/modulemap.h
plugins_discovery_python_discovery_python_la_SOURCES = $(DISCOVERY_PYTHON_SRC)
plugins_discovery_python_discovery_python_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/common
plugins_discovery_python_discovery_python_la_CFLAGS = $(AM_CFLAGS) $(YAJL_CFLAGS)
plugins_discovery_python_discovery_python_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_discovery_python_discovery_python_la_LIBADD = $(STLIB_JSON_LIBS) $(STLIB_LIBS) $(YAJL_LIBS)
EXTRA_DIST += docs/discovery-python.md
