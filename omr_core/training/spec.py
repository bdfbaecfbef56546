"""Training specifications: Ultralytics train arguments validated against Ultralytics' own config, and presets."""

from __future__ import annotations

import difflib
import functools
import importlib.util
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omr_core import recipe
from omr_core.errors import OmrError

#: Arguments the run folder decides (where Ultralytics writes, whether it resumes): never set by hand.
RUN_OWNED = frozenset({"project", "name", "exist_ok", "save_dir", "resume", "mode"})

#: Our defaults where Ultralytics' would surprise a person on an offline machine: plots need a font download.
OUR_DEFAULTS: dict[str, Any] = {"plots": False}

#: Arguments Ultralytics lets a resumed run change; anything else (epochs!) comes from the checkpoint.
RESUME_ALLOWED = frozenset(
    {"imgsz", "batch", "device", "close_mosaic", "save_period", "workers", "cache", "patience", "time", "freeze",
     "val", "plots"}
)

_DEVICE_RE = re.compile(r"^(cpu|mps|-1|\d+(,\d+)*|cuda:\d+(,\d+)*)$")


class SpecError(OmrError, ValueError):
    """A training argument Ultralytics would reject (unknown key, wrong type, out of range)."""


@dataclass(frozen=True)
class Preset:
    """A named set of train arguments.

    Attributes:
        name: Key used by `--preset` and the form.
        description: What it is for, in one sentence.
        args: The arguments it sets.
    """

    name: str
    description: str
    args: Mapping[str, Any]


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("ultralytics", "Ultralytics' own defaults, nothing changed.", {}),
        Preset(
            "stable",
            "For runs that went nan or diverged: plain SGD at a low rate, long warmup, no mosaic, full precision.",
            {"optimizer": "SGD", "lr0": 0.001, "warmup_epochs": 5, "mosaic": 0.0, "amp": False},
        ),
        Preset(
            "sheet-music",
            "No flips or rotations (a mirrored clef or accidental is another symbol), no colour jitter.",
            recipe.SHEET_MUSIC_ARGS,
        ),
        Preset(
            "smoke-test",
            "A couple of quick CPU epochs to check that data and model load.",
            {"epochs": 2, "imgsz": 320, "batch": 4, "workers": 0, "device": "cpu"},
        ),
        Preset(  # the CPU recipe, see omr_core/recipe.py and docs/recipe.md
            recipe.CPU_PRESET,
            f"Learns in a few CPU epochs on {recipe.TILE} px tiles at imgsz {recipe.IMGSZ}: SGD lr0 0.02, one optimizer "
            "step per batch, short warmup, sheet-music augmentation (pair with the 'reading core' convert preset).",
            recipe.CPU_SMALL_ARGS,
        ),
    )
}


#: The preset for data whose classes are DeepScoresV2's: sheet music must not be mirrored or colour-jittered.
SHEET_MUSIC_PRESET = "sheet-music"
#: Where nothing says the data is sheet music.
PLAIN_PRESET = "ultralytics"


@dataclass(frozen=True)
class PresetChoice:
    """The preset a launch gets when the person names none, and why (shown next to it)."""

    name: str
    reason: str


def default_preset(data_yaml: str | os.PathLike[str] | None) -> PresetChoice:
    """"sheet-music" when most class names of ``data_yaml`` are DeepScoresV2 names, else "ultralytics".

    Ultralytics' defaults train with fliplr 0.5 and colour jitter: a mirrored clef is another symbol.
    """
    from omr_core.classes import class_table
    from omr_core.datasets.yolo import read_names
    from omr_core.errors import UnknownClassError

    if not data_yaml:
        return PresetChoice(PLAIN_PRESET, "no data.yaml chosen yet")
    try:
        names = read_names(data_yaml)
    except (OmrError, OSError):
        return PresetChoice(PLAIN_PRESET, f"the class names of {data_yaml} could not be read")
    table = class_table()
    known = 0
    for n in names:
        try:
            table.canonical_name(str(n))
        except UnknownClassError:
            continue
        known += 1
    if names and known * 2 > len(names):
        return PresetChoice(SHEET_MUSIC_PRESET, f"{known} of {len(names)} class names are DeepScoresV2's (sheet music: "
                                                "no flips, rotations or colour jitter)")
    return PresetChoice(PLAIN_PRESET, f"{known} of {len(names)} class names are DeepScoresV2's: not sheet music")


