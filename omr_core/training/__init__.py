"""Training: validated arguments, detached launcher, worker callbacks, live readers, GPU sampling, alerts.

What the CLI and the dashboard use is exported here and imported on first use (the heavy modules load
only when a name of theirs is asked for)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omr_core.lazy import lazy_getattr

if TYPE_CHECKING:
    from omr_core.training.alerts import Alert, evaluate
    from omr_core.training.demo import (
        BUDGET_MIN,
        CORE_PRESET,
        MIN_INSTANCES,
        TARGET_MAP50,
        finished_demo_runs,
        load_demo_score,
        run_demo,
        score_demo,
    )
    from omr_core.training.devices import parse_device
    from omr_core.training.gpu import GpuProbe, probe
    from omr_core.training.launcher import STOP_MODES, kill, launch, resume, stop, stop_consequence, unique_name
    from omr_core.training.layouts import default_metric
    from omr_core.training.optimizer import OptimizerPlan, plan_optimizer
    from omr_core.training.runs import (
        RunSnapshot,
        RunSummary,
        RunView,
        args_that_differ,
        best_and_final,
        delete_run,
        discover_runs,
        link_folder,
        linked_folders,
        list_runs,
        run_args,
        run_name,
        unlink_folder,
    )
    from omr_core.training.spec import (
        PRESETS,
        RESUME_ALLOWED,
        LabelStats,
        PresetChoice,
        assigner_forecast,
        build_spec,
        default_preset,
        label_stats,
        normalize_device,
        parse_extra,
        ultralytics_defaults,
    )
    from omr_core.training.sweep_view import list_views
    from omr_core.training.tail import downsample, ema_smooth

#: Exported name -> the module of this package that defines it.
_EXPORTS: dict[str, str] = {
    "Alert": "alerts",
    "BUDGET_MIN": "demo",
    "CORE_PRESET": "demo",
    "GpuProbe": "gpu",
    "LabelStats": "spec",
    "MIN_INSTANCES": "demo",
    "OptimizerPlan": "optimizer",
    "PRESETS": "spec",
    "PresetChoice": "spec",
    "RESUME_ALLOWED": "spec",
    "RunSnapshot": "runs",
    "RunSummary": "runs",
    "RunView": "runs",
    "STOP_MODES": "launcher",
    "TARGET_MAP50": "demo",
    "args_that_differ": "runs",
    "assigner_forecast": "spec",
    "best_and_final": "runs",
    "build_spec": "spec",
    "default_metric": "layouts",
    "default_preset": "spec",
    "delete_run": "runs",
    "discover_runs": "runs",
    "downsample": "tail",
    "ema_smooth": "tail",
    "evaluate": "alerts",
    "finished_demo_runs": "demo",
    "kill": "launcher",
    "label_stats": "spec",
    "launch": "launcher",
    "link_folder": "runs",
    "linked_folders": "runs",
    "list_runs": "runs",
    "list_views": "sweep_view",
    "load_demo_score": "demo",
    "normalize_device": "spec",
    "parse_device": "devices",
    "parse_extra": "spec",
    "plan_optimizer": "optimizer",
    "probe": "gpu",
    "resume": "launcher",
    "run_args": "runs",
    "run_demo": "demo",
    "run_name": "runs",
    "score_demo": "demo",
    "stop": "launcher",
    "stop_consequence": "launcher",
    "ultralytics_defaults": "spec",
    "unique_name": "launcher",
    "unlink_folder": "runs",
}
__all__ = [
    "Alert",
    "BUDGET_MIN",
    "CORE_PRESET",
    "GpuProbe",
    "LabelStats",
    "MIN_INSTANCES",
    "OptimizerPlan",
    "PRESETS",
    "PresetChoice",
    "RESUME_ALLOWED",
    "RunSnapshot",
    "RunSummary",
    "RunView",
    "STOP_MODES",
    "TARGET_MAP50",
    "args_that_differ",
    "assigner_forecast",
    "best_and_final",
    "build_spec",
    "default_metric",
    "default_preset",
    "delete_run",
    "discover_runs",
    "downsample",
    "ema_smooth",
    "evaluate",
    "finished_demo_runs",
    "kill",
    "label_stats",
    "launch",
    "link_folder",
    "linked_folders",
    "list_runs",
    "list_views",
    "load_demo_score",
    "normalize_device",
    "parse_device",
    "parse_extra",
    "plan_optimizer",
    "probe",
    "resume",
    "run_args",
    "run_demo",
    "run_name",
    "score_demo",
    "stop",
    "stop_consequence",
    "ultralytics_defaults",
    "unique_name",
    "unlink_folder",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
