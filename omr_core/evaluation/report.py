"""Exports of an evaluation: per-class and failure tables as CSV/JSON, and a one-page self-contained HTML report."""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from omr_core.atomic import write_atomic
from omr_core.evaluation.match import FAILURE_KINDS, KIND_LABELS, confusion_counts, failure_counts
from omr_core.evaluation.status import NO_LABELS, statuses

if TYPE_CHECKING:
    from omr_core.evaluation.evaluate import Evaluation


def per_class_export(ev: Evaluation, conf: float | None = None) -> pd.DataFrame:
    """The per-class table, worst AP50-95 first, joined with failure counts at ``conf``; ``status`` says what is wrong.

    See `omr_core.evaluation.status` for the status rules.
    """
    per = ev.per_class().copy()
    cases = ev.cases(conf)
    counts = failure_counts(cases, ev.names)
    for k in ("tp", "fn", "fp", "fp_class", "fp_loc", "fp_dup", "fp_bg", "fn_below_threshold"):
        per[k] = counts[k].to_numpy()
    per["status"] = statuses(per, cases, ev.names)
    return sort_worst_first(per)


def sort_worst_first(per: pd.DataFrame) -> pd.DataFrame:
    """Labelled classes by AP50-95 ascending (ties by name), then the classes with no labels."""
    lab = per["labelled"].astype(bool)
    a = per[lab].sort_values(["ap50_95", "ap50", "class"], kind="stable")
    b = per[~lab].sort_values("class", kind="stable")
    return pd.concat([a, b], ignore_index=True)


def failures_export(ev: Evaluation, conf: float | None = None, kinds: Sequence[str] = FAILURE_KINDS) -> pd.DataFrame:
    """Failure cases with names: image, kind, class, true/predicted class, confidence, IoU and both boxes."""
    cases = ev.cases(conf)
    cases = cases[cases["kind"].astype(str).isin(list(kinds)).to_numpy()]
    return readable_cases(ev, cases)


def readable_cases(ev: Evaluation, cases: pd.DataFrame) -> pd.DataFrame:
    """A cases table with image and class names instead of indices."""
    images = ev.images()
    label = np.array([*ev.names, ""], dtype=object)  # index -1 (background) -> ""
    out = pd.DataFrame(
        {
            "image": images["image"].to_numpy()[cases["image_id"].to_numpy()] if len(cases) else [],
            "kind": cases["kind"].astype(str).to_numpy(),
            "kind_label": [KIND_LABELS[k] for k in cases["kind"].astype(str)],
            "class": label[cases["cls"].to_numpy()],
            "true_class": label[cases["true_cls"].to_numpy()],
            "pred_class": label[cases["pred_cls"].to_numpy()],
        }
    )
    for c in ("conf", "iou", "below_conf", "gx0", "gy0", "gx1", "gy1", "px0", "py0", "px1", "py1"):
        out[c] = cases[c].to_numpy().round(4) if c in ("conf", "iou", "below_conf") else cases[c].to_numpy().round(1)
    out.index = cases.index
    return out


def confusion_export(ev: Evaluation, conf: float | None = None) -> pd.DataFrame:
    """Confusion counts as a table: rows predicted class, columns true class, ``background`` last."""
    m = confusion_counts(ev.cases(conf), ev.nc)
    label = [*ev.names, "background"]
    return pd.DataFrame(m, index=pd.Index(label, name="predicted \\ true"), columns=label)


def _records_json(df: pd.DataFrame) -> str:
    return df.to_json(orient="records", indent=1, double_precision=6)


