"""Command line: ``snnlab figures``, ``snnlab list``, ``snnlab report``, ``snnlab clean [--cache]``,
``snnlab sweep NOTEBOOK --grid grid.yaml`` (Ray; see :mod:`snnlab.suite.sweep`).

``snnlab figures [--profile quick|paper] [--only GLOB] [--jobs N] [--cell-timeout S]`` executes the
notebooks with papermill (one process each), logs wall time and peak memory per notebook and writes
``results/index.html``. It exits non-zero if any notebook failed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import nbformat

from ..paths import cache_root, results_root
from ..record.params import PROFILES, list_papers
from ..train import runs as cached_runs
from . import dryrun, figmap, notebooks, report, sweep, verdicts


def _positive_int(name: str):
    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            v = 0
        if v < 1:
            raise argparse.ArgumentTypeError(f"{name}={s!r} is invalid; allowed values: integers >= 1")
        return v

    return parse


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="snnlab", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("figures", help="execute notebooks and write results/index.html")
    f.add_argument("--profile", default="quick", choices=PROFILES)
    f.add_argument("--only", default=None, help="glob on paper/notebook, e.g. 'srigl/*' or '*variance*'")
    f.add_argument("--jobs", type=_positive_int("--jobs"), default=1)
    f.add_argument("--cell-timeout", type=_positive_int("--cell-timeout"), default=1800)
    f.add_argument("--dry-run", action="store_true",
                   help="validate every notebook's parameters for the profile, report the datasets each needs "
                        "and whether they are under the data root, estimate the cost; train nothing")
    ls = sub.add_parser("list", help="list notebooks and their parameters")
    ls.add_argument("--only", default=None)
    ls.add_argument("--figures", action="store_true",
                    help="instead: every figure and table of each paper, with the notebook output that regenerates "
                         "it or the reason it does not")
    sub.add_parser("report", help="rewrite results/index.html from existing results")
    c = sub.add_parser("clean", help="strip outputs (except nbval check cells) from notebooks in place")
    c.add_argument("paths", nargs="*")
    c.add_argument("--refresh", action="store_true",
                   help="execute first and keep the fresh outputs of the # NBVAL_CHECK_OUTPUT cells")
    c.add_argument("--cache", action="store_true",
                   help="instead: delete every cached run (trained models) under results/_cache or $SNNLAB_CACHE")
    v = sub.add_parser("verdicts", help="compare the quick runs' claim verdicts with papers/*/expected_verdicts.yaml")
    v.add_argument("--write", action="store_true", help="pin the current verdicts (on purpose: a flip is a change)")
    v.add_argument("--only", default=None, help="paper id")
    _sweep_parser(sub)
    return p


def _sweep_parser(sub) -> None:
    s = sub.add_parser("sweep", help="run a notebook over a grid of configurations x seeds on Ray; mean ± std page")
    s.add_argument("notebook", help="path of the notebook, e.g. notebooks/lth/03_tickets.ipynb")
    s.add_argument("--grid", required=True, help="grid YAML (see snnlab.suite.sweep), e.g. papers/lth/sweeps/*.yaml")
    s.add_argument("--seeds", type=_positive_int("--seeds"), default=None, help="seeds 0..N-1 (default: the grid's)")
    s.add_argument("--address", default=None, help="an existing Ray cluster: auto, HOST:PORT or ray://HOST:PORT "
                   "(default: start a local Ray sized to this machine)")
    s.add_argument("--gpus-per-run", type=float, default=0)
    s.add_argument("--cpus-per-run", type=float, default=1)
    s.add_argument("--max-retries", type=int, default=2, choices=range(0, 100), metavar="N",
                   help="retries of a run whose worker died (Ray) or whose notebook failed (default 2)")
    s.add_argument("--profile", default=None, choices=PROFILES, help="default: the grid's, else quick")
    s.add_argument("--cell-timeout", type=_positive_int("--cell-timeout"), default=24 * 3600)
    s.add_argument("--num-cpus", type=_positive_int("--num-cpus"), default=None,
                   help="CPUs of the local Ray instance (default: all of this machine's)")
    s.add_argument("--dry-run", action="store_true", help="validate, list the runs and their cost; start nothing")


def _sweep(args) -> int:
    try:
        grid = sweep.load_grid(args.grid, args.notebook, seeds=args.seeds, profile=args.profile)
    except ValueError as e:
        print(f"snnlab sweep: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        runs = sweep.plan(args.notebook, grid)
        table, total = sweep.cost(runs)
        table["finished"] = [sweep.is_complete(r.dir, r.key) for r in runs]
        print(table.to_string(index=False))
        print(f"{len(grid.configs)} configurations x {len(grid.seeds)} seeds ({grid.profile}); cost: {total}")
        return 0
    res = sweep.run_sweep(args.notebook, grid, address=args.address, cpus_per_run=args.cpus_per_run,
                          gpus_per_run=args.gpus_per_run, max_retries=args.max_retries,
                          cell_timeout=args.cell_timeout, num_cpus=args.num_cpus)
    return res.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "figures":
        paths = notebooks.discover(args.only)
        if not paths:
            print(f"no notebook matches --only={args.only!r}; see `snnlab list`", file=sys.stderr)
            return 2
        if args.dry_run:
            records = dryrun.plan(paths, args.profile)
            print(dryrun.format_plan(records))
            return 0 if all(r["ok"] for r in records) else 1
        print(f"running {len(paths)} notebook(s), profile={args.profile}, jobs={args.jobs}")
        runs = notebooks.run_many(paths, args.profile, args.jobs, args.cell_timeout)
        page = report.write_report(runs)
        failed = [r for r in runs if not r.ok]
        print(f"report: {page}")
        for r in failed:
            print(f"\n--- {r.notebook} failed; last output:\n{r.output[-3000:]}", file=sys.stderr)
        return 1 if failed else 0
    if args.cmd == "list" and args.figures:
        for paper in [args.only] if args.only else list_papers():
            print(figmap.format_map(paper))
        return 0
    if args.cmd == "list":
        for path in notebooks.discover(args.only):
            print(notebooks.ident(path))
            for name, info in notebooks.parameters(path).items():
                print(f"    {name} = {info['default']}  {info.get('help') or ''}".rstrip())
        return 0
    if args.cmd == "report":
        print(report.write_report())
        return 0
    if args.cmd == "clean":
        if args.cache:
            n = cached_runs.clear_cache()
            print(f"removed {n} cached run(s) from {cache_root()}")
            return 0
        for p in args.paths or notebooks.discover():
            if args.refresh:
                notebooks.refresh(p)
            else:
                nb = nbformat.read(str(p), as_version=4)
                nbformat.write(notebooks.clean(nb), str(p))
            print(f"{'refreshed' if args.refresh else 'cleaned'} {p}")
        return 0
    if args.cmd == "sweep":
        return _sweep(args)
    if args.cmd == "verdicts":
        papers = [args.only] if args.only else list_papers()
        diffs = []
        for paper in papers:
            if args.write:
                print(f"wrote {verdicts.write_expected(paper)}")
                continue
            for claims_json in sorted((results_root() / paper).glob("*/quick/claims.json")):
                diffs += verdicts.compare(paper, claims_json.parent.parent.name, claims_json)
        print("\n".join(diffs) if diffs else "verdicts match papers/*/expected_verdicts.yaml")
        return 1 if diffs else 0
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
