"""The architecture holds: the import-layer contract passes, no import circle, no import-time side effects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grimp
from conftest import ROOT


def test_import_layer_contract_passes():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "broken" not in done.stdout.lower().replace("0 broken", "")


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph("fleetsim", cache_dir=None)
    circles = [
        (module, imported)
        for module in sorted(graph.modules)
        for imported in sorted(graph.find_modules_directly_imported_by(module))
        if graph.chain_exists(importer=imported, imported=module)
    ]
    assert circles == []


def test_importing_fleetsim_changes_no_global_state():
    code = (
        "import os, matplotlib, torch\n"
        "backend = matplotlib.get_backend()\n"
        "state = torch.get_rng_state()\n"
        "import fleetsim, fleetsim.io.report, fleetsim.io.compare, fleetsim.app.runner, fleetsim.app.cli\n"
        "import fleetsim.train.models, fleetsim.costs.proxies\n"
        "assert matplotlib.get_backend() == backend, matplotlib.get_backend()\n"
        "assert torch.equal(torch.get_rng_state(), state)\n"
        "assert 'HF_HUB_OFFLINE' not in os.environ and 'TRANSFORMERS_OFFLINE' not in os.environ\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "MPLBACKEND")}
    env["MPLBACKEND"] = "svg"  # a backend the code must leave alone
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
