"""`omr sweep`: search Ultralytics train arguments with Optuna (grid, random, TPE), pruning losers; trials are runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from omr_core.training import parse_extra, sweep, sweep_view
from omr_core.workspace import get_workspace

VERB = "sweep"
HELP = "sweeps over train arguments (Optuna grid/random/TPE, pruning): new, status, workers, launch-best"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    n = sub.add_parser("new", help="define a sweep and start its controller(s)")
    n.add_argument("name")
    n.add_argument("--data", required=True)
    n.add_argument("--model", default="yolov8n.yaml")
    n.add_argument("--preset")
    n.add_argument("--param", action="append", required=True, metavar="NAME=SPACE",
                   help="lr0=0.001:0.1:log, imgsz=256:640:int, batch=4,8,16 (repeat for each argument)")
    n.add_argument("--sampler", choices=sweep.SAMPLERS, default="tpe")
    n.add_argument("--objective", choices=sweep.OBJECTIVES, default=None,
                   help="map50-95 (default), map50, classes (mean AP50-95 of --classes), critical (of the critical "
                        "classes the data has), notes (notes read right on validation pages with note truth, "
                        "read once a trial ends; pruning uses mAP50-95)")
    n.add_argument("--classes", default="", metavar="A,B",
                   help="classes of the objective 'classes' (implies it), e.g. clefG,clefF,noteheadBlackOnLine")
    n.add_argument("--trials", type=int, default=6)
    n.add_argument("--epochs", type=int, default=5, help="epochs per trial")
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--storage", default="", help="Optuna storage URL shared by several machines (default: sqlite "
                                                 "in the sweep folder), e.g. postgresql+psycopg2://user:pw@host/db "
                                                 "(pip install psycopg2-binary)")
    n.add_argument("--workers", type=int, default=1, help="controllers to start on this machine")
    n.add_argument("--fixed", nargs="+", default=[], metavar="key=value",
                   help="train arguments every trial shares, e.g. --fixed imgsz=320 device=0 workers=4")
    for verb, what in (("status", "trials, their outcome and the best one; also an Ultralytics tuner folder "
                                  "(tune:PATH as listed, or the folder's path); no NAME lists them all"),
                       ("workers", "start more controllers"),
                       ("launch-best", "queue the best trial's arguments for the full epochs")):
        s = sub.add_parser(verb, help=what)
        s.add_argument("name", nargs="?" if verb == "status" else None)
        if verb == "workers":
            s.add_argument("--n", type=int, default=1)
        if verb == "launch-best":
            s.add_argument("--epochs", type=int, required=True)
            s.add_argument("--run-name")
    for s in sub.choices.values():
        s.add_argument("--runs-dir", help="runs folder (default: the workspace's runs/)")


def _status(runs: Path, name: str | None) -> int:
    if not name:
        keys = sweep_view.list_views(runs)
        print("\n".join(keys) if keys else f"no sweep and no Ultralytics tuner folder in {runs}")
        return 0
    v = sweep_view.load_view(runs, name)
    print(f"{'sweep' if v.kind == 'sweep' else 'tuner'} {v.key}: {v.caption}")
    for t in v.trials:
        val = f"{t['value']:.4f}" if t.get("value") is not None else "-"
        params = ", ".join(f"{k}={p}" for k, p in t["params"].items())
        ep = f"{t['epochs']} ep  " if t.get("epochs") is not None else ""
        print(f"  t{t['number']:<3} {t['state']:<9} {val:>7}  {ep}{params}  {t.get('reason', '')}")
    b = v.best
    print(f"best: t{b['number']} {b['value']:.4f} with {b['params']}" if b else "best: none yet")
    if diff := v.diff():
        print("best vs base: " + "; ".join(f"{k} {'default' if base is None else base} -> {new}" for k, base, new in diff))
    if imp := v.importance():
        print("what mattered (Optuna's importance): " + ", ".join(f"{k} {x:.2f}" for k, x in imp.items()))
    return 0


def run(args: argparse.Namespace) -> int:
    runs = Path(args.runs_dir) if args.runs_dir else get_workspace().runs
    if args.action == "new":
        spec = sweep.SweepSpec(args.name, args.model, args.data, tuple(sweep.parse_param(p) for p in args.param),
                               preset=args.preset, args=parse_extra(args.fixed), sampler=args.sampler,
                               objective=args.objective or ("classes" if args.classes else "map50-95"),
                               trials=args.trials, epochs=args.epochs, seed=args.seed, storage=args.storage,
                               classes=tuple(c.strip() for c in args.classes.split(",") if c.strip()))
        d = sweep.create(spec, runs)
        pids = sweep.start_controllers(runs, args.name, args.workers)
        print(f"sweep {args.name} in {d}: controller PID {', '.join(map(str, pids))}; `omr sweep status {args.name}`")
        return 0
    if args.action == "workers":
        print("controllers:", ", ".join(map(str, sweep.start_controllers(runs, args.name, args.n))))
        return 0
    if args.action == "launch-best":
        print(f"queued {sweep.launch_best(runs, args.name, args.epochs, args.run_name)}")
        return 0
    return _status(runs, args.name)