def export_evaluation(ev: Evaluation, out: str | os.PathLike[str], conf: float | None = None, report: bool = True) -> dict[str, Path]:
    """Write per_class.{csv,json}, failures.{csv,json}, confusion.csv, confidence.csv and report.html to ``out``.

    Returns:
        The files written, by short name.
    """
    from omr_core.evaluation.confidence import confidence_table

    conf = ev.conf if conf is None else conf
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    per = per_class_export(ev, conf)
    fails = failures_export(ev, conf)
    files: dict[str, Path] = {}
    files["per_class_csv"] = write_atomic(folder / "per_class.csv", lambda p: per.to_csv(p, index=False))
    files["per_class_json"] = write_atomic(folder / "per_class.json", lambda p: p.write_text(_records_json(per), encoding="utf-8"))
    files["failures_csv"] = write_atomic(folder / "failures.csv", lambda p: fails.to_csv(p, index=False))
    files["failures_json"] = write_atomic(folder / "failures.json", lambda p: p.write_text(_records_json(fails), encoding="utf-8"))
    files["confusion_csv"] = write_atomic(folder / "confusion.csv", lambda p: confusion_export(ev, conf).to_csv(p))
    conf_table = confidence_table(ev, conf)
    files["confidence_csv"] = write_atomic(folder / "confidence.csv", lambda p: conf_table.to_csv(p, index=False))
    if report:
        text = report_html(ev, conf)
        files["report_html"] = write_atomic(folder / "report.html", lambda p: p.write_text(text, encoding="utf-8"))
    return files


