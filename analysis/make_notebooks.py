"""Writes the analysis notebooks (without outputs). Run it after editing a notebook's cells here.

Every notebook takes its run directory from the ``FLEETSIM_RUN_DIR`` environment variable (or the
``RUN_DIR`` variable in its first cell); with neither set it produces a small run of ``scenarios/tiny.yaml``
itself, so it runs top to bottom anywhere.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

SETUP = """# Parameters: a run directory, or None to produce a small run here.
import os
from pathlib import Path

import fleetsim
from fleetsim.io import report

RUN_DIR = os.environ.get("FLEETSIM_RUN_DIR")

if RUN_DIR is None:
    from fleetsim.app.loading import load_scenario
    from fleetsim.app.runner import run_scenario

    root = Path.cwd()
    while not (root / "scenarios").is_dir() and root != root.parent:
        root = root.parent
    loaded = load_scenario(root / "scenarios" / "tiny.yaml", [f"output_dir={root / 'runs'}"])
    RUN_DIR = run_scenario(loaded, progress=False).run_dir
run = fleetsim.load_run(RUN_DIR)
print(run.label, run.summary["strategy"], run.summary["rounds"], "rounds")"""

NOTEBOOKS = {
    "convergence": (
        "# Convergence: accuracy against simulated wall-clock time",
        [
            "report.plot_convergence(run);",
            "cols = ['round', 'end_s', 'accuracy', 'personalized_accuracy', 'eval_loss']\n"
            "run.rounds[cols].dropna(subset=['accuracy'])",
            "{k: run.summary[k] for k in ('target_accuracy', 'time_to_target_s', 'final_accuracy', "
            "'majority_class_accuracy')}",
        ],
    ),
    "time": (
        "# Where the time goes: download, compute, upload and waiting, per round and per device tier",
        [
            "report.plot_time_breakdown(run);",
            "per_round = run.updates.groupby('round')[['download_s', 'compute_s', 'upload_s']].max()\n"
            "per_round.join(run.rounds.set_index('round')['duration_s'])",
            "run.updates.groupby('tier')[['download_s', 'compute_s', 'upload_s', 'straggler_factor']].describe().T",
        ],
    ),
    "participation": (
        "# Who participates: availability, selections, failures by reason, stragglers",
        [
            "report.plot_participation(run);",
            "run.rounds[['round', 'n_available', 'n_selected', 'n_delivered', 'lost_offline', 'lost_failure', "
            "'lost_deadline', 'lost_oom']]",
            "run.events.kind.value_counts()",
            "run.updates.groupby('profile').device_id.nunique().rename('devices that trained at least once')",
        ],
    ),
    "memory": (
        "# Memory: peak memory per device tier against usable memory, and oom losses",
        [
            "report.plot_memory(run);",
            "(run.updates.assign(peak_gib=run.updates.peak_memory_bytes / 2**30, "
            "usable_gib=run.updates.usable_memory_bytes / 2**30)\n"
            " .groupby('tier')[['peak_gib', 'usable_gib']].agg(['median', 'max']))",
            "run.updates[run.updates.outcome == 'oom'][['round', 'device_id', 'profile', 'peak_memory_bytes', "
            "'usable_memory_bytes']]",
        ],
    ),
    "configurator": (
        "# The configurator: dropout ratio chosen over time per device tier, and the bandit's estimates",
        [
            "report.plot_configurator(run);",
            "import pandas as pd\n"
            "bandit = Path(RUN_DIR) / 'bandit.parquet'\n"
            "pd.read_parquet(bandit).pivot(index='round', columns='ratio', values='mean_reward') if bandit.exists() "
            "else 'this run used no bandit configurator'",
            "cols = [c for c in ('round', 'device_id', 'tier', 'configured_dropout_ratio', 'dropout_ratio', 'arm', 'reward', 'compute_s') "
            "if c in run.updates]\nrun.updates[cols].head(20)",
        ],
    ),
}


def main() -> None:
    for name, (title, cells) in NOTEBOOKS.items():
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_markdown_cell(title), nbformat.v4.new_code_cell(SETUP)]
        nb.cells += [nbformat.v4.new_code_cell(src) for src in cells]
        nbformat.write(nb, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()
