"""Plotly figures of an evaluation (confusion matrix, per-class bars, confidence curves), shared by page and report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from omr_core.classes import GROUPS
from omr_core.evaluation.match import KIND_LABELS

if TYPE_CHECKING:
    import plotly.graph_objects as go

ORDERS: tuple[str, ...] = ("group", "index", "errors", "name")
KIND_COLORS = {
    "fn": "#d62728",
    "fp_class": "#9467bd",
    "fp_loc": "#ff7f0e",
    "fp_dup": "#bcbd22",
    "fp_bg": "#7f7f7f",
    "tp": "#2ca02c",
}


def _group_rank(group: str) -> int:
    return GROUPS.index(group) if group in GROUPS else len(GROUPS)


def class_order(counts: np.ndarray, names: Sequence[str], groups: Sequence[str], order: str = "group") -> list[int]:
    """Class indices in display order: by group then name, by index, by errors (most first), or by name."""
    nc = len(names)
    idx = list(range(nc))
    if order == "index":
        return idx
    if order == "name":
        return sorted(idx, key=lambda i: names[i].lower())
    if order == "errors":
        diag = np.diag(counts)[:nc]
        errors = counts[:nc, :].sum(1) + counts[:, :nc].sum(0) - 2 * diag  # off-diagonal in row and column
        return sorted(idx, key=lambda i: (-int(errors[i]), names[i].lower()))
    return sorted(idx, key=lambda i: (_group_rank(groups[i]), names[i].lower()))


def confusion_figure(
    counts: np.ndarray,
    names: Sequence[str],
    groups: Sequence[str],
    *,
    order: str = "group",
    hide_empty: bool = True,
    normalize: bool = False,
    show_correct: bool = True,
    cell: int | None = None,
) -> go.Figure:
    """Confusion matrix (x: true class, y: predicted class, background last) drawn as square markers.

    Square scatter markers instead of a heatmap trace: Streamlit's selection events work on scatter points (not on
    heatmaps), and only non-empty cells are drawn, which keeps 136 classes light. Each point carries
    ``customdata = [pred_index, true_index, count]`` (index ``nc`` is background).

    Args:
        counts: ``[predicted, true]`` counts with background at index ``nc`` (`evaluate_match.confusion_counts`).
        names: Class names by index.
        groups: Class group by index (for ordering and separators).
        order: One of `ORDERS`.
        hide_empty: Drop classes with no case on an axis.
        normalize: Colour by the share of each true class's cases instead of the count.
        show_correct: Draw the diagonal (correct detections).
        cell: Cell size in pixels (default: fitted to the class count).
    """
    import plotly.graph_objects as go

    nc = len(names)
    m = counts.astype(np.float64).copy()
    if not show_correct:
        m[np.arange(nc), np.arange(nc)] = 0
    ordered = class_order(counts, names, groups, order)
    xs = [i for i in ordered if not hide_empty or m[:, i].sum() > 0] + [nc]
    ys = [i for i in ordered if not hide_empty or m[i, :].sum() > 0] + [nc]
    label = [*names, "background"]
    grp = [*groups, "background"]
    cell = cell or int(np.clip(1100 // max(max(len(xs), len(ys)), 1), 10, 36))
    fig = go.Figure(_cells_trace(m, xs, ys, label, grp, normalize, cell))
    font = int(np.clip(cell - 2, 8, 12))
    longest = max((len(label[c]) for c in (*xs, *ys)), default=10)
    left = bottom = 40 + 0.62 * font * longest  # room for the longest tick label
    top, right = 30, 110
    fig.update_layout(
        width=int(left + right + len(xs) * cell),
        height=int(top + bottom + len(ys) * cell),
        margin=dict(l=int(left), r=right, t=top, b=int(bottom)),
        shapes=_group_separators(xs, ys, grp, nc, by_group=order == "group"),
        plot_bgcolor="white",
        clickmode="event+select",
        dragmode="select",
        xaxis={**_class_axis(xs, label, font), "title": "true class", "tickangle": -90},
        yaxis={**_class_axis(ys, label, font), "title": "predicted class", "range": [len(ys) - 0.5, -0.5]},  # first on top
    )
    return fig


def _cells_trace(
    m: np.ndarray, xs: list[int], ys: list[int], label: list[str], grp: list[str], normalize: bool, cell: int
) -> go.Scatter:
    """One square marker per non-empty cell of ``m`` on the ``xs`` x ``ys`` grid (the empty background cell left out)."""
    import plotly.graph_objects as go

    nc = len(label) - 1
    xpos = {c: k for k, c in enumerate(xs)}
    ypos = {c: k for k, c in enumerate(ys)}
    col_tot = m.sum(0)
    pi, ti = np.nonzero(m)
    keep = [(p, t) for p, t in zip(pi.tolist(), ti.tolist()) if p in ypos and t in xpos and not (p == nc and t == nc)]
    cnt = np.array([m[p, t] for p, t in keep])
    share = np.array([m[p, t] / col_tot[t] if col_tot[t] else 0.0 for p, t in keep])
    color = share if normalize else np.log10(cnt + 1) if len(cnt) else cnt
    cmax = 1.0 if normalize else max(1.0, float(color.max()) if len(color) else 1.0)
    ticks = [(v, t) for v, t in ((1, "1"), (10, "10"), (100, "100"), (1000, "1k"), (10000, "10k")) if np.log10(v + 1) <= cmax]
    kind = [
        "correct" if p == t else "missed" if p == nc else "false detection" if t == nc else "wrong class" for p, t in keep
    ]
    return go.Scatter(
        x=[xpos[t] for _, t in keep],
        y=[ypos[p] for p, _ in keep],
        mode="markers",
        marker=dict(
            symbol="square",
            size=max(3, cell - 1),
            color=color,
            colorscale="Viridis" if normalize else "YlOrRd",
            cmin=0,
            cmax=cmax,
            line=dict(width=0),
            # The title beside the bar, not above it: on a short matrix a title on top sat over the tick labels.
            colorbar=dict(
                title=dict(text="share of true class" if normalize else "cases", side="right"),
                tickvals=None if normalize else [np.log10(v + 1) for v, _ in ticks],
                ticktext=None if normalize else [t for _, t in ticks],
                len=1.0,
                lenmode="fraction",
            ),
        ),
        customdata=[[int(p), int(t), int(m[p, t])] for p, t in keep],  # a plain list: typed arrays come back as objects
        text=[
            f"true: {label[t]} ({grp[t]})<br>predicted: {label[p]} ({grp[p]})<br>{kind[k]}: {int(cnt[k])}"
            f" ({share[k]:.0%} of true {label[t]})"
            for k, (p, t) in enumerate(keep)
        ],
        hovertemplate="%{text}<extra></extra>",
    )


def _group_separators(xs: list[int], ys: list[int], grp: list[str], nc: int, *, by_group: bool) -> list[dict[str, Any]]:
    """Lines between class groups (when ordered by group) and before background: they help reading 136 classes."""
    shapes = []
    for axis, seq in (("x", xs), ("y", ys)):
        for k in range(1, len(seq)):
            if (by_group and grp[seq[k]] != grp[seq[k - 1]]) or seq[k] == nc:
                pos = k - 0.5
                line = dict(color="rgba(0,0,0,0.25)", width=1)
                if axis == "x":
                    shapes.append(dict(type="line", x0=pos, x1=pos, y0=-0.5, y1=len(ys) - 0.5, line=line, layer="below"))
                else:
                    shapes.append(dict(type="line", y0=pos, y1=pos, x0=-0.5, x1=len(xs) - 0.5, line=line, layer="below"))
    return shapes


def _class_axis(seq: list[int], label: list[str], font: int) -> dict[str, Any]:
    """An axis with one tick per class in ``seq``, first class first."""
    return dict(
        tickmode="array",
        tickvals=list(range(len(seq))),
        ticktext=[label[c] for c in seq],
        tickfont=dict(size=font),
        range=[-0.5, len(seq) - 0.5],
        showgrid=False,
        zeroline=False,
    )


def per_class_figure(per_class: pd.DataFrame, metric: str = "ap50_95") -> go.Figure:
    """Horizontal bars of one metric per labelled class, worst first, coloured by group."""
    import plotly.express as px

    df = per_class[per_class["labelled"].astype(bool)].sort_values(metric, ascending=True)
    fig = px.bar(
        df,
        x=metric,
        y="class",
        color="group",
        orientation="h",
        hover_data={"instances": True, "precision": ":.3f", "recall": ":.3f", "ap50": ":.3f", "ap50_95": ":.3f"},
        category_orders={"class": df["class"].tolist()},
    )
    fig.update_layout(
        height=int(120 + 16 * max(len(df), 3)),
        xaxis=dict(range=[0, 1], title=metric.replace("_", "-").replace("ap", "AP")),
        yaxis=dict(title=None),  # plotly express already puts the first category (the worst) on top
        margin=dict(l=10, r=10, t=30, b=40),
        legend=dict(title="group"),
    )
    return fig


def failures_figure(counts: pd.DataFrame, top: int = 40) -> go.Figure:
    """Stacked bars of misses and false detections by kind for the ``top`` classes with most failures."""
    import plotly.graph_objects as go

    kinds = ["fn", "fp_class", "fp_loc", "fp_dup", "fp_bg"]
    df = counts.assign(total=counts[kinds].sum(axis=1))
    df = df[df["total"] > 0].sort_values("total", ascending=False).head(top)
    fig = go.Figure(
        [go.Bar(name=KIND_LABELS[k], y=df["class"], x=df[k], orientation="h", marker_color=KIND_COLORS[k]) for k in kinds]
    )
    fig.update_layout(
        barmode="stack",
        height=int(120 + 18 * max(len(df), 3)),
        yaxis=dict(autorange="reversed"),
        xaxis=dict(title="cases"),
        margin=dict(l=10, r=10, t=30, b=40),
    )
    return fig


def confidence_figure(curves: dict[str, pd.DataFrame], threshold: float, best: dict[str, float] | None = None) -> go.Figure:
    """Precision (solid) and recall (dashed) against confidence for some classes, the global threshold marked."""
    import plotly.graph_objects as go

    fig = go.Figure()
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    for k, (name, df) in enumerate(curves.items()):
        c = palette[k % len(palette)]
        fig.add_scatter(x=df["conf"], y=df["precision"], name=f"{name} P", line=dict(color=c), legendgroup=name)
        fig.add_scatter(x=df["conf"], y=df["recall"], name=f"{name} R", line=dict(color=c, dash="dash"), legendgroup=name)
        if best and name in best:
            fig.add_vline(x=best[name], line=dict(color=c, dash="dot", width=1))
    fig.add_vline(x=threshold, line=dict(color="black", width=2), annotation_text=f"threshold {threshold:g}")
    fig.update_layout(
        xaxis=dict(title="confidence threshold", range=[0, 1]),
        yaxis=dict(title="precision / recall", range=[0, 1.02]),
        height=420,
        margin=dict(l=10, r=10, t=30, b=40),
    )
    return fig


def compare_figure(table: pd.DataFrame, metric: str = "ap50_95", top: int = 40) -> go.Figure:
    """Bars of the per-class change of ``metric`` (B - A), biggest drops first."""
    import plotly.graph_objects as go

    d = f"d_{metric}"
    df = table.dropna(subset=[d])
    df = df.reindex(df[d].abs().sort_values(ascending=False).index).head(top).sort_values(d)
    fig = go.Figure(
        go.Bar(
            x=df[d],
            y=df["class"],
            orientation="h",
            marker_color=np.where(df[d] < 0, "#d62728", "#2ca02c"),
            customdata=np.column_stack([df[f"{metric}_a"], df[f"{metric}_b"]]) if len(df) else None,
            hovertemplate="%{y}: %{customdata[0]:.3f} → %{customdata[1]:.3f} (%{x:+.3f})<extra></extra>",
        )
    )
    fig.update_layout(
        height=int(120 + 18 * max(len(df), 3)),
        yaxis=dict(autorange="reversed"),
        xaxis=dict(title=f"Δ {metric} (B − A)"),
        margin=dict(l=10, r=10, t=30, b=40),
    )
    return fig


def figure_html(fig: Any, include_js: bool | str) -> str:
    """A figure as an HTML fragment (``include_js=True`` embeds plotly.js once, offline)."""
    return str(fig.to_html(full_html=False, include_plotlyjs=include_js, config={"displaylogo": False}))