# -- the one-page HTML report --------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1200px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
th{background:#f4f4f4}td:nth-child(2),td:nth-child(3){text-align:left}.nolabels{color:#999;font-style:italic}
.meta td{text-align:left}.gallery{display:flex;flex-wrap:wrap;gap:8px}.gallery figure{margin:0;font-size:11px;width:200px}
.gallery img{border:1px solid #ccc;max-width:200px}.note{color:#555;font-size:0.9em}
"""


def _fmt(v: object, digits: int = 3) -> str:
    if isinstance(v, (float, np.floating)):
        return NO_LABELS if np.isnan(v) else f"{v:.{digits}f}"
    return html.escape(str(v))


def _table(df: pd.DataFrame, columns: Sequence[str], headers: Sequence[str]) -> str:
    rows = []
    for _, r in df.iterrows():
        cls = ' class="nolabels"' if "labelled" in df.columns and not bool(r["labelled"]) else ""
        cells = "".join(f"<td>{_fmt(r[c])}</td>" for c in columns)
        rows.append(f"<tr{cls}>{cells}</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _gallery(ev: Evaluation, classes: Sequence[int], conf: float, per_class: int = 4) -> str:
    from omr_core.errors import OmrError
    from omr_core.evaluation.crops import case_boxes, crop_case
    from omr_core.raster import encode_png

    cases = ev.cases(conf)
    images = ev.images()
    kind = cases["kind"].astype(str)
    parts = []
    for ci in classes:
        sel = cases[(cases["cls"] == ci).to_numpy() & kind.isin(list(FAILURE_KINDS)).to_numpy()]
        if not len(sel):
            continue
        # Confident false detections and misses first: they are the surprising ones.
        sel = sel.assign(_k=sel["conf"].fillna(sel["below_conf"]).fillna(0)).sort_values("_k", ascending=False)
        figs = []
        for _, row in sel.head(per_class).iterrows():
            g, p = case_boxes(row)
            try:
                png = encode_png(crop_case(images["path"].iloc[int(row["image_id"])], g, p, size=180))
            except OmrError:
                continue
            true_name = ev.names[int(row["true_cls"])] if int(row["true_cls"]) >= 0 else "background"
            conf_txt = "" if np.isnan(row["conf"]) else f" · conf {row['conf']:.2f}"
            cap = f"{KIND_LABELS[str(row['kind'])]} · true {true_name}{conf_txt}<br>{html.escape(str(images['image'].iloc[int(row['image_id'])]))}"
            figs.append(f'<figure><img src="data:image/png;base64,{base64.b64encode(png).decode()}"><figcaption>{cap}</figcaption></figure>')
        if figs:
            parts.append(f"<h3>{html.escape(ev.names[ci])}</h3><div class='gallery'>{''.join(figs)}</div>")
    return "".join(parts)


def report_html(ev: Evaluation, conf: float | None = None, worst: int = 6) -> str:
    """A one-page HTML report of ``ev`` with plotly.js embedded (opens offline, can be attached to a discussion)."""
    from omr_core.evaluation.confidence import confidence_table
    from omr_core.evaluation.figures import confusion_figure, failures_figure, figure_html, per_class_figure

    conf = ev.conf if conf is None else conf
    per = per_class_export(ev, conf)
    counts = failure_counts(ev.cases(conf), ev.names)
    cm = confusion_counts(ev.cases(conf), ev.nc)
    groups = ev.per_class()["group"].tolist()
    ct = confidence_table(ev, conf).sort_values("dropped", ascending=False)
    s = ev.summary
    meta = [
        ("model", str(ev.model)),
        ("data", f"{ev.data} · split {ev.split}"),
        ("images / objects", f"{ev.n_images} / {ev.n_instances}"),
        ("image size · batch", f"{ev.imgsz} · {ev.batch}"),
        ("detection threshold (failures)", f"{conf:g} (mAP uses Ultralytics' validation at conf {ev.val_conf:g})"),
        ("evaluated", f"{ev.created} in {ev.seconds:.1f} s with Ultralytics {ev.ultralytics}"),
        (
            "overall (Ultralytics)",
            f"P {s.get('precision', float('nan')):.3f} · R {s.get('recall', float('nan')):.3f} · "
            f"mAP50 {s.get('map50', float('nan')):.3f} · mAP50-95 {s.get('map50_95', float('nan')):.3f}",
        ),
    ]
    if ev.warning:
        meta.append(("warning", ev.warning))
    no_labels = per[~per["labelled"].astype(bool)]["class"].tolist()
    labelled = per[per["labelled"].astype(bool)]
    worst_idx = [int(i) for i in labelled["class_index"].head(worst)]
    figs = [
        per_class_figure(per),
        failures_figure(counts),
        confusion_figure(cm, ev.names, groups, order="errors", hide_empty=True, show_correct=False),
    ]
    fig_html = [figure_html(f, include_js=(k == 0)) for k, f in enumerate(figs)]
    cols = ["class", "group", "instances", "precision", "recall", "f1", "ap50", "ap50_95", "fn", "fp", "status"]
    heads = ["#", "class", "group", "instances", "P", "R", "F1", "AP50", "AP50-95", "FN", "FP", "status"]
    table = _table(per.assign(rank=np.arange(1, len(per) + 1)), ["rank", *cols], heads)
    ct_cols = ["class", "instances", "best_threshold", "best_f1", "precision", "recall", "tp", "dropped", "dropped_share"]
    ct_heads = ["class", "instances", "F1-best threshold", "best F1", f"P@{conf:g}", f"R@{conf:g}", "TP kept", "dropped", "share dropped"]
    body = f"""
<h1>Per-class evaluation · {html.escape(ev.label)}</h1>
<table class="meta">{''.join(f'<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>' for k, v in meta)}</table>
<p class="note">Per-class P, R, AP come from Ultralytics' validator (P and R at the confidence that maximises the
mean F1). Classes without labels in this split are marked <i>{NO_LABELS}</i>: Ultralytics fills them with the mean,
which is not a measurement. {len(no_labels)} class(es) have no labels{': ' + html.escape(', '.join(no_labels[:40])) if no_labels else ''}.
FN/FP counts are at threshold {conf:g} with IoU 0.5.</p>
<h2>Per-class metrics, worst first</h2>{fig_html[0]}{table}
<h2>Misses and false detections by kind</h2>{fig_html[1]}
<h2>Confusion matrix (errors only, classes with cases)</h2>{fig_html[2]}
<h2>Confidence: what threshold {conf:g} throws away</h2>
{_table(ct.head(30), ct_cols, ct_heads)}
<h2>Examples from the {len(worst_idx)} worst classes</h2>
<p class="note">Green: ground truth. Red: prediction.</p>{_gallery(ev, worst_idx, conf)}
"""
    title = html.escape(f"Evaluation {ev.label}")
    data = html.escape(json.dumps({"key": ev.key, "split": ev.split, "conf": conf}))
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta name="omr-evaluation" content="{data}"><style>{_CSS}</style></head><body>{body}</body></html>\n'
    )
