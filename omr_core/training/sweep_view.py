"""One view of a search, whoever ran it: our sweeps (``runs/sweeps/NAME``) and Ultralytics' own tuner folders
(``tune_results.csv``/``.ndjson``), as trials with arguments, an objective, the best one, its diff against the base
and which arguments mattered (Optuna's importance)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omr_core.training import sweep, tune_results
from omr_core.training.runs import linked_folders, run_name

#: Keys of Ultralytics tuner folders start with this (``tune:detect/tune``); a sweep name never has a colon.
TUNE_PREFIX = "tune:"


@dataclass(frozen=True)
class SweepView:
    """A search as Compare runs and `omr sweep status` show it.

    Attributes:
        key: What `omr sweep status` takes: a sweep's name, or ``tune:PATH`` for an Ultralytics tuner folder.
        kind: ``sweep`` (ours) or ``ultralytics`` (``model.tune()``).
        folder: Where it lives.
        caption: One line: how it searched, the objective, how many trials ended.
        objective: What was maximised.
        params: The searched arguments, in order.
        trials: Each ended trial: number, run, params, state, value, epochs, reason.
        base: The base value of each searched argument (None for one left at Ultralytics' default); None when the
            base is not known.
        launchable: Its best configuration can be queued from here (our sweeps: model and data are known).
    """

    key: str
    kind: str
    folder: Path
    caption: str
    objective: str
    params: tuple[str, ...]
    trials: tuple[dict[str, Any], ...]
    base: dict[str, Any] | None
    launchable: bool = False
    _importance: dict[str, float] | None = field(default=None, repr=False)

    @property
    def best(self) -> dict[str, Any] | None:
        """The completed trial with the highest objective (the first of equals), or None."""
        done = [t for t in self.trials if t["state"] == "complete" and t.get("value") is not None]
        return max(done, key=lambda t: (t["value"], -t["number"])) if done else None

    def diff(self) -> list[tuple[str, Any, Any]]:
        """(argument, base value, best trial's value) per searched argument; [] without a best or a known base."""
        b = self.best
        if b is None or self.base is None:
            return []
        return [(k, self.base.get(k), v) for k, v in b["params"].items()]

    def importance(self) -> dict[str, float]:
        """Which arguments mattered, from the completed trials (Optuna's importance); {} when it cannot say."""
        if self._importance is not None:
            return self._importance
        return param_importance([(t["params"], t["value"]) for t in self.trials
                                 if t["state"] == "complete" and t.get("value") is not None])


def param_importance(trials: Sequence[tuple[dict[str, Any], float]]) -> dict[str, float]:
    """Optuna's importance (its default evaluator, PED-ANOVA) of each argument over ``(arguments, objective)``
    pairs from any table.

    Numbers become a float range spanning the values seen, anything else a list. {} when Optuna cannot compute it:
    fewer than two trials, all with the same arguments, or all with the same objective.
    """
    import optuna
    from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution

    rows = [(p, float(v)) for p, v in trials if v is not None and math.isfinite(float(v))]
    if len(rows) < 2 or len({tuple(sorted(map(str, p.items()))) for p, _ in rows}) < 2 or len({v for _, v in rows}) < 2:
        return {}
    names = sorted({k for p, _ in rows for k in p})
    dists: dict[str, BaseDistribution] = {}
    for k in names:
        vals = [p[k] for p, _ in rows if k in p]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            dists[k] = FloatDistribution(float(min(vals)), float(max(vals)))
        else:
            dists[k] = CategoricalDistribution(sorted({str(v) for v in vals}))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    for p, v in rows:
        params = {k: (float(p[k]) if isinstance(dists[k], FloatDistribution) else str(p[k])) for k in p}
        study.add_trial(optuna.trial.create_trial(params=params, distributions={k: dists[k] for k in p}, value=v))
    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}


# -- our sweeps ---------------------------------------------------------------------------------------------------


def _sweep_view(runs: Path, name: str) -> SweepView:
    spec, ts = sweep.load(runs, name), sweep.trials(runs, name)
    params = tuple(p.name for p in spec.space)
    caption = (f"{spec.sampler}, objective {sweep.objective_label(spec)}, {len(ts)} of {spec.trials} trials ended, "
               f"{spec.epochs} epochs each")
    from omr_core.training.spec import PRESETS

    base = {**(PRESETS[spec.preset].args if spec.preset in PRESETS else {}), **spec.args}  # what each trial starts from
    return SweepView(name, "sweep", sweep.sweep_dir(runs, name), caption, sweep.objective_label(spec), params,
                     tuple(ts), {k: base.get(k) for k in params}, launchable=True,
                     _importance=sweep.importance(runs, name))


# -- Ultralytics' tuner -------------------------------------------------------------------------------------------


def _tune_view(runs: Path, folder: Path, key: str) -> SweepView:
    tr = tune_results.read_tune(folder)
    trials = []
    for it in tr.iterations:
        state = "failed" if it.failed or it.fitness is None else "complete"
        trials.append({"number": it.number, "run": f"iteration {it.number}", "params": it.params, "state": state,
                       "value": it.fitness, "epochs": None,
                       "reason": "no training metrics (the iteration failed)" if state == "failed" else ""})
    caption = (f"Ultralytics' tuner (model.tune), {len(trials)} iterations in {tr.source.name}, objective "
               f"{tune_results.OBJECTIVE}; base = iteration 1 (the arguments it started from)")
    if tr.best_saved:
        caption += "; best_hyperparameters.yaml: " + ", ".join(f"{k}={v}" for k, v in tr.best_saved.items())
    return SweepView(key, "ultralytics", folder, caption, tune_results.OBJECTIVE, tr.params, tuple(trials), tr.base)


def _tune_roots(runs: Path) -> list[Path]:
    return [runs, *linked_folders(runs)]


def tune_key(runs: str | os.PathLike[str], folder: Path) -> str:
    return TUNE_PREFIX + run_name(runs, folder)


def list_views(runs: str | os.PathLike[str]) -> list[str]:
    """Keys of every search in a runs folder: our sweeps (newest first), then Ultralytics tuner folders found in it
    and in its linked folders."""
    runs = Path(runs)
    tunes = [d for d in tune_results.find_tune_dirs(_tune_roots(runs)) if sweep.SWEEPS not in d.parts]
    return [*sweep.list_sweeps(runs), *(tune_key(runs, d) for d in tunes)]


def load_view(runs: str | os.PathLike[str], key: str) -> SweepView:
    """The view of ``key``: a sweep name, ``tune:PATH`` (as `list_views` names it), or a tuner folder's path.

    Raises:
        SweepError: No such sweep or tuner folder.
        TuneResultsError: A tuner folder whose results are not what Ultralytics writes.
    """
    runs = Path(runs)
    if key.startswith(TUNE_PREFIX):
        for d in tune_results.find_tune_dirs(_tune_roots(runs)):
            if tune_key(runs, d) == key:
                return _tune_view(runs, d, key)
        rel = Path(key[len(TUNE_PREFIX):])
        cand = rel if rel.is_absolute() else runs / rel
        if tune_results.is_tune_dir(cand):
            return _tune_view(runs, cand, key)
        raise sweep.SweepError(f"no Ultralytics tuner folder {key!r} in {runs} or its linked folders "
                               f"(found: {', '.join(k for k in list_views(runs) if k.startswith(TUNE_PREFIX)) or 'none'})")
    p = Path(key).expanduser()
    if "/" in key and tune_results.is_tune_dir(p):
        return _tune_view(runs, p.resolve(), TUNE_PREFIX + str(p.resolve()))
    return _sweep_view(runs, key)
