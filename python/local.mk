# SPDX-License-Identifier: MIT
# The bundled pytest plugin, installed where the core finds it ($(pkgdatadir)/python).
pythonsupportdir = $(pkgdatadir)/python
dist_pythonsupport_DATA = python/selftest_pytest_plugin.py python/selftest_forkcheck.py
