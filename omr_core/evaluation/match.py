"""Per-image matching of predictions to ground truth: true positives and every kind of failure."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Kinds of rows in a cases table. ``tp``: correct detection; ``fn``: missed ground truth; ``fp_class``: a box on
#: an object of another class (the true class is named); ``fp_loc``: right class, IoU with its object in
#: [0.1, 0.5); ``fp_dup``: right class on an object another detection already took; ``fp_bg``: nothing there.
KINDS: tuple[str, ...] = ("tp", "fn", "fp_class", "fp_loc", "fp_dup", "fp_bg")
FAILURE_KINDS: tuple[str, ...] = KINDS[1:]
KIND_LABELS: dict[str, str] = {
    "tp": "correct",
    "fn": "missed (FN)",
    "fp_class": "wrong class",
    "fp_loc": "poor localisation",
    "fp_dup": "duplicate",
    "fp_bg": "background",
}

#: Columns of a cases table (see `match_cases`).
CASE_COLUMNS: tuple[str, ...] = (
    "image_id",
    "kind",
    "cls",
    "true_cls",
    "pred_cls",
    "conf",
    "iou",
    "below_conf",
    "gx0",
    "gy0",
    "gx1",
    "gy1",
    "px0",
    "py0",
    "px1",
    "py1",
)

BACKGROUND = -1


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4 xyxy) with every box in ``b`` (M, 4 xyxy) as an (N, M) array."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), dtype=np.float64)
    a = a.astype(np.float64, copy=False)
    b = b.astype(np.float64, copy=False)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)


def claim(
    gt_cls: np.ndarray, gt_box: np.ndarray, pred_cls: np.ndarray, pred_conf: np.ndarray, pred_box: np.ndarray, iou: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy one-to-one matching of one image, as Ultralytics' validator does it at one IoU threshold.

    Predictions are taken in descending confidence; each claims the unclaimed ground-truth box of its own class with
    the highest IoU, if that IoU is at least ``iou``. Because the order is by confidence, the matches of the
    predictions above any threshold T are exactly the matches this returns among those with conf >= T, so one call
    at a low confidence serves every threshold.

    Returns:
        ``(pred_gt, gt_pred)``: for each prediction the index of the ground truth it claimed (-1: none), and for each
        ground truth the index of the prediction that claimed it (-1: none).
    """
    pred_gt = np.full(len(pred_cls), -1, dtype=np.int64)
    gt_pred = np.full(len(gt_cls), -1, dtype=np.int64)
    if not len(gt_cls) or not len(pred_cls):
        return pred_gt, gt_pred
    ious = box_iou(gt_box, pred_box) * (gt_cls[:, None] == pred_cls[None, :])
    candidates = np.flatnonzero((ious >= iou).any(0))
    taken = np.zeros(len(gt_cls), dtype=bool)
    for j in candidates[np.argsort(-pred_conf[candidates], kind="stable")]:
        available = np.where(taken, 0.0, ious[:, j])
        k = int(available.argmax())
        if available[k] >= iou:
            pred_gt[j] = k
            gt_pred[k] = j
            taken[k] = True
    return pred_gt, gt_pred


