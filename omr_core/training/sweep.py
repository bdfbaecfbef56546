"""Sweeps over Ultralytics train arguments with Optuna: grid, random or TPE, pruning losers from their epochs.

A sweep is a folder ``<runs>/sweeps/NAME/`` holding ``sweep.json`` (the base run, the search space, the objective,
the budget) and the Optuna study (``study.db``, SQLite; any Optuna storage URL works, e.g. PostgreSQL for several
machines). A controller (``python -m omr_core.training.sweep RUNS_DIR NAME``, detached; start several, here or on
other machines sharing the storage) asks the study for a trial, queues it as an ordinary run named ``NAME-tN`` (so
it is monitored, comparable and resumable like any run, and waits its turn for the device), follows its epochs,
reports the objective after each, and stops it at the end of an epoch when the pruner says it is a loser. A trial
whose loss goes non-finite is stopped and recorded as failed (diverged), never scored; a trial that fails or is
killed is recorded as failed and the sweep goes on. Every trial's outcome is a line of ``trials.jsonl``.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from omr_core.atomic import write_json
from omr_core.errors import OmrError
from omr_core.training import sweep_objective as objective
from omr_core.training.runs import (
    BEST,
    append_jsonl,
    effective_state,
    process_alive,
    process_start_time,
    read_json,
    read_run,
)

SWEEPS = "sweeps"
SAMPLERS = ("grid", "random", "tpe")
#: What a sweep can maximise (see `omr_core.training.sweep_objective`).
OBJECTIVES = objective.OBJECTIVES
POLL_S = 1.0


class SweepError(OmrError):
    """A sweep that cannot be defined or run as asked."""


@dataclass(frozen=True)
class Param:
    """One searched argument: a float/int range (``low``..``high``, ``log``) or a list of ``choices``."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()


def parse_param(text: str) -> Param:
    """``lr0=0.001:0.1:log``, ``epochs=2:6:int``, ``batch=4,8,16`` or ``optimizer=SGD,AdamW``."""
    m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+?)\s*", text or "")
    if not m:
        raise SweepError(f"search parameter {text!r}: write name=low:high[:log|:int] or name=a,b,c")
    name, spec = m.groups()
    if ":" in spec:
        parts = spec.split(":")
        try:
            low, high = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            raise SweepError(f"search parameter {text!r}: low and high must be numbers (e.g. lr0=0.001:0.1:log)") from None
        flags = set(parts[2:])
        if not low < high or flags - {"log", "int"} or (("log" in flags) and low <= 0):
            raise SweepError(f"search parameter {text!r}: need low < high (> 0 with log); flags are log and int")
        return Param(name, low, high, "log" in flags, "int" in flags)
    choices = tuple(_number(c.strip()) for c in spec.split(",") if c.strip())
    if not choices:
        raise SweepError(f"search parameter {text!r} lists no values")
    return Param(name, choices=choices)


