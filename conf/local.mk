# SPDX-License-Identifier: MIT
# Example configurations and systemd units.
examplesdir = $(docdir)/examples
dist_examples_DATA = conf/selftest.conf conf/selftest-daemon.conf conf/selftest-docker.conf \
	conf/selftest-podman.conf
# Prometheus alerting rules and a Grafana dashboard for exporter-prometheus
# (docs/exporter-prometheus.md); the rules' promtool unit tests ship with the sources.
prometheusrulesdir = $(pkgdatadir)/prometheus
dist_prometheusrules_DATA = conf/prometheus/selftest.rules.yml
grafanadashboarddir = $(pkgdatadir)/grafana
dist_grafanadashboard_DATA = conf/grafana/selftest-core.json
EXTRA_DIST += tests/prometheus/selftest.rules.test.yml

systemdunitdir = $(prefix)/lib/systemd/system
systemdunit_DATA = conf/systemd/selftest-core.service conf/systemd/selftest-core-run.service
dist_systemdunit_DATA = conf/systemd/selftest-core-run.timer
EXTRA_DIST += conf/systemd/selftest-core.service.in conf/systemd/selftest-core-run.service.in
CLEANFILES += $(systemdunit_DATA)
SYSTEMD_SUBST = sed -e 's|@bindir[@]|$(bindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g'
conf/systemd/selftest-core.service: $(srcdir)/conf/systemd/selftest-core.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) conf/systemd && $(SYSTEMD_SUBST) $(srcdir)/conf/systemd/selftest-core.service.in > $@
conf/systemd/selftest-core-run.service: $(srcdir)/conf/systemd/selftest-core-run.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) conf/systemd && $(SYSTEMD_SUBST) $(srcdir)/conf/systemd/selftest-core-run.service.in > $@

man1_MANS = docs/selftest-core.1
man5_MANS = docs/selftest.conf.5
EXTRA_DIST += docs/selftest-core.1 docs/selftest.conf.5