@functools.lru_cache(maxsize=1)
def ultralytics_defaults() -> dict[str, Any]:
    """Ultralytics' default configuration (``DEFAULT_CFG_DICT``) read from its default.yaml.

    Read from the file so that listing valid keys does not import torch; falls back to importing
    ``ultralytics.cfg`` when the file cannot be found.
    """
    import yaml

    spec = importlib.util.find_spec("ultralytics")
    if spec and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            f = Path(loc) / "cfg" / "default.yaml"
            if f.is_file():
                return dict(yaml.safe_load(f.read_text(encoding="utf-8")) or {})
    try:
        from ultralytics.cfg import DEFAULT_CFG_DICT
    except ImportError as exc:  # pragma: no cover - ultralytics is a dependency
        raise SpecError("ultralytics is not installed: pip install ultralytics") from exc
    return dict(DEFAULT_CFG_DICT)


def valid_keys() -> frozenset[str]:
    """Every train argument name Ultralytics accepts, less the ones the run folder decides."""
    return frozenset(ultralytics_defaults()) - RUN_OWNED


def parse_value(text: str) -> Any:
    """Turn ``"0.01"``, ``"False"``, ``"none"``, ``"[0, 1]"`` or ``"SGD"`` into a Python value, like Ultralytics' CLI."""
    import yaml

    t = text.strip()
    low = t.lower()
    if low == "none" or low == "null":
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        v = yaml.safe_load(t)
    except Exception:  # YAMLError, and ValueError for "2024-02-30" and the like: keep the text, Ultralytics checks it
        return t
    return v if isinstance(v, (int, float, list, bool)) or v is None else t