def _number(s: str) -> Any:
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(s.lower(), s)


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep searches: a base run (model, data, preset, arguments), the space, objective and budget."""

    name: str
    model: str
    data: str
    space: tuple[Param, ...]
    preset: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    sampler: str = "tpe"
    objective: str = "map50-95"
    trials: int = 6
    epochs: int = 5
    seed: int = 0
    storage: str = ""  # Optuna storage URL; "" = sqlite in the sweep folder
    classes: tuple[str, ...] = ()  # the classes of a ``classes``/``critical`` objective

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["space"] = [asdict(p) for p in self.space]
        return d

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> SweepSpec:
        space = tuple(Param(**{**p, "choices": tuple(p.get("choices") or ())}) for p in d["space"])
        return SweepSpec(**{**d, "space": space, "classes": tuple(d.get("classes") or ())})


def sweep_dir(runs: Path, name: str) -> Path:
    return runs / SWEEPS / name


def _storage(spec: SweepSpec, runs: Path) -> str:
    return spec.storage or f"sqlite:///{sweep_dir(runs, spec.name) / 'study.db'}"


def _sampler(spec: SweepSpec) -> Any:
    import optuna

    if spec.sampler == "grid":
        if any(not p.choices for p in spec.space):
            raise SweepError("a grid sweep needs a list of values for every parameter (e.g. lr0=0.001,0.01,0.1)")
        # The grid's points are enqueued trials (see `create`): each ask takes the next one, also across workers.
        # (Optuna's GridSampler stops the study from inside its callback, which only works within optimize().)
        return optuna.samplers.RandomSampler(seed=spec.seed)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=spec.seed)
    return optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=min(3, spec.trials))


def _pruner() -> Any:
    import optuna

    # Steps are epochs counted from 1 and Optuna prunes from step n_warmup_steps on: 2 keeps the first epoch as
    # the warm-up (with 1, a trial could be stopped after its first epoch).
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)


def _study(spec: SweepSpec, runs: Path) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name=spec.name, storage=_storage(spec, runs), direction="maximize",
                               sampler=_sampler(spec), pruner=_pruner(), load_if_exists=True)


def create(spec: SweepSpec, runs: str | os.PathLike[str]) -> Path:
    """Validate a sweep (its base run and every parameter) and create its folder and study."""
    from omr_core.training.spec import build_spec, check_keys

    runs = Path(runs)
    if spec.sampler not in SAMPLERS:
        raise SweepError(f"sampler {spec.sampler!r}: use {', '.join(SAMPLERS)}")
    if spec.objective not in OBJECTIVES:
        raise SweepError(f"objective {spec.objective!r}: use {', '.join(OBJECTIVES)}")
    if spec.trials < 1 or spec.epochs < 1:
        raise SweepError("a sweep needs at least 1 trial of at least 1 epoch")
    check_keys({p.name: 0 for p in spec.space})
    build_spec(f"{spec.name}-t0", spec.model, spec.data, preset=spec.preset,
               args={**spec.args, "epochs": spec.epochs}, deep=False)
    spec = _resolve_objective(spec)
    d = sweep_dir(runs, spec.name)
    try:
        d.mkdir(parents=True)
    except FileExistsError:
        raise SweepError(f"a sweep named {spec.name!r} exists already in {runs / SWEEPS}") from None
    write_json(d / "sweep.json", spec.to_dict())
    _sampler(spec)  # a grid without lists fails here, before any trial
    study = _study(spec, runs)
    if spec.sampler == "grid":
        import itertools

        for point in itertools.product(*(p.choices for p in spec.space)):
            study.enqueue_trial(dict(zip((p.name for p in spec.space), point)))
    return d


def _resolve_objective(spec: SweepSpec) -> SweepSpec:
    try:
        return replace(spec, classes=objective.resolve_classes(spec.objective, spec.classes, spec.data))
    except objective.ObjectiveError as exc:
        raise SweepError(str(exc)) from None


def objective_label(spec: SweepSpec) -> str:
    """The sweep's objective as people read it."""
    return objective.label(spec.objective, spec.classes)


def load(runs: str | os.PathLike[str], name: str) -> SweepSpec:
    doc = read_json(sweep_dir(Path(runs), name) / "sweep.json")
    if doc is None:
        raise SweepError(f"no sweep named {name!r} in {Path(runs) / SWEEPS}")
    return SweepSpec.from_dict(doc)


def _suggest(trial: Any, p: Param) -> Any:
    if p.choices:
        return trial.suggest_categorical(p.name, list(p.choices))
    if p.integer:
        return trial.suggest_int(p.name, int(p.low or 0), int(p.high or 0), log=p.log)
    return trial.suggest_float(p.name, float(p.low or 0), float(p.high or 0), log=p.log)


