# SPDX-License-Identifier: MIT
# integrator-modulemap: module_map.json (canonical form, deterministic group ids) and
# workflows.db (SQLite), docs/spec.md §8.2. Reads the map with plugins/common/modulemap.c (shared
# with discovery-python, compiled into each plugin: plugins never share a library at run time).
if BUILD_PLUGIN_INTEGRATOR_MODULEMAP
pkglib_LTLIBRARIES += plugins/integrator-modulemap/integrator-modulemap.la
endif
MODULEMAP_INTEGRATOR_SRC = \
	plugins/integrator-modulemap/integrator_modulemap.c \
	plugins/integrator-modulemap/mm_store.c plugins/integrator-modulemap/mm_store.h \
	plugins/integrator-modulemap/workflows.c plugins/integrator-modulemap/workflows.h \
	plugins/common/modulemap.c plugins/common/modulemap.h
MODULEMAP_INTEGRATOR_CFLAGS = $(AM_CFLAGS) $(YAJL_CFLAGS) $(SQLITE3_CFLAGS)
MODULEMAP_INTEGRATOR_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/common \
	-I$(top_srcdir)/plugins/integrator-modulemap
plugins_integrator_modulemap_integrator_modulemap_la_SOURCES = $(MODULEMAP_INTEGRATOR_SRC)
plugins_integrator_modulemap_integrator_modulemap_la_CPPFLAGS = $(MODULEMAP_INTEGRATOR_CPPFLAGS)
plugins_integrator_modulemap_integrator_modulemap_la_CFLAGS = $(MODULEMAP_INTEGRATOR_CFLAGS)
plugins_integrator_modulemap_integrator_modulemap_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_integrator_modulemap_integrator_modulemap_la_LIBADD = $(STLIB_JSON_LIBS) $(STLIB_LIBS) $(YAJL_LIBS) $(SQLITE3_LIBS)
EXTRA_DIST += $(MODULEMAP_INTEGRATOR_SRC)