def classify(
    gt_cls: np.ndarray,
    gt_box: np.ndarray,
    pred_cls: np.ndarray,
    pred_conf: np.ndarray,
    pred_box: np.ndarray,
    pred_gt: np.ndarray,
    gt_pred: np.ndarray,
    conf: float,
    iou: float = 0.5,
    loc_iou: float = 0.1,
) -> dict[str, np.ndarray]:
    """Sort one image's ground truth and predictions at threshold ``conf`` into `KINDS`.

    Args:
        gt_cls, gt_box: Ground-truth classes (G,) and xyxy boxes (G, 4).
        pred_cls, pred_conf, pred_box: Predictions (P,), (P,), (P, 4) at the low stored confidence.
        pred_gt, gt_pred: The result of `claim` on the same arrays.
        conf: Detection threshold: predictions below it do not count.
        iou: IoU for a correct detection.
        loc_iou: Lowest IoU with an object of the same class that still counts as poor localisation.

    Returns:
        Column arrays (without ``image_id``) for every TP, FN and FP of the image.
    """
    keep = pred_conf >= conf
    claimer_conf = np.where(gt_pred >= 0, pred_conf[np.maximum(gt_pred, 0)] if len(pred_conf) else 0.0, np.nan)
    gt_hit = (gt_pred >= 0) & (claimer_conf >= conf)
    rows = _CaseRows()
    _true_positives(rows, gt_cls, gt_box, pred_cls, pred_conf, pred_box, np.flatnonzero(keep & (pred_gt >= 0)), pred_gt)
    # False positives, in descending confidence so the strongest wrong-class box pairs with a missed object first.
    fp = np.flatnonzero(keep & (pred_gt < 0))
    fp = fp[np.argsort(-pred_conf[fp], kind="stable")]
    paired = _false_positives(rows, gt_cls, gt_box, pred_cls, pred_conf, pred_box, fp, gt_hit, iou, loc_iou)
    _missed(rows, gt_cls, gt_box, pred_cls, pred_conf, pred_box, fp, np.flatnonzero(~gt_hit), paired, claimer_conf)
    return rows.arrays()


_NAN4 = np.full(4, np.nan)


class _CaseRows:
    """The columns of a cases table (without ``image_id``), gathered a block of one kind at a time."""

    def __init__(self) -> None:
        self.rows: dict[str, list[np.ndarray]] = {c: [] for c in CASE_COLUMNS if c != "image_id"}

    def add(self, kind: str, n: int, cls: np.ndarray, true_cls: np.ndarray, pred_c: np.ndarray, cf: np.ndarray,
            ious: np.ndarray, below: np.ndarray, gbox: np.ndarray, pbox: np.ndarray) -> None:
        if not n:
            return
        rows = self.rows
        rows["kind"].append(np.full(n, kind, dtype=object))
        rows["cls"].append(cls)
        rows["true_cls"].append(true_cls)
        rows["pred_cls"].append(pred_c)
        rows["conf"].append(cf)
        rows["iou"].append(ious)
        rows["below_conf"].append(below)
        for i, c in enumerate(("gx0", "gy0", "gx1", "gy1")):
            rows[c].append(gbox[:, i])
        for i, c in enumerate(("px0", "py0", "px1", "py1")):
            rows[c].append(pbox[:, i])

    def arrays(self) -> dict[str, np.ndarray]:
        return {c: (np.concatenate(v) if v else np.zeros(0)) for c, v in self.rows.items()}


def _true_positives(rows: _CaseRows, gt_cls: np.ndarray, gt_box: np.ndarray, pred_cls: np.ndarray,
                    pred_conf: np.ndarray, pred_box: np.ndarray, tp: np.ndarray, pred_gt: np.ndarray) -> None:
    """The kept predictions that claimed an object, with the IoU of their claim."""
    if not len(tp):
        return
    tk = pred_gt[tp]
    tiou = box_iou(gt_box[tk], pred_box[tp])[np.arange(len(tp)), np.arange(len(tp))]
    nan = np.full(len(tp), np.nan)
    rows.add("tp", len(tp), pred_cls[tp], gt_cls[tk], pred_cls[tp], pred_conf[tp], tiou, nan, gt_box[tk], pred_box[tp])