def _diverged(rows: list[dict[str, float]], run_dir: Path) -> bool:
    losses = [v for r in rows for k, v in r.items() if k.startswith("train/") and k.endswith("_loss")]
    if any(not math.isfinite(v) for v in losses):
        return True
    ev = run_dir / "events.jsonl"
    return ev.is_file() and b'"kind":"nonfinite_loss"' in ev.read_bytes()


@dataclass
class TrialOutcome:
    number: int
    run: str
    params: dict[str, Any]
    state: str  # complete, pruned, failed, skipped
    value: float | None = None
    epochs: int = 0
    reason: str = ""


def _record(runs: Path, spec: SweepSpec, out: TrialOutcome) -> None:
    append_jsonl(sweep_dir(runs, spec.name) / "trials.jsonl", {"t": time.time(), **asdict(out)})


def _forecast_skip(spec: SweepSpec, args: Mapping[str, Any]) -> str:
    """Why this trial's batch cannot fit the GPU (the assigner forecast), or "" (CPU, no forecast, or it fits)."""
    device = str(args.get("device", "") or "")
    if device in ("cpu", "mps"):
        return ""
    try:
        from omr_core.training.gpu import probe
        from omr_core.training.spec import assigner_forecast

        gpus = probe()
        if not gpus.available:
            return ""
        vram = int(gpus.devices[0].memory_total_mb * 2**20)
        fc = assigner_forecast(spec.data, int(args.get("imgsz", 640)), int(args.get("batch", 16)), vram)
    except Exception:  # advice only: a forecast that cannot be made never skips a trial
        return ""
    if fc is None or fc.fits:
        return ""
    return (f"skipped: the assigner memory forecast {fc.gib:.1f} GiB at batch {args.get('batch')} exceeds the GPU's "
            f"{vram / 2**30:.1f} GiB (largest batch that fits: {fc.max_batch})")


#: A RUNNING trial with no controller recorded this long after it was asked is an orphan.
ORPHAN_GRACE_S = 60.0


def fail_orphans(study: Any) -> None:
    """Trials left RUNNING by a controller that died (SIGKILL, reboot) are failed, so the budget counts right."""
    from optuna.trial import TrialState

    now = time.time()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid, ctime = t.user_attrs.get("controller_pid"), t.user_attrs.get("controller_ctime")
        if pid is None or ctime is None:
            # Asked a moment ago by a controller still writing who it is (two writes: its start time, then its pid);
            # only a trial that stays without both for a minute was left by a controller that died right after asking.
            started = t.datetime_start.timestamp() if t.datetime_start else now
            orphan = now - started > ORPHAN_GRACE_S
        else:
            orphan = not process_alive(pid, ctime)
        if orphan:
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)  # noqa: SLF001 - Optuna's way


