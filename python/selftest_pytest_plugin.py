# SPDX-License-Identifier: MIT
"""selftest-core's bundled pytest plugin, as ``-p selftest_pytest_plugin`` loads it.

PYTEST_DONT_REWRITE

pytest rewrites the asserts of every module that -p names: it parses and compiles the module's
source again in each pytest process (and each xdist worker) unless it can cache the result
beside it, which it cannot in a read-only installation or under PYTHONDONTWRITEBYTECODE. For
the plugin that is about 10 ms a process. So this module is only a name: the plugin is
selftest_pytest_plugin_impl (its documentation is there), imported from its ordinary
byte-compiled file, and it takes this module's place in sys.modules, so pytest registers it
under this name.
"""
import sys

import selftest_pytest_plugin_impl

sys.modules[__name__] = selftest_pytest_plugin_impl
