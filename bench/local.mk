# SPDX-License-Identifier: MIT
# Benchmarks: ratios against a baseline measured in the same run (the machines are noisy).
EXTRA_DIST += bench/README.md bench/run_overhead.py bench/daemon_rss.py bench/vs_pytest.py \
	bench/plugin_overhead.py \
	bench/orphan_checks.py \
	bench/changed.py bench/scale_sim.py bench/scale_engines.py bench/data/networkx-durations.json \
	docs/scale-out.md bench/flaky.py docs/flaky.md
bench: selftest-core $(pkglib_LTLIBRARIES)
	SELFTEST_BIN='$(abs_top_builddir)/selftest-core' \
	SELF_TEST_PLUGIN_PATH='$(abs_top_builddir)/plugins' \
	SELF_TEST_SUPPORT_DIR='$(abs_top_srcdir)/python' \
	$(PYTHON) $(top_srcdir)/bench/run_overhead.py
.PHONY: bench

# make bench-flaky: intermittent tests against the reruns and the flakiness score (docs/flaky.md).
# BENCH_ARGS=--short: 6 cycles, no baseline.
bench-flaky: selftest-core $(pkglib_LTLIBRARIES)
	SELFTEST_BIN='$(abs_top_builddir)/selftest-core' \
	SELF_TEST_PLUGIN_PATH='$(abs_top_builddir)/plugins' \
	SELF_TEST_SUPPORT_DIR='$(abs_top_srcdir)/python' \
	$(PYTHON) $(top_srcdir)/bench/flaky.py $(BENCH_ARGS)
.PHONY: bench-flaky
