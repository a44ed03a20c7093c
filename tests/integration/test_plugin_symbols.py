# SPDX-License-Identifier: MIT
"""Every bundled plugin links the helper library (src/lib) into its module without exporting
it.  For each plugin .so of this build: `nm -D --defined-only` lists only
selftest_plugin_entry (no st_* helper leaks into the dynamic symbol table, where it could bind
to another plugin's or the core's copy), `nm -D --undefined-only` names nothing of the core
(no st_* import: the helpers are inside), and the module's own symbol table does carry the
helpers it uses (st_check_settings, which every plugin calls, as a local symbol)."""

import glob
import os
import shutil

import pytest
import st_helpers as sth
from st_helpers import is_eq, ok

SRCDIR = sth.top_srcdir()
BUILDDIR = os.path.abspath(os.environ.get("top_builddir") or SRCDIR)
# without a build (no selftest binary) the tests are skipped; with one, it must have plugins
pytestmark = pytest.mark.usefixtures("selftest_bin")
# the plugin modules of this build
PLUGINS = sorted(glob.glob(os.path.join(BUILDDIR, "plugins", "*", ".libs", "*.so")))


@pytest.fixture(scope="module")
def nm():
    path = shutil.which("nm")
    if not path:
        pytest.skip("nm (binutils) not found")
    return path


def symbols(nm, so, *flags):
    rc, out, err = sth.run([nm] + list(flags) + [so])
    return rc, [line.split() for line in out.splitlines() if line.strip()]


def test_plugins_built(nm):
    ok(PLUGINS, "the build has plugin modules", BUILDDIR)


@pytest.mark.parametrize("so", PLUGINS, ids=[os.path.basename(p) for p in PLUGINS])
def test_plugin_symbols(nm, so):
    name = os.path.basename(so)
    rc, rows = symbols(nm, so, "-D", "--defined-only")
    is_eq((rc, [r[-1] for r in rows]), (0, ["selftest_plugin_entry"]),
          "%s exports only selftest_plugin_entry" % name)
    rc, rows = symbols(nm, so, "-D", "--undefined-only")
    imports = [r[-1] for r in rows if r[-1].startswith("st_")]
    is_eq(imports, [], "%s imports no st_* symbol" % name)
    rc, rows = symbols(nm, so)
    local = {r[-1] for r in rows if len(r) == 3 and r[1] in "tT"}
    ok("st_check_settings" in local, "%s carries its own st_check_settings" % name,
       sorted(s for s in local if s.startswith("st_"))[:20])
