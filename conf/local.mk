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

# systemd units, generated with the configured paths (configure: --with-systemdsystemunitdir,
# --with-sysusersdir), and the sysusers.d file that creates their user
SYSTEMD_UNITS = conf/systemd/selftest-core.service conf/systemd/selftest-core-run.service
noinst_DATA =
if HAVE_SYSTEMD_UNITDIR
systemdsystemunit_DATA = $(SYSTEMD_UNITS) conf/systemd/selftest-core-run.timer
dist_sysusers_DATA = conf/sysusers.d/selftest-core.conf
else
noinst_DATA += $(SYSTEMD_UNITS)
endif
EXTRA_DIST += conf/systemd/selftest-core.service.in conf/systemd/selftest-core-run.service.in \
	conf/systemd/selftest-core-run.timer conf/sysusers.d/selftest-core.conf
CLEANFILES += $(SYSTEMD_UNITS)
SYSTEMD_SUBST = sed -e 's|@bindir[@]|$(bindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g'
conf/systemd/selftest-core.service: $(srcdir)/conf/systemd/selftest-core.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) conf/systemd && $(SYSTEMD_SUBST) $(srcdir)/conf/systemd/selftest-core.service.in > $@.tmp && mv $@.tmp $@
conf/systemd/selftest-core-run.service: $(srcdir)/conf/systemd/selftest-core-run.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) conf/systemd && $(SYSTEMD_SUBST) $(srcdir)/conf/systemd/selftest-core-run.service.in > $@.tmp && mv $@.tmp $@
# bash completion, with the configured plugin directory (configure: --with-bash-completion-dir)
if HAVE_BASH_COMPLETION_DIR
bashcompletion_DATA = conf/bash-completion/selftest-core
else
noinst_DATA += conf/bash-completion/selftest-core
endif
EXTRA_DIST += conf/bash-completion/selftest-core.in
CLEANFILES += conf/bash-completion/selftest-core
conf/bash-completion/selftest-core: $(srcdir)/conf/bash-completion/selftest-core.in Makefile
	$(AM_V_GEN)$(MKDIR_P) conf/bash-completion && sed -e 's|@pkglibdir[@]|$(pkglibdir)|g' $(srcdir)/conf/bash-completion/selftest-core.in > $@.tmp && mv $@.tmp $@
# distcheck installs below its own prefix, never into the system's unit directories
AM_DISTCHECK_CONFIGURE_FLAGS = \
	--with-systemdsystemunitdir=$$dc_install_base/lib/systemd/system \
	--with-sysusersdir=$$dc_install_base/lib/sysusers.d \
	--with-bash-completion-dir=$$dc_install_base/share/bash-completion/completions

man1_MANS = docs/selftest-core.1
man5_MANS = docs/selftest.conf.5
EXTRA_DIST += docs/selftest-core.1 docs/selftest.conf.5

# The default configuration, $(sysconfdir)/selftest/selftest.conf (conf/selftest.conf: every
# setting commented out at its default). Installed only when there is none, so an edited copy is
# never overwritten (the new default is always in $(docdir)/examples); uninstall removes it only
# while it is unchanged, and an edited copy stays.
stconfdir = $(sysconfdir)/selftest
install-data-hook: install-default-config
uninstall-hook: uninstall-default-config
install-default-config:
	@f='$(DESTDIR)$(stconfdir)/selftest.conf'; \
	if test -e "$$f" || test -h "$$f"; then \
	  echo "$$f exists: kept as it is (the default is $(docdir)/examples/selftest.conf)"; \
	else \
	  echo " $(MKDIR_P) '$(DESTDIR)$(stconfdir)'"; \
	  $(MKDIR_P) '$(DESTDIR)$(stconfdir)' || exit 1; \
	  echo " $(INSTALL_DATA) $(srcdir)/conf/selftest.conf '$$f'"; \
	  $(INSTALL_DATA) $(srcdir)/conf/selftest.conf "$$f" || exit 1; \
	fi
uninstall-default-config:
	@f='$(DESTDIR)$(stconfdir)/selftest.conf'; \
	if test -f "$$f" && test ! -h "$$f" && cmp -s $(srcdir)/conf/selftest.conf "$$f"; then \
	  echo " rm -f '$$f'"; rm -f "$$f"; \
	  rmdir '$(DESTDIR)$(stconfdir)' 2>/dev/null || :; \
	elif test -e "$$f" || test -h "$$f"; then \
	  echo "$$f differs from the default: kept"; \
	fi
.PHONY: install-default-config uninstall-default-config