def parse_extra(pairs: Iterable[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings (CLI extras, one per line in the form); raises SpecError on a bad one."""
    out: dict[str, Any] = {}
    for raw in pairs:
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        if "=" not in s:
            raise SpecError(f"{s!r} is not key=value (e.g. lr0=0.001)")
        k, v = s.split("=", 1)
        k = k.strip()
        if not v.strip():
            raise SpecError(f"{k}= has no value")
        out[k] = parse_value(v)
    return out


def normalize_device(device: Any) -> str:
    """``"cpu"``, ``"0"``, ``"0,1"``, ``[0, 1]``, ``0`` → Ultralytics' device string; raises SpecError otherwise."""
    if device is None or device == "":
        return ""
    if isinstance(device, (list, tuple)):
        device = ",".join(str(int(d)) for d in device)
    d = str(device).strip().lower().replace(" ", "")
    if not _DEVICE_RE.match(d):
        raise SpecError(f"device {device!r} is not valid: use cpu, 0, 0,1 (multi-GPU DDP), mps or cuda:0")
    return d


def check_keys(args: Mapping[str, Any]) -> None:
    """Reject unknown keys and run-owned keys, naming close valid ones."""
    keys = valid_keys()
    problems = []
    for k in args:
        if k in RUN_OWNED:
            problems.append(f"{k!r} is decided by the run folder (use the run name and runs folder instead)")
        elif k not in keys:
            close = difflib.get_close_matches(k, sorted(keys), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            problems.append(f"{k!r} is not an Ultralytics train argument{hint}")
    if problems:
        raise SpecError("; ".join(problems))


def deep_check(args: Mapping[str, Any]) -> None:
    """Ultralytics' own type and range checks (``ultralytics.cfg.check_cfg``); imports ultralytics (seconds)."""
    import contextlib
    import sys

    # Importing ultralytics may print a settings notice on stdout, where `omr train` prints only the run folder.
    with contextlib.redirect_stdout(sys.stderr):
        from ultralytics.cfg import check_cfg

    cfg = {**ultralytics_defaults(), **args}
    try:
        check_cfg(cfg, hard=True)
    except (TypeError, ValueError, SyntaxError) as exc:
        raise SpecError(f"Ultralytics rejects these arguments: {exc}") from exc


def validate_args(args: Mapping[str, Any], deep: bool = True) -> dict[str, Any]:
    """Validate train arguments (without model/data); returns a normalised copy.

    Args:
        args: Ultralytics train arguments.
        deep: Also run Ultralytics' type/range checks (imports ultralytics).

    Raises:
        SpecError: Unknown or run-owned key, invalid device, non-positive epochs, or a value Ultralytics rejects.
    """
    out = dict(args)
    check_keys(out)
    if "device" in out:
        out["device"] = normalize_device(out["device"])
    for k in ("epochs", "imgsz"):
        if k in out and (not isinstance(out[k], int) or isinstance(out[k], bool) or out[k] <= 0):
            raise SpecError(f"{k} must be a positive whole number, got {out[k]!r}")
    if "batch" in out:
        b = out["batch"]
        if isinstance(b, bool) or not isinstance(b, (int, float)) or b == 0 or (isinstance(b, float) and not 0 < b < 1):
            raise SpecError(f"batch must be a whole number (-1 for AutoBatch) or a fraction in (0, 1), got {b!r}")
    if deep:
        deep_check(out)
    return out


def check_name(name: str) -> str:
    """A run name: letters, digits, ``.``, ``_``, ``-``; starts with a letter or digit; at most 100 characters."""
    from omr_core.security import sanitize_run_name

    try:
        return sanitize_run_name(name)
    except OmrError as exc:
        raise SpecError(str(exc)) from None


def _resolve_input(value: str, what: str, must_exist: bool) -> str:
    p = Path(value).expanduser()
    if p.exists():
        return str(p.resolve())
    if must_exist or os.sep in value:
        raise SpecError(f"{what} {value!r} not found (relative paths are taken from {Path.cwd()})")
    return value  # a name Ultralytics resolves itself (yolov8n.yaml, coco8.yaml)


@dataclass(frozen=True)
class TrainSpec:
    """What to train, validated.

    Attributes:
        name: Run name (the folder under the runs folder).
        model: Model YAML or checkpoint (absolute path when it is a local file).
        data: data.yaml (absolute path when local).
        args: Every other train argument, validated.
        preset: Name of the preset applied first, if any.
    """

    name: str
    model: str
    data: str
    args: Mapping[str, Any] = field(default_factory=dict)
    preset: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "data": self.data, "args": dict(self.args), "preset": self.preset}


def build_spec(
    name: str,
    model: str,
    data: str,
    *,
    preset: str | None = None,
    args: Mapping[str, Any] | None = None,
    extra: Sequence[str] | Mapping[str, Any] = (),
    deep: bool = True,
) -> TrainSpec:
    """Merge preset < explicit arguments (None values skipped) < extra ``key=value`` pairs, and validate.

    Examples:
        >>> s = build_spec("exp1", "yolov8n.yaml", "coco8.yaml", preset="stable", args={"epochs": 3}, deep=False)
        >>> s.args["optimizer"], s.args["epochs"], s.args["plots"]
        ('SGD', 3, False)
    """
    name = check_name(name)
    if preset and preset not in PRESETS:
        close = difflib.get_close_matches(preset, list(PRESETS), n=2)
        raise SpecError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}" + (f" (did you mean {close[0]}?)" if close else ""))
    merged: dict[str, Any] = dict(OUR_DEFAULTS)
    if preset:
        merged.update(PRESETS[preset].args)
    merged.update({k: v for k, v in (args or {}).items() if v is not None})
    merged.update(extra if isinstance(extra, Mapping) else parse_extra(extra))
    for k in ("model", "data"):
        if k in merged:
            raise SpecError(f"give {k} as its own argument, not among the extra arguments")
    if not model:
        raise SpecError("no model given (e.g. yolov8n.yaml to train from scratch, or a .pt checkpoint)")
    if not data:
        raise SpecError("no data given: the path to a YOLO data.yaml")
    return TrainSpec(
        name=name,
        model=_resolve_input(model, "model", must_exist=False),
        data=_resolve_input(data, "data", must_exist=not data.endswith(".yaml") or os.sep in data),
        args=validate_args(merged, deep=deep),
        preset=preset,
    )


# -- pre-launch assigner memory forecast -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelStats:
    """Label counts of a dataset's training split.

    Attributes:
        max_labels: Most labels on one training image.
        nc: Number of classes (from data.yaml names/nc).
        images: Training images found.
        label_files: Label files found.
    """

    max_labels: int
    nc: int
    images: int
    label_files: int


def label_stats(data_yaml: str | os.PathLike[str]) -> LabelStats:
    """Count labels per training image of a YOLO data.yaml (non-empty lines of each label file).

    Images and their label files are paired the way Ultralytics does (`omr_core.datasets.yolo`).

    Raises:
        SpecError: The data.yaml cannot be read or names no training images.
    """
    from omr_core.datasets.yolo import label_path_for, read_data_yaml
    from omr_core.errors import DataFormatError

    try:
        ds = read_data_yaml(data_yaml)
    except DataFormatError as exc:
        raise SpecError(str(exc)) from exc
    images = ds.splits.get("train", ())
    if not images:
        raise SpecError(f"{ds.yaml_path}: no training images found under 'train'")
    most = files = 0
    for img in images:
        try:
            data = label_path_for(img).read_bytes()
        except OSError:
            continue  # an image without labels is a background image
        files += 1
        most = max(most, sum(1 for line in data.splitlines() if line.strip()))
    return LabelStats(max_labels=most, nc=len(ds.names), images=len(images), label_files=files)


def assigner_forecast(data_yaml: str | os.PathLike[str], imgsz: int, batch: int, vram_bytes: int = 0) -> Any:
    """The TaskAlignedAssigner memory forecast (`omr_core.audit.forecast.Forecast`) for this data/imgsz/batch.

    Returns None for AutoBatch (``batch`` < 1), where Ultralytics sizes the batch itself.
    """
    from omr_core.audit.forecast import forecast

    if batch < 1:
        return None
    st = label_stats(data_yaml)
    return forecast(int(batch), int(imgsz), st.max_labels, st.nc, int(vram_bytes))
