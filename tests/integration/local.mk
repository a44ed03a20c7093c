# SPDX-License-Identifier: MIT
# Integration tests: the real binary, real pytest, real engines and Prometheus (tests/integration,
# pytest). make check runs each file as `$(PYTHON) -m pytest --tap FILE`: tap_report.py prints one
# TAP line per test for the tap-driver (so the harness counts tests, not files) and pytest's own
# report, tracebacks and captured output included, into the test's .log. By hand, from a built
# tree: `python3 -m pytest tests/integration` (conftest.py defaults the environment below).

INTEGRATION_TESTS = tests/integration/test_harness.py tests/integration/test_pytest_plugin.py \
	tests/integration/test_cli.py tests/integration/test_run_fixtures.py \
	tests/integration/test_networkx.py tests/integration/test_stores.py \
	tests/integration/test_orphan_checks.py tests/integration/test_paths.py \
	tests/integration/test_orphan_forkserver.py \
	tests/integration/test_corpus_run.py tests/integration/test_batch_outcomes.py \
	tests/integration/test_daemon.py tests/integration/test_host_containment.py \
	tests/integration/test_crash_consistency.py tests/integration/test_faults.py \
	tests/integration/test_reliability.py tests/integration/test_hostile.py \
	tests/integration/test_clock_jump.py tests/integration/test_visible.py \
	tests/integration/test_docs.py tests/integration/test_pygraph_reference.py \
	tests/integration/test_plugin_symbols.py tests/integration/test_preflight_workers.py \
	tests/integration/test_changed.py tests/integration/test_junit_xml.py \
	tests/integration/test_html_report.py tests/integration/test_scale_out.py \
	tests/integration/test_systemd.py tests/integration/test_bash_completion.py \
	tests/integration/test_flaky.py tests/integration/test_configure.py
TESTS += $(INTEGRATION_TESTS)

# the integrate stage through the real binary, and the SDK as a third party sees it
# (make install DESTDIR=..., the example built with pkg-config against it)
INTEGRATOR_INTEGRATION_TESTS = tests/integration/test_integration_stage.py \
	tests/integration/test_plugin_sdk.py
TESTS += $(INTEGRATOR_INTEGRATION_TESTS)

# `selftest-core discover`, the corpus orphans and the orphan rules (discovery-python)
DISCOVERY_INTEGRATION_TESTS = tests/integration/test_discovery.py \
	tests/integration/test_corpus_discover.py tests/integration/test_orphan_rules.py
if BUILD_PLUGIN_DISCOVERY_PYTHON
TESTS += $(DISCOVERY_INTEGRATION_TESTS)
endif

# exporter-prometheus: promtool, a real Pushgateway and Prometheus
PROM_INTEGRATION_TESTS = tests/integration/test_prometheus_textfile.py \
	tests/integration/test_prometheus_scrape.py tests/integration/test_metrics_abuse.py \
	tests/integration/test_push_faults.py tests/integration/test_prometheus_rules.py
if BUILD_PLUGIN_EXPORTER_PROMETHEUS
TESTS += $(PROM_INTEGRATION_TESTS)
endif

# Real engines (root: a private dockerd and Podman service started with tools/engines/engines.sh,
# or ST_ENGINES_DIR; the tests skip otherwise). The container gauges need exporter-prometheus.
CONTAINER_INTEGRATION_TESTS = tests/integration/test_containers.py \
	tests/integration/test_container_kill9.py tests/integration/test_container_engine_dies.py \
	tests/integration/test_container_counters.py
if BUILD_PLUGIN_RUNTIME_DOCKER
TESTS += tests/integration/test_containers.py tests/integration/test_container_kill9.py \
	tests/integration/test_container_engine_dies.py
else
if BUILD_PLUGIN_RUNTIME_PODMAN
TESTS += tests/integration/test_containers.py tests/integration/test_container_kill9.py
endif
endif
if BUILD_PLUGIN_EXPORTER_PROMETHEUS
if BUILD_PLUGIN_RUNTIME_DOCKER
TESTS += tests/integration/test_container_counters.py
else
if BUILD_PLUGIN_RUNTIME_PODMAN
TESTS += tests/integration/test_container_counters.py
endif
endif
endif

# The Debian packages (debian/): built with dpkg-buildpackage from a copy of the git tree, lintian,
# dpkg -i, a cycle of the sample with the installed program, dpkg --purge. It installs packages on
# this machine, so it is not in TESTS: tools/test-all runs it as a step of its own, as
#   make check TESTS=tests/integration/test_debian.py SELFTEST_DEB_TEST=1
# (as root; skipped with the reason otherwise).
DEBIAN_INTEGRATION_TESTS = tests/integration/test_debian.py

# runtime-swarm against the private dockerd in swarm mode (root, or ST_ENGINES_DIR with SWARM_SOCK)
SWARM_INTEGRATION_TESTS = tests/integration/test_swarm.py
if BUILD_PLUGIN_RUNTIME_SWARM
TESTS += $(SWARM_INTEGRATION_TESTS)
endif

EXTRA_DIST += $(INTEGRATION_TESTS) $(INTEGRATOR_INTEGRATION_TESTS) $(DEBIAN_INTEGRATION_TESTS) \
	$(DISCOVERY_INTEGRATION_TESTS) $(PROM_INTEGRATION_TESTS) $(CONTAINER_INTEGRATION_TESTS) \
	$(SWARM_INTEGRATION_TESTS) \
	tests/integration/conftest.py tests/integration/st_helpers.py \
	tests/integration/tap_report.py tests/integration/pytest.ini \
	tests/junit/jenkins-junit.xsd

TEST_EXTENSIONS = .py
PY_LOG_DRIVER = $(LOG_DRIVER)
# -B and PYTHONDONTWRITEBYTECODE: no __pycache__ in the (under distcheck read-only) source tree
PY_LOG_COMPILER = env PYTHONDONTWRITEBYTECODE=1 $(PYTHON) -B -m pytest --tap
