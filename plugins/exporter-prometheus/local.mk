# SPDX-License-Identifier: MIT
# exporter-prometheus: /metrics with libmicrohttpd, node_exporter textfile, Pushgateway (libcurl).
if BUILD_PLUGIN_EXPORTER_PROMETHEUS
pkglib_LTLIBRARIES += plugins/exporter-prometheus/exporter-prometheus.la
endif
PROM_SOURCES = plugins/exporter-prometheus/exporter_prometheus.c \
	plugins/exporter-prometheus/prom_text.c plugins/exporter-prometheus/prom_text.h
plugins_exporter_prometheus_exporter_prometheus_la_SOURCES = $(PROM_SOURCES)
plugins_exporter_prometheus_exporter_prometheus_la_CFLAGS = $(AM_CFLAGS) \
	$(LIBMICROHTTPD_CFLAGS) $(LIBCURL_CFLAGS)
plugins_exporter_prometheus_exporter_prometheus_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_exporter_prometheus_exporter_prometheus_la_LIBADD = $(STLIB_LIBS) $(LIBMICROHTTPD_LIBS) $(LIBCURL_LIBS) \
	$(PTHREAD_LIBS) -lm

# Check suite: includes the plugin's .c files (collectd style) to reach static helpers, and uses
# the core's real host services (libconfig file:line) through libselftest.
PROM_UNIT_TESTS =
if BUILD_PLUGIN_EXPORTER_PROMETHEUS
if HAVE_CHECK
PROM_UNIT_TESTS += tests/plugins/test_exporter_prometheus
endif
endif
UNIT_TESTS += $(PROM_UNIT_TESTS)
tests_plugins_test_exporter_prometheus_SOURCES = tests/plugins/test_exporter_prometheus.c
tests_plugins_test_exporter_prometheus_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/plugins/exporter-prometheus -I$(top_srcdir)/tests/unit
tests_plugins_test_exporter_prometheus_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(LIBCONFIG_CFLAGS) \
	$(LIBMICROHTTPD_CFLAGS) $(LIBCURL_CFLAGS)
tests_plugins_test_exporter_prometheus_LDADD = src/core/libselftest.la $(CHECK_LIBS) \
	$(LIBCONFIG_LIBS) $(LIBMICROHTTPD_LIBS) $(LIBCURL_LIBS) $(PTHREAD_LIBS) -lm

# Integration tests (promtool, a real Pushgateway and Prometheus): tests/integration/local.mk.
EXTRA_DIST += bench/metrics_wrk.sh bench/metrics_abuse.py \
	docs/exporter-prometheus.md docs/reliability.md

# make bench-metrics: wrk against /metrics during a run (docs/exporter-prometheus.md).
bench-metrics: selftest-core $(pkglib_LTLIBRARIES)
	SELFTEST_BIN='$(abs_top_builddir)/selftest-core' \
	SELF_TEST_PLUGIN_PATH='$(abs_top_builddir)/plugins' \
	SELF_TEST_SUPPORT_DIR='$(abs_top_srcdir)/python' \
	$(SHELL) $(top_srcdir)/bench/metrics_wrk.sh
.PHONY: bench-metrics

# make bench-metrics-abuse: scrape latency while idle and slowloris clients hold connections
# (docs/reliability.md). BENCH_ARGS=--short for the CI pass.
bench-metrics-abuse: selftest-core $(pkglib_LTLIBRARIES)
	SELFTEST_BIN='$(abs_top_builddir)/selftest-core' \
	SELF_TEST_PLUGIN_PATH='$(abs_top_builddir)/plugins' \
	SELF_TEST_SUPPORT_DIR='$(abs_top_srcdir)/python' \
	$(PYTHON) $(top_srcdir)/bench/metrics_abuse.py $(BENCH_ARGS)
.PHONY: bench-metrics-abuse
