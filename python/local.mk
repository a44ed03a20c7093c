# SPDX-License-Identifier: MIT
# The bundled pytest plugin, installed where the core finds it ($(pkgdatadir)/python).
pythonsupportdir = $(pkgdatadir)/python
dist_pythonsupport_DATA = python/selftest_pytest_plugin.py python/selftest_pytest_plugin_impl.py \
	python/selftest_forkcheck.py

# Byte-compiled at installation: the directory is usually not writable by whoever runs the
# tests, so Python would otherwise compile the plugin again in every batch (about 8 ms of a
# sub-second suite). Compiled with the build's Python; another interpreter compiles it as
# before. Packages that byte-compile at installation themselves (Debian's) remove this.
install-data-hook: install-python-bytecode
uninstall-hook: uninstall-python-bytecode
install-python-bytecode:
	-$(PYTHON) -m compileall -q -d '$(pythonsupportdir)' '$(DESTDIR)$(pythonsupportdir)'
uninstall-python-bytecode:
	-rm -rf '$(DESTDIR)$(pythonsupportdir)/__pycache__'
.PHONY: install-python-bytecode uninstall-python-bytecode