def _fp_kinds(gt_cls: np.ndarray, gt_box: np.ndarray, pred_cls: np.ndarray, pred_box: np.ndarray, fp: np.ndarray,
              gt_hit: np.ndarray, iou: float, loc_iou: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Kind, object (-1: none) and IoU of each unmatched prediction ``fp`` (strongest first), and the pairing.

    Returns:
        ``(kinds, gt_of, best, paired)``; ``paired`` maps each missed object to the wrong-class prediction (a position
        in ``fp``) covering it, -1 where none does.
    """
    g = len(gt_cls)
    paired = np.full(g, -1, dtype=np.int64)
    kinds = np.empty(len(fp), dtype=object)
    gt_of = np.full(len(fp), -1, dtype=np.int64)
    best = np.zeros(len(fp))
    if not len(fp):
        return kinds, gt_of, best, paired
    ious = box_iou(gt_box, pred_box[fp])  # (G, F)
    same = gt_cls[:, None] == pred_cls[fp][None, :] if g else np.zeros((0, len(fp)), dtype=bool)
    for f in range(len(fp)):
        col = ious[:, f]
        if not g:
            kinds[f] = "fp_bg"
            continue
        s = np.where(same[:, f], col, 0.0)
        o = np.where(~same[:, f], col, 0.0)
        if s.max() >= iou:  # its object was taken by a stronger detection of the same class
            gi = int(s.argmax())
            kinds[f], gt_of[f], best[f] = "fp_dup", gi, s[gi]
        elif o.max() >= iou:
            # Prefer a missed object nobody has paired yet, so the confusion pairs each miss with one box.
            free = np.where((~gt_hit) & (paired < 0), o, 0.0)
            gi = int(free.argmax()) if free.max() >= iou else int(o.argmax())
            if free.max() >= iou:
                paired[gi] = f
            kinds[f], gt_of[f], best[f] = "fp_class", gi, o[gi]
        elif s.max() >= loc_iou:
            gi = int(s.argmax())
            kinds[f], gt_of[f], best[f] = "fp_loc", gi, s[gi]
        else:
            gi = int(col.argmax())
            kinds[f], best[f] = "fp_bg", col[gi]
    return kinds, gt_of, best, paired


def _false_positives(rows: _CaseRows, gt_cls: np.ndarray, gt_box: np.ndarray, pred_cls: np.ndarray,
                     pred_conf: np.ndarray, pred_box: np.ndarray, fp: np.ndarray, gt_hit: np.ndarray, iou: float,
                     loc_iou: float) -> np.ndarray:
    """The kept predictions that claimed nothing, by kind; returns the pairing of missed objects (`_fp_kinds`)."""
    g = len(gt_cls)
    kinds, gt_of, best, paired = _fp_kinds(gt_cls, gt_box, pred_cls, pred_box, fp, gt_hit, iou, loc_iou)
    for kind in ("fp_class", "fp_loc", "fp_dup", "fp_bg"):
        sel = np.flatnonzero(kinds == kind)
        if not len(sel):
            continue
        pj = fp[sel]
        gk = gt_of[sel]
        has = gk >= 0
        true_cls = np.where(has, gt_cls[np.maximum(gk, 0)] if g else BACKGROUND, BACKGROUND)
        gbox = np.where(has[:, None], gt_box[np.maximum(gk, 0)] if g else _NAN4, _NAN4)
        n = len(sel)
        rows.add(kind, n, pred_cls[pj], true_cls, pred_cls[pj], pred_conf[pj], best[sel], np.full(n, np.nan), gbox, pred_box[pj])
    return paired


def _missed(rows: _CaseRows, gt_cls: np.ndarray, gt_box: np.ndarray, pred_cls: np.ndarray, pred_conf: np.ndarray,
            pred_box: np.ndarray, fp: np.ndarray, fn: np.ndarray, paired: np.ndarray, claimer_conf: np.ndarray) -> None:
    """Missed ground truth; a miss covered by a wrong-class box names that class, a miss found only below the
    threshold keeps the confidence it had (the threshold threw it away)."""
    if not len(fn):
        return
    pj = paired[fn]
    has_pair = pj >= 0
    pidx = np.where(has_pair, fp[np.maximum(pj, 0)] if len(fp) else 0, 0)
    pred_c = np.where(has_pair, pred_cls[pidx] if len(pred_cls) else BACKGROUND, BACKGROUND)
    cf = np.where(has_pair, pred_conf[pidx] if len(pred_conf) else np.nan, np.nan)
    pb = np.where(has_pair[:, None], pred_box[pidx] if len(pred_box) else _NAN4, _NAN4)
    pi = np.where(has_pair, box_iou(gt_box[fn], pred_box[pidx])[np.arange(len(fn)), np.arange(len(fn))] if len(pred_box) else np.nan, np.nan)
    rows.add("fn", len(fn), gt_cls[fn], gt_cls[fn], pred_c, cf, pi, claimer_conf[fn], gt_box[fn], pb)


def _bounds(ids: np.ndarray, n_images: int) -> np.ndarray:
    return np.searchsorted(ids, np.arange(n_images + 1), side="left")


def _columns(gt: pd.DataFrame, preds: pd.DataFrame, n_images: int) -> tuple[np.ndarray, ...]:
    """Per-image row bounds of ``gt`` and ``preds`` (both sorted by ``image_id``) and their columns as arrays:
    ``(gt bounds, pred bounds, gt classes, gt boxes, pred classes, pred confidences, pred boxes)``."""
    return (
        _bounds(gt["image_id"].to_numpy(), n_images),
        _bounds(preds["image_id"].to_numpy(), n_images),
        gt["cls"].to_numpy(),
        gt[["x0", "y0", "x1", "y1"]].to_numpy(np.float64),
        preds["cls"].to_numpy(),
        preds["conf"].to_numpy(np.float64),
        preds[["x0", "y0", "x1", "y1"]].to_numpy(np.float64),
    )


def claim_all(gt: pd.DataFrame, preds: pd.DataFrame, n_images: int, iou: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """`claim` over every image; ``gt`` and ``preds`` must be sorted by ``image_id``.

    Returns:
        ``(pred_gt, gt_pred)`` as row positions into ``gt`` / ``preds`` (-1: none).
    """
    gb, pb, g_cls, g_box, p_cls, p_conf, p_box = _columns(gt, preds, n_images)
    pred_gt = np.full(len(preds), -1, dtype=np.int64)
    gt_pred = np.full(len(gt), -1, dtype=np.int64)
    for i in range(n_images):
        g0, g1, p0, p1 = gb[i], gb[i + 1], pb[i], pb[i + 1]
        if g1 == g0 or p1 == p0:
            continue
        pg, gp = claim(g_cls[g0:g1], g_box[g0:g1], p_cls[p0:p1], p_conf[p0:p1], p_box[p0:p1], iou)
        pred_gt[p0:p1] = np.where(pg >= 0, pg + g0, -1)
        gt_pred[g0:g1] = np.where(gp >= 0, gp + p0, -1)
    return pred_gt, gt_pred


def match_cases(
    gt: pd.DataFrame,
    preds: pd.DataFrame,
    n_images: int,
    conf: float,
    *,
    claims: tuple[np.ndarray, np.ndarray] | None = None,
    iou: float = 0.5,
    loc_iou: float = 0.1,
) -> pd.DataFrame:
    """The cases table of a whole split at detection threshold ``conf``.

    Args:
        gt: Ground truth with columns ``image_id, cls, x0, y0, x1, y1`` (pixels), sorted by ``image_id``.
        preds: Predictions with ``image_id, cls, conf, x0, y0, x1, y1``, sorted by ``image_id`` (any low confidence).
        n_images: Number of images (ids are ``0..n_images-1``).
        conf: Detection threshold.
        claims: A previous `claim_all` result on the same tables (it does not depend on ``conf``).
        iou: IoU for a correct detection (0.5, as mAP50).
        loc_iou: Lowest IoU that counts as poor localisation rather than background.

    Returns:
        One row per TP, FN and FP with `CASE_COLUMNS`: ``cls`` is the class the row is filed under (the true class
        of a miss, the predicted class of a detection), ``true_cls``/``pred_cls`` are -1 for background, ``gx0..``
        the ground-truth box, ``px0..`` the predicted box, ``iou`` their overlap, ``below_conf`` the confidence of a
        correct detection of a missed object that the threshold threw away.
    """
    pred_gt, gt_pred = claims if claims is not None else claim_all(gt, preds, n_images, iou)
    gb, pb, g_cls, g_box, p_cls, p_conf, p_box = _columns(gt, preds, n_images)
    parts: list[pd.DataFrame] = []
    for i in range(n_images):
        g0, g1, p0, p1 = gb[i], gb[i + 1], pb[i], pb[i + 1]
        if g1 == g0 and p1 == p0:
            continue
        pg = pred_gt[p0:p1]
        gp = gt_pred[g0:g1]
        cols = classify(
            g_cls[g0:g1], g_box[g0:g1], p_cls[p0:p1], p_conf[p0:p1], p_box[p0:p1],
            np.where(pg >= 0, pg - g0, -1), np.where(gp >= 0, gp - p0, -1), conf, iou, loc_iou,
        )  # fmt: skip
        n = len(cols["kind"])
        if n:
            parts.append(pd.DataFrame({"image_id": np.full(n, i, dtype=np.int32), **cols}))
    if not parts:
        return empty_cases()
    df = pd.concat(parts, ignore_index=True)
    return _typed(df)


def empty_cases() -> pd.DataFrame:
    """A cases table with no rows and the right columns."""
    return _typed(pd.DataFrame({c: [] for c in CASE_COLUMNS}))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    df = df.astype({"image_id": "int32", "cls": "int32", "true_cls": "int32", "pred_cls": "int32"})
    for c in CASE_COLUMNS[5:]:
        df[c] = df[c].astype("float32")
    df["kind"] = pd.Categorical(df["kind"].astype(str), categories=list(KINDS))
    return df[list(CASE_COLUMNS)]


def confusion_counts(cases: pd.DataFrame, nc: int) -> np.ndarray:
    """Confusion counts ``[predicted, true]`` with background as index ``nc`` (Ultralytics' layout).

    Each case counts once: a TP on the diagonal, a wrong-class box at (predicted, true), other false detections
    in the background column, misses in the background row unless a wrong-class box already stands for them.
    """
    m = np.zeros((nc + 1, nc + 1), dtype=np.int64)
    kind = cases["kind"].astype(str).to_numpy()
    pred = cases["pred_cls"].to_numpy()
    true = cases["true_cls"].to_numpy()
    sel = kind == "tp"
    np.add.at(m, (pred[sel], true[sel]), 1)
    sel = kind == "fp_class"
    np.add.at(m, (pred[sel], true[sel]), 1)
    sel = np.isin(kind, ("fp_loc", "fp_dup", "fp_bg"))
    np.add.at(m, (pred[sel], np.full(sel.sum(), nc)), 1)
    sel = (kind == "fn") & (pred < 0)
    np.add.at(m, (np.full(sel.sum(), nc), true[sel]), 1)
    return m


def cell_cases(cases: pd.DataFrame, pred: int, true: int, nc: int) -> pd.DataFrame:
    """The cases behind one confusion cell (``nc`` stands for background), the same ones `confusion_counts` counts."""
    kind = cases["kind"].astype(str)
    if pred == nc and true == nc:
        return cases.iloc[0:0]
    if pred == nc:
        mask = (kind == "fn") & (cases["true_cls"] == true) & (cases["pred_cls"] < 0)
    elif true == nc:
        mask = kind.isin(["fp_loc", "fp_dup", "fp_bg"]) & (cases["pred_cls"] == pred)
    elif pred == true:
        mask = (kind == "tp") & (cases["pred_cls"] == pred)
    else:
        mask = (kind == "fp_class") & (cases["pred_cls"] == pred) & (cases["true_cls"] == true)
    return cases[mask.to_numpy()]


def failure_counts(cases: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Per class (the class a case is filed under): how many TP, FN and FP of each kind."""
    nc = len(names)
    out = pd.DataFrame({"class_index": np.arange(nc), "class": list(names)})
    kind = cases["kind"].astype(str).to_numpy()
    cls = cases["cls"].to_numpy()
    for k in KINDS:
        out[k] = np.bincount(cls[kind == k], minlength=nc)[:nc] if nc else []
    out["fp"] = out[["fp_class", "fp_loc", "fp_dup", "fp_bg"]].sum(axis=1)
    fn_sel = (kind == "fn") & ~np.isnan(cases["below_conf"].to_numpy())
    out["fn_below_threshold"] = np.bincount(cls[fn_sel], minlength=nc)[:nc] if nc else []
    return out