def run_trial(spec: SweepSpec, runs: Path, study: Any, *, poll_s: float = POLL_S) -> TrialOutcome | None:
    """Ask for one trial, run it to its end (or prune it); None when the budget is spent."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    from omr_core.training import launcher, queue
    from omr_core.training.spec import build_spec

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL,
                                                     TrialState.RUNNING))
    if len(done) >= spec.trials:
        return None
    trial = study.ask()
    pid = os.getpid()
    # ctime first: another controller's orphan check reads a trial with a pid as owned by that process (two writes,
    # and a pid without its start time would read as a dead controller and fail a live trial)
    trial.set_user_attr("controller_ctime", process_start_time(pid))
    trial.set_user_attr("controller_pid", pid)
    params = {p.name: _suggest(trial, p) for p in spec.space}
    name = f"{spec.name}-t{trial.number}"
    trial.set_user_attr("run", name)
    args = {**spec.args, **params, "epochs": spec.epochs}
    skip = _forecast_skip(spec, args)
    if skip:
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        out = TrialOutcome(trial.number, name, params, "skipped", reason=skip)
        _record(runs, spec, out)
        return out
    try:
        queue.add(build_spec(name, spec.model, spec.data, preset=spec.preset, args=args), runs)
    except OmrError as exc:
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        out = TrialOutcome(trial.number, name, params, "failed", reason=f"could not queue: {exc}")
        _record(runs, spec, out)
        return out
    run_dir = runs / name
    reported, best, pruned, diverged, why, pruned_at = 0, None, False, False, "", 0
    while True:
        doc = read_run(run_dir)
        state, why = effective_state(doc) if doc else ("queued", "")
        rows = objective.results_rows(run_dir)
        values = objective.epoch_values(spec.objective, spec.classes, run_dir)
        for v in values[reported:]:
            reported += 1
            if v is None or not math.isfinite(v):
                continue
            best = v if best is None else max(best, v)
            try:
                trial.report(v, reported)
            except UpdateFinishedTrialError:
                continue  # ended in the study by someone else: the run is still watched to its end and recorded
            if not pruned and state in ("running", "starting") and trial.should_prune():
                pruned, pruned_at = True, reported
                launcher.stop(name, runs, at="epoch")
        if not diverged and state in ("running", "starting") and _diverged(rows, run_dir):
            diverged = True
            launcher.stop(name, runs, at="batch")
        if doc is not None and state not in ("running", "starting"):
            break
        if doc is None and not any(e.name == name and e.state in ("waiting", "held") for e in queue.entries(runs)):
            break  # cancelled from the queue, or it could not start
        time.sleep(poll_s)
    epochs = len(rows)
    if diverged:
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        out = TrialOutcome(trial.number, name, params, "failed", best, epochs, "diverged (non-finite loss): stopped")
    elif pruned:
        study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
        out = TrialOutcome(trial.number, name, params, "pruned", best, epochs, f"pruned at epoch {pruned_at}" + (
            f" (the epoch in progress then, {epochs}, was finished)" if epochs > pruned_at else ""))
    elif doc is None or state == "failed" or best is None:
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        reason = why or "no validated epoch" if state == "failed" else "no validated epoch"
        if state != "failed" and rows and spec.objective in objective.CLASS_OBJECTIVES:
            reason = f"none of {', '.join(spec.classes)} has a validation instance: no AP to average"
        out = TrialOutcome(trial.number, name, params, "failed", best, epochs, str(reason))
    else:
        final, note = _final_value(spec, run_dir, best)
        if final is None:
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            out = TrialOutcome(trial.number, name, params, "failed", None, epochs, note)
        else:
            study.tell(trial, final, skip_if_finished=True)
            out = TrialOutcome(trial.number, name, params, "complete", final, epochs, note)
    _record(runs, spec, out)
    return out


def _final_value(spec: SweepSpec, run_dir: Path, best: float) -> tuple[float | None, str]:
    """A completed trial's value: its best epoch, or (notes) notes read right by its best.pt; and a note."""
    if spec.objective != objective.NOTES:
        return best, ""
    try:
        v = objective.notes_value(run_dir / BEST, spec.data)
    except Exception as exc:  # a reading that fails scores nothing, and never stops the controller
        return None, f"notes read right could not be read from {run_dir / BEST}: {exc}"
    if v is None:
        return None, "no validation page with note truth to read"
    return v, f"best epoch mAP50-95 {best:.4f}"


def run_sweep(runs: Path, name: str) -> int:
    """A controller: run trials until the budget is spent (several controllers may share one study)."""
    spec = load(runs, name)
    study = _study(spec, runs)
    fail_orphans(study)
    while run_trial(spec, runs, study) is not None:
        pass
    _notify_finished(runs, spec)
    return 0


