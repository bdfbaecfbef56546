"""Page "Per-class failures": measured per-class metrics, confusions and galleries of misses."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard.ui.failures import (
    KIND_CHOICES,
    cell_view,
    confusion_view,
    failure_options,
    gallery,
    notes_view,
    per_class_view,
    sort_cases,
)
from dashboard.ui.guard import can_act
from omr_core.errors import OmrError
from omr_core.evaluation import (
    DEFAULT_PAGES,
    NotesEvaluation,
    class_curves,
    compare_evaluations,
    compare_figure,
    confidence_figure,
    confidence_table,
    confusion_export,
    evaluate_notes,
    export_evaluation,
    failure_counts,
    failures_export,
    load_notes,
    per_class_export,
    per_class_figure,
    report_html,
    truth_pages,
    worse_classes,
)
from omr_core.evaluation.evaluate import (
    Evaluation,
    data_splits,
    default_batch,
    evaluate,
    find_cached,
    list_evaluations,
    run_choices,
)
from omr_core.review import models_dir, shipped_models, trained_imgsz
from omr_core.workspace import get_workspace

OTHER = "other weights file…"

st.title("Per-class failures")
st.caption(
    "Per-class numbers from Ultralytics' own validator, every miss and false detection of the same predictions, "
    "and what the confidence threshold costs each class."
)

ws = get_workspace()


@st.cache_data(ttl=10, show_spinner=False)
def _runs(runs_dir: str) -> list:
    return run_choices(runs_dir)


@st.cache_resource(show_spinner=False)
def _default_batch() -> int:
    return default_batch()


@st.cache_data(ttl=10, show_spinner=False)
def _splits(data: str) -> list[str]:
    return data_splits(data)


@st.cache_data(show_spinner=False)
def _trained_imgsz(path: str, mtime: float) -> int | None:
    return trained_imgsz(path)


def _pick_inputs() -> dict | None:
    runs = _runs(str(ws.runs))
    names = [r.name for r in runs]
    shipped = {m.label: m for m in shipped_models()}
    c1, c2 = st.columns([2, 3])
    # The shipped reference model comes first, so it is the default.
    choice = c1.selectbox("Run", [*shipped, *names, OTHER], key="fail_run",
                          help=f"reference models in {models_dir()}, runs with weights under {ws.runs}")
    if choice == OTHER:
        model = c2.text_input("Weights file (.pt)", key="fail_model_path")
        data_default, imgsz_default = "", 640
    elif choice in shipped:
        ref = shipped[choice]
        model = str(ref.path)
        c2.caption(f"Reference model shipped with the project{f' · card: {ref.card.name}' if ref.card else ''}")
        data_default, imgsz_default = "", _trained_imgsz(model, ref.path.stat().st_mtime) or 640
    else:
        run = runs[names.index(choice)]
        model = c2.selectbox("Weights", [str(p) for p in run.weights], format_func=lambda p: Path(p).name, key="fail_weights")
        data_default, imgsz_default = (str(run.data) if run.data else ""), run.imgsz
    if not model:
        st.info("Choose a run or give a weights file.")
        return None
    try:
        # A .pt file is a pickle: only files inside the workspace (or the project's own models) are loaded.
        model = model if choice in shipped else str(ws.confine(model))
    except OmrError as exc:
        st.error(str(exc))
        return None
    c1, c2, c3, c4, c5 = st.columns([4, 1, 1, 1, 1])
    data = c1.text_input("data.yaml", value=data_default, key=f"fail_data_{choice}", help="proposed from the run's args.yaml")
    if not data:
        st.info("Give the data.yaml to evaluate on.")
        return None
    try:
        if data != data_default:
            data = str(ws.confine(data))
        splits = _splits(data)
    except OmrError as exc:
        st.error(str(exc))
        return None
    split = c2.selectbox("Split", splits, key=f"fail_split_{choice}")
    imgsz = int(c3.number_input("imgsz", min_value=32, max_value=4096, value=int(imgsz_default), step=32, key=f"fail_imgsz_{choice}"))
    batch = int(c4.number_input("batch", min_value=1, max_value=256, value=_default_batch(), key="fail_batch", help="1 on the CPU: Ultralytics' NMS time limit drops predictions of larger batches there"))
    conf = float(c5.number_input("threshold", min_value=0.001, max_value=1.0, value=0.25, step=0.05, format="%.3f", key="fail_conf", help="detection threshold for failure lists, confusion and the confidence analysis (mAP always uses Ultralytics' low validation threshold)"))
    return {"model": model, "data": data, "split": split, "imgsz": imgsz, "batch": batch, "conf": conf}


@st.cache_data(ttl=5, show_spinner=False)
def _cached(model: str, data: str, split: str, imgsz: int, batch: int) -> Evaluation | None:
    # The cache key stats every label file of the split: a few seconds of reuse keeps widget clicks snappy.
    return find_cached(model, data, split, imgsz=imgsz, batch=batch)


def _evaluation(inp: dict) -> Evaluation | None:
    kw = {"imgsz": inp["imgsz"], "batch": inp["batch"]}
    try:
        ev = _cached(inp["model"], inp["data"], inp["split"], **kw)
    except OmrError as exc:
        st.error(str(exc))
        return None
    c1, c2 = st.columns([4, 1])
    note, slot = c1.empty(), c2.empty()
    if ev is not None:
        note.success(_done_text(ev), icon=":material/check:")
        again = _reevaluate_button(slot)
    else:
        note.info("Not evaluated with these settings yet.", icon=":material/hourglass_empty:")
        again = slot.button("Evaluate", key="fail_evaluate", type="primary", icon=":material/play_arrow:")
    if not again or not can_act("Evaluating a model"):
        return ev
    bar = st.progress(0.0, text="Validating…")

    def progress(done: int, total: int) -> None:
        bar.progress(min(1.0, done / max(total, 1)), text=f"Validating: batch {done} of {total}")

    try:
        ev = evaluate(inp["model"], inp["data"], inp["split"], conf=inp["conf"], force=True, progress=progress, **kw)
    except OmrError as exc:
        st.error(str(exc))
        return None
    finally:
        bar.empty()
    _cached.clear()
    note.success(_done_text(ev), icon=":material/check:")
    if not ev.cached:  # the button said "Evaluate": now it is done, offer to evaluate again instead
        slot.empty()
        _reevaluate_button(slot)
    return ev


def _reevaluate_button(slot: DeltaGenerator) -> bool:
    return slot.button("Re-evaluate", key="fail_rerun", icon=":material/refresh:",
                       help="run Ultralytics' validation again (e.g. after editing labels)")


@st.cache_data(ttl=30, show_spinner=False)
def _truth_pages(folder: str, key: str, _ev: Evaluation) -> int:
    return len(truth_pages(_ev))


def _notes_tab(ev: Evaluation, conf: float) -> NotesEvaluation | None:
    """Notes read right: the cached reading at this threshold, or a button to read the pages with note truth."""
    notes = load_notes(ev, conf)
    if notes is None:
        try:
            n = _truth_pages(str(ev.folder), ev.key, ev)
        except OmrError as exc:
            st.error(str(exc))
            return None
        if not n:
            st.info(f"None of the {ev.n_images} evaluated images comes from a page with note truth. Notes read right "
                    "needs a dataset converted (`omr convert`) from pages engraved by `omr synth`: their noteheads "
                    "carry the pitch and duration they were engraved from.")
            return None
        c1, c2 = st.columns([1, 3])
        limit = int(c1.number_input("Pages", min_value=1, max_value=n, value=min(n, DEFAULT_PAGES), key="fail_notes_pages",
                                    help="whole pages run through the model as it was trained, then read"))
        c2.caption(f"{n} evaluated pages carry note truth. Each is run through the model the way it was trained, "
                   f"read as music at threshold {conf:g}, and every wrong note is explained (about 1-3 s a page).")
        if not st.button("Read the notes", key="fail_notes_read", type="primary", icon=":material/music_note:") \
                or not can_act("Reading the notes"):
            return None
        bar = st.progress(0.0, text="Reading pages…")

        def progress(d: int, t: int) -> None:
            bar.progress(d / max(t, 1), text=f"Reading: page {d} of {t}")

        try:
            notes = evaluate_notes(ev, conf, limit=limit, force=True, progress=progress)
        except OmrError as exc:
            st.error(str(exc))
            return None
        finally:
            bar.empty()
    if notes.message:
        st.info(notes.message)
        return None
    st.caption(f"{notes.pages} pages, {notes.notes} notes, read in {notes.seconds:.0f} s at threshold {notes.conf:g}: "
               "each wrong note with the symbol that made it wrong (the kind whose ground truth, put in place of "
               "the detections, reads it right).")
    notes_view(notes, key="fail_notes")
    return notes


def _done_text(ev: Evaluation) -> str:
    when = "Cached evaluation" if ev.cached else "Evaluated just now"
    return f"{when} from {ev.created} ({ev.seconds:.1f} s, {ev.n_images} images) · `{ev.folder}`"


inputs = _pick_inputs()
picked = _evaluation(inputs) if inputs else None
if picked is None:
    st.stop()
ev: Evaluation = picked  # narrowed for good: the lambdas below (format_func, downloads) read it later
conf = inputs["conf"] if inputs else ev.conf

try:
    cases = ev.cases(conf)
    per = per_class_export(ev, conf)
except OmrError as exc:
    st.error(str(exc))
    st.stop()

if ev.warning:
    st.warning(ev.warning, icon=":material/warning:")
s = ev.summary
m1, m2, m3, m4, m5 = st.columns([1, 1, 1, 1, 1.5])  # room for "Classes without labels" and its help icon
m1.metric("Precision", f"{s.get('precision', 0):.3f}")
m2.metric("Recall", f"{s.get('recall', 0):.3f}")
m3.metric("mAP50", f"{s.get('map50', 0):.3f}")
m4.metric("mAP50-95", f"{s.get('map50_95', 0):.3f}")
m5.metric("Classes without labels", int((~per["labelled"].astype(bool)).sum()), help="in this split; their P/R/AP are empty, not the mean")
notes_row = st.empty()

t_table, t_cm, t_gal, t_notes, t_conf, t_cmp, t_exp = st.tabs(
    ["Per class", "Confusion matrix", "Galleries", "Notes read right", "Confidence", "Compare", "Export"])

with t_table:
    st.caption(f"Worst AP50-95 first. P and R are Ultralytics' (at the confidence maximising mean F1); TP/FN/FP at threshold {conf:g}, IoU 0.5.")
    per_class_view(per)
    with st.expander("Chart"):
        st.plotly_chart(per_class_figure(per), key="fail_per_class_fig")

with t_cm:
    cell = confusion_view(ev, cases, ev.per_class()["group"].tolist())
    if cell is not None:
        cell_view(ev, cases, cell)

with t_gal:
    counts = failure_counts(cases, ev.names)
    options = failure_options(counts)
    if not options:
        st.success(f"No misses and no false detections at threshold {conf:g}.")
    else:
        c1, c3 = st.columns([3, 1])
        ci = c1.selectbox(
            "Class",
            options,
            format_func=lambda i: f"{ev.names[i]} · FN {counts.loc[i, 'fn']} · FP {counts.loc[i, 'fp']}",
            key="fail_gal_class",
        )
        how = c3.selectbox("Sort", ["confidence", "image"], key="fail_gal_sort")
        # Pills on their own row: in a third of the width a multiselect cut its chips short ("backgrou").
        kinds = st.pills("Kinds", list(KIND_CHOICES), default=list(KIND_CHOICES), format_func=KIND_CHOICES.__getitem__,
                         selection_mode="multi", key="fail_gal_kinds") or []
        sel = cases[(cases["cls"] == ci).to_numpy() & cases["kind"].astype(str).isin(kinds).to_numpy()]
        st.caption("Green: ground truth · red: prediction. Misses (FN) are filed under their true class, false detections under the predicted class.")
        gallery(ev, sort_cases(sel, how), key=f"fail_gal_{ci}")

with t_notes:
    read = _notes_tab(ev, conf)
# next to mAP: the notes of the pages with note truth, once read at this threshold
with notes_row.container():
    if read is not None and read.notes:
        n1, n2, n3 = st.columns([1, 1, 3])
        n1.metric("Notes: pitch right", f"{read.pitch_share:.3f}", help=f"{read.pitch_right} of {read.notes} notes on {read.pages} pages with note truth")
        n2.metric("Notes: pitch + duration", f"{read.both_share:.3f}", help=f"{read.both_right} of {read.notes} notes")
        top = ", ".join(f"{c} ({n})" for c, n in read.causes()[:3])
        n3.caption(f"Wrong notes, commonest causes: {top}" if top else "Every note read right.")
    else:
        st.caption("Notes read right (pitch, duration): see the tab *Notes read right* (pages engraved by `omr synth`).")

with t_conf:
    table = confidence_table(ev, conf).sort_values(["dropped", "class"], ascending=[False, True])
    st.caption(
        f"'dropped': objects a correct detection found below {conf:g}: the threshold threw them away. "
        "Best threshold: where the class's F1 (Ultralytics' curve) peaks."
    )
    st.dataframe(
        table.drop(columns=["class_index"]),
        hide_index=True,
        width="stretch",
        height=320,
        column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("best_threshold", "best_f1", "precision_at_best", "recall_at_best", "precision", "recall", "f1", "dropped_share")},
        key="fail_conf_table",
    )
    labelled = table[table["instances"] > 0]
    default = [int(i) for i in labelled["class_index"].head(3)]
    chosen = st.multiselect("Classes", [int(i) for i in labelled["class_index"]], default=default, format_func=lambda i: ev.names[i], key="fail_conf_classes")
    if chosen:
        curves = {ev.names[i]: class_curves(ev, i) for i in chosen}
        thresholds = table.set_index("class_index")["best_threshold"].astype(float)
        best = {ev.names[i]: float(thresholds[i]) for i in chosen}
        st.plotly_chart(confidence_figure(curves, conf, best), key="fail_conf_fig")

with t_cmp:
    found = {e.folder: e for root in (ws.runs, ws.root / "evaluations") for e in list_evaluations(root)}
    others = [e for e in found.values() if e.folder != ev.folder]
    if not others:
        st.info("Evaluate another run (or the same run on another split or size) to compare per class.")
    else:
        ref = st.selectbox("Compare with (A)", range(len(others)), format_func=lambda i: f"{others[i].label} · {others[i].created}", key="fail_cmp_ref")
        table = compare_evaluations(others[ref], ev)
        worse = worse_classes(table)
        st.markdown(f"**B = this evaluation.** {len(worse)} class(es) got worse (AP50-95 down by more than 0.005).")
        if len(worse):
            st.write(", ".join(worse["class"].head(30)))
        st.plotly_chart(compare_figure(table), key="fail_cmp_fig")
        st.dataframe(table, hide_index=True, width="stretch", height=360, key="fail_cmp_table")

with t_exp:
    stem = f"{ev.folder.name}-c{conf:g}"
    c1, c2, c3 = st.columns(3)
    c1.download_button("Per-class table (CSV)", lambda: per.to_csv(index=False), file_name=f"{stem}-per_class.csv", mime="text/csv", key="fail_dl_pc_csv")
    c1.download_button("Per-class table (JSON)", lambda: per.to_json(orient="records", indent=1), file_name=f"{stem}-per_class.json", mime="application/json", key="fail_dl_pc_json")
    c2.download_button("Failures (CSV)", lambda: failures_export(ev, conf).to_csv(index=False), file_name=f"{stem}-failures.csv", mime="text/csv", key="fail_dl_f_csv")
    c2.download_button("Failures (JSON)", lambda: failures_export(ev, conf).to_json(orient="records", indent=1), file_name=f"{stem}-failures.json", mime="application/json", key="fail_dl_f_json")
    c3.download_button("Confusion (CSV)", lambda: confusion_export(ev, conf).to_csv(), file_name=f"{stem}-confusion.csv", mime="text/csv", key="fail_dl_cm")
    c3.download_button("HTML report (one page, offline)", lambda: report_html(ev, conf), file_name=f"{stem}-report.html", mime="text/html", key="fail_dl_report", type="primary")
    if st.button("Write all exports to the evaluation folder", key="fail_write_exports") and can_act("Writing exports"):
        try:
            files = export_evaluation(ev, ev.folder, conf)
        except OmrError as exc:
            st.error(str(exc))
        else:
            st.success("Written: " + ", ".join(f"`{p}`" for p in files.values()))