def _notify_finished(runs: Path, spec: SweepSpec) -> None:
    """The "sweep finished" notification (best trial), sent once per sweep by whichever controller ends last."""
    from optuna.trial import TrialState

    from omr_core.notify import deliver, load_settings
    from omr_core.notify.messages import Notice, title
    from omr_core.notify.watch import claim

    study = _study(spec, runs)
    if study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        return  # another controller still has a trial: it sends when it ends
    try:
        settings = load_settings()
    except OmrError:
        return
    if not settings.targets_for("sweep_finished") or not claim(sweep_dir(runs, spec.name), "sweep_finished"):
        return
    ts, b = trials(runs, spec.name), best(runs, spec.name)
    states = ", ".join(f"{n} {s}" for s, n in sorted(
        {s: sum(t["state"] == s for t in ts) for s in {t["state"] for t in ts}}.items()))
    body = f"{len(ts)} trials ({states}), objective {spec.objective}."
    if b:
        body += f"\nBest: trial {b['number']} ({b['run']}) {b['value']:.4f} with " + ", ".join(
            f"{k}={v}" for k, v in b["params"].items()) + f".\nomr sweep launch-best {spec.name} --epochs N"
    link = settings.run_link(b["run"]) if b else ""
    deliver(Notice("sweep_finished", spec.name, title("sweep_finished", spec.name).replace("OMR run", "OMR sweep"),
                   body + (f"\n{link}" if link else ""), "success"), settings)


def trials(runs: str | os.PathLike[str], name: str) -> list[dict[str, Any]]:
    """Every recorded trial outcome of a sweep, in the order they ended."""
    p = sweep_dir(Path(runs), name) / "trials.jsonl"
    if not p.is_file():
        return []
    return [orjson.loads(x) for x in p.read_bytes().splitlines() if x.strip()]


def best(runs: str | os.PathLike[str], name: str) -> dict[str, Any] | None:
    """The completed trial with the highest objective, or None."""
    done = [t for t in trials(runs, name) if t["state"] == "complete" and t.get("value") is not None]
    return max(done, key=lambda t: t["value"]) if done else None


def start_controllers(runs: str | os.PathLike[str], name: str, n: int = 1) -> list[int]:
    """Start ``n`` detached controllers for a sweep; returns their PIDs."""
    from omr_core.training.launcher import worker_env

    runs = Path(runs)
    load(runs, name)
    pids = []
    for _ in range(n):
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [sys.executable, "-m", "omr_core.training.sweep", str(runs), name], cwd=sweep_dir(runs, name),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            close_fds=True, env=worker_env(None))
        pids.append(proc.pid)
    return pids


def launch_best(runs: str | os.PathLike[str], name: str, epochs: int, run_name: str | None = None) -> str:
    """Queue the best trial's configuration for ``epochs`` epochs; returns the new run's name."""
    from omr_core.training import queue
    from omr_core.training.spec import build_spec

    spec, b = load(runs, name), best(runs, name)
    if b is None:
        raise SweepError(f"sweep {name!r} has no completed trial yet")
    new = run_name or f"{name}-best"
    queue.add(build_spec(new, spec.model, spec.data, preset=spec.preset, args={**spec.args, **b["params"],
                                                                                 "epochs": epochs}), runs)
    return new


def list_sweeps(runs: str | os.PathLike[str]) -> list[str]:
    """Names of the sweeps in a runs folder (newest first)."""
    base = Path(runs) / SWEEPS
    if not base.is_dir():
        return []
    found = [d for d in base.iterdir() if (d / "sweep.json").is_file()]
    return [d.name for d in sorted(found, key=lambda d: -(d / "sweep.json").stat().st_mtime)]


def importance(runs: str | os.PathLike[str], name: str) -> dict[str, float]:
    """Which arguments mattered (Optuna's importance, PED-ANOVA over the completed trials); {} with too few trials."""
    import optuna

    spec = load(runs, name)
    study = optuna.load_study(study_name=spec.name, storage=_storage(spec, Path(runs)))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(done) < 2 or len({tuple(sorted(t.params.items())) for t in done}) < 2:
        return {}
    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (RuntimeError, ValueError):  # e.g. every completed trial has the same value
        return {}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m omr_core.training.sweep RUNS_DIR NAME", file=sys.stderr)
        return 2
    return run_sweep(Path(argv[0]).resolve(), argv[1])


if __name__ == "__main__":
    sys.exit(main())
