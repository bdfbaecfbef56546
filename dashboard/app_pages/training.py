"""Page "Training & live monitor": launch Ultralytics training and watch it live."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.ui.demo import render_demo_score
from dashboard.ui.guard import can_act
from dashboard.ui.notify import render_notifications
from dashboard.ui.queue import render_queue
from dashboard.ui.sweep import render_sweep_form
from dashboard.ui.training import (
    REFRESH_S,
    RUNS_TABLE_CONFIG,
    fmt_duration,
    last_values_text,
    live_figures,
    run_view,
    runs_table,
    show_alerts,
    state_badge,
)
from omr_core.errors import OmrError
from omr_core.training import (
    PRESETS,
    RESUME_ALLOWED,
    GpuProbe,
    LabelStats,
    OptimizerPlan,
    PresetChoice,
    RunSnapshot,
    RunSummary,
    build_spec,
    default_preset,
    delete_run,
    discover_runs,
    evaluate,
    label_stats,
    launcher,
    link_folder,
    linked_folders,
    parse_device,
    parse_extra,
    plan_optimizer,
    probe,
    queue,
    run_name,
    ultralytics_defaults,
    unlink_folder,
)
from omr_core.workspace import get_workspace

ws = get_workspace()

st.title("Training & live monitor")
st.caption(
    "Runs are separate processes: closing this page or restarting the dashboard does not stop them, and reopening it "
    f"re-attaches. Charts refresh every {REFRESH_S:g} s and show the batches inside the epoch in progress."
)


@st.cache_data(ttl=60, show_spinner=False)
def _gpus() -> GpuProbe:
    return probe()


@st.cache_data(ttl=10, show_spinner=False)
def _data_yamls(root: str) -> list[str]:
    base = Path(root)
    if not base.is_dir():
        return []
    found = [p for pat in ("data.yaml", "*/data.yaml", "*/*/data.yaml", "*/*/*/data.yaml") for p in base.glob(pat)]
    # Dot-folders are never datasets: `omr convert` writes into .OUT.omr-tmp-… and renames only when verified.
    return sorted(str(p) for p in found if not any(part.startswith(".") for part in p.relative_to(base).parts))


@st.cache_data(max_entries=32, show_spinner=False)
def _label_stats(path: str, mtime: float) -> LabelStats:
    return label_stats(path)


# ----------------------------------------------------------------------------------------------------- launch form

_OPTIONAL_NUMBERS: list[tuple[str, str, float | None, float | None, float | None]] = [
    # key, label, min, max, step
    ("lr0", "lr0 (initial learning rate)", 0.0, 1.0, 0.0001),
    ("warmup_epochs", "warmup_epochs", 0.0, None, 0.5),
    ("mosaic", "mosaic (probability)", 0.0, 1.0, 0.1),
    ("close_mosaic", "close_mosaic (last N epochs)", 0, None, 1),
    ("patience", "patience (early stop)", 0, None, 1),
    ("workers", "workers (dataloader)", 0, None, 1),
    ("freeze", "freeze (first N layers)", 0, None, 1),
    ("cls", "cls (class loss weight)", 0.0, None, 0.1),
    ("box", "box (box loss weight)", 0.0, None, 0.5),
    ("fliplr", "fliplr (probability)", 0.0, 1.0, 0.1),
    ("degrees", "degrees (rotation)", 0.0, 180.0, 1.0),
    ("scale", "scale (gain)", 0.0, None, 0.1),
    ("seed", "seed", 0, None, 1),
]
_OPTIONAL_CHOICES: list[tuple[str, str, list[Any]]] = [
    ("optimizer", "optimizer", ["auto", "SGD", "MuSGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp"]),
    ("amp", "amp (mixed precision)", [True, False]),
    ("cos_lr", "cos_lr (cosine schedule)", [True, False]),
    ("cache", "cache (images)", [False, "ram", "disk"]),
]


@st.cache_data(max_entries=32, show_spinner=False)
def _default_preset(path: str, mtime: float) -> PresetChoice:
    return default_preset(path or None)


def _mtime(path: str) -> float:
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return 0.0


def _apply_preset() -> None:
    """When the preset changes, fill the main fields it sets (explicit fields override presets)."""
    st.session_state["tr_preset_picked"] = True  # from now on the data's default no longer replaces it
    p = PRESETS[st.session_state["tr_preset"]].args
    for k in ("epochs", "imgsz", "batch", "device"):
        if k in p:
            st.session_state[f"tr_{k}"] = str(p[k]) if k == "device" else p[k]


def _default_text(key: str, preset: str, plan: OptimizerPlan | None = None) -> str:
    if plan is not None and plan.auto and key in ("lr0", "optimizer"):  # auto ignores lr0: show what it will use
        known = plan.optimizer != "auto"
        if key == "lr0":
            return f"{plan.lr0:g} (auto)" if known else "set by auto"
        return f"auto → {plan.optimizer}" if known else "auto"
    p = PRESETS[preset].args
    if key in p:
        return f"{p[key]} (preset)"
    return f"{ultralytics_defaults().get(key)} (default)"


def _choice_text(key: str, preset: str, plan: OptimizerPlan | None) -> Callable[[Any], str]:
    """How a choice of an optional argument reads: empty (None) shows what the preset or Ultralytics will use."""
    return lambda o: _default_text(key, preset, plan) if o is None else str(o)


def _optimizer_plan(data: str, preset: str, args: dict[str, Any]) -> OptimizerPlan:
    """What Ultralytics will really use for these arguments on this data (optimizer=auto resolved)."""
    nc = images = None
    if data and Path(data).is_file():
        try:
            stats = _label_stats(data, Path(data).stat().st_mtime)
            nc, images = stats.nc, stats.images
        except OmrError:
            pass
    return plan_optimizer({**ultralytics_defaults(), **PRESETS[preset].args, **args}, nc, images)


def _plan_caption(plan: OptimizerPlan, args: dict[str, Any]) -> str:
    lr = f"{plan.lr0:g}" if plan.lr0 == plan.lr0 else "chosen at start"  # NaN: unknown until Ultralytics starts
    text = f"Optimizer that will be used: **{plan.optimizer}**, lr0 {lr}, momentum {plan.momentum:g} ({plan.reason})."
    if plan.accumulate > 1:
        batch, nbs = args.get("batch", 16), args.get("nbs", ultralytics_defaults().get("nbs", 64))
        text += (f" One optimizer step every {plan.accumulate} batches (nbs {nbs} / batch {batch}); on a small "
                 f"dataset set nbs={batch} for one step per batch.")
    return text


def _forecast(data: str, imgsz: int, batch: int, device: str, gpus: GpuProbe) -> None:
    from omr_core.audit.forecast import forecast

    p = Path(data)
    if not p.is_file():
        return
    try:
        stats = _label_stats(str(p), p.stat().st_mtime)
    except OmrError as exc:
        st.warning(f"No memory forecast: {exc}")
        return
    try:
        plan = parse_device(device, gpus.devices)
    except OmrError as exc:
        st.warning(f"No memory forecast: {exc}")
        return
    per_gpu = plan.per_gpu_batch(batch)
    if per_gpu < 1:
        st.caption("AutoBatch (batch < 1): Ultralytics sizes the batch itself, using this same assigner envelope.")
        return
    vram = plan.vram_bytes(gpus.devices)
    fc = forecast(per_gpu, imgsz, stats.max_labels, stats.nc, vram)
    text = (
        f"Assigner memory forecast: **{fc.gib:.2f} GiB** at batch {per_gpu}{'/GPU' if plan.ddp else ''}, "
        f"imgsz {imgsz} (densest training image: {stats.max_labels} labels × 4 for mosaic, {stats.nc} classes, "
        f"{stats.images} images)."
    )
    if vram and fc.fits is False:
        st.warning(
            text + f" This exceeds {plan.describe()}'s {vram / 2**30:.1f} GiB: expect 'CUDA out of memory in "
            f"TaskAlignedAssigner' and a slow fallback. Largest batch that fits: {fc.max_batch}.",
            icon=":material/warning:",
        )
    elif vram:
        st.caption(text + f" Fits {plan.describe()}'s {vram / 2**30:.1f} GiB (model activations come on top).")
    elif plan.kind == "cuda":
        st.caption(text + f" {plan.describe()} is not on this machine (or NVML cannot see it): no memory check.")
    else:
        st.caption(text + f" Training on {plan.describe()}: no GPU memory limit applies.")


def launch_form() -> None:
    gpus = _gpus()
    devices = ["cpu"] + [str(d.index) for d in gpus.devices]
    if len(gpus.devices) > 1:
        devices.append(",".join(str(d.index) for d in gpus.devices))
    c1, c2, c3 = st.columns([1, 1, 2])
    found = _data_yamls(str(ws.datasets))  # the data first: it decides the default preset
    picked = c3.selectbox("Data (data.yaml in the workspace)", ["(type a path below)", *found], key="tr_data_pick",
                          index=1 if found else 0)
    typed = c3.text_input("…or a data.yaml path", key="tr_data_typed", placeholder="/data/ds2_core/data.yaml")
    data = typed.strip() or (picked if picked in found else "")
    auto = None
    if not st.session_state.get("tr_preset_picked"):
        auto = _default_preset(data, _mtime(data))
        st.session_state["tr_preset"] = auto.name
    preset = c1.selectbox("Preset", list(PRESETS), key="tr_preset", on_change=_apply_preset,
                          help="\n".join(f"- **{p.name}**: {p.description}" for p in PRESETS.values()))
    c1.caption(PRESETS[preset].description + (f" `{dict(PRESETS[preset].args)}`" if PRESETS[preset].args else "")
               + (f" Chosen for this data: {auto.reason}." if auto else ""))
    model = c2.text_input("Model", value="yolov8n.yaml", key="tr_model",
                          help="A model YAML trains from scratch (yolov8n.yaml, yolo11s.yaml); a .pt fine-tunes from it.")

    # Defaults through session state only (not value=): the preset callback writes these keys.
    for key, default in (("tr_epochs", 100), ("tr_imgsz", 640), ("tr_batch", 16), ("tr_device", devices[min(1, len(devices) - 1)])):
        st.session_state.setdefault(key, default)
    if st.session_state["tr_device"] not in devices:
        st.session_state["tr_device"] = devices[0]
    c1, c2, c3, c4, c5 = st.columns(5)
    epochs = c1.number_input("epochs", min_value=1, step=1, key="tr_epochs")
    imgsz = c2.number_input("imgsz", min_value=32, step=32, key="tr_imgsz")
    batch = c3.number_input("batch (-1 AutoBatch)", min_value=-1, step=1, key="tr_batch")
    device = c4.selectbox("device", devices, key="tr_device",
                          help="cpu, one GPU, or several (\"0,1\": Ultralytics runs DDP itself)")
    default_name = launcher.unique_name(ws.runs, f"{Path(model).stem or 'run'}-{time.strftime('%m%d-%H%M')}")
    name = c5.text_input("run name", value="", placeholder=default_name, key="tr_name") or default_name

    args: dict[str, Any] = {"epochs": int(epochs), "imgsz": int(imgsz), "batch": int(batch), "device": device}
    # The optional fields as they stood at the last rerun, so the placeholders already show auto's choice.
    before = {k: st.session_state.get(f"tr_{k}") for k in [n[0] for n in _OPTIONAL_NUMBERS] + [c[0] for c in _OPTIONAL_CHOICES]}
    plan = _optimizer_plan(data, preset, {**args, **{k: v for k, v in before.items() if v is not None}})
    with st.expander("More arguments (empty = preset or Ultralytics default)"):
        cols = st.columns(4)
        for i, (k, label, lo, hi, step) in enumerate(_OPTIONAL_NUMBERS):
            v = cols[i % 4].number_input(label, min_value=lo, max_value=hi, value=None, step=step, key=f"tr_{k}",
                                         placeholder=_default_text(k, preset, plan))
            if v is not None:
                args[k] = int(v) if isinstance(step, int) else float(v)
        cols = st.columns(4)
        for i, (k, label, options) in enumerate(_OPTIONAL_CHOICES):
            choices: list[Any] = [None, *options]
            v = cols[i % 4].selectbox(label, choices, key=f"tr_{k}", format_func=_choice_text(k, preset, plan))
            if v is not None:
                args[k] = v
        extra_text = st.text_area("Extra Ultralytics arguments, one key=value per line", key="tr_extra",
                                  placeholder="hsv_h=0\nsave_period=5", height=90)
    try:
        extra = parse_extra(extra_text.splitlines())
    except OmrError:
        extra = {}  # the launch button reports it
    st.caption(_plan_caption(_optimizer_plan(data, preset, {**args, **extra}), {**args, **extra}))
    if data:
        _forecast(data, int(imgsz), int(batch), device, gpus)
    b1, b2 = st.columns([1, 4])
    go = b1.button("Launch training", type="primary", key="tr_launch", disabled=not data)
    later = b2.button("Add to queue", key="tr_queue", disabled=not data,
                      help="start when this device is free, after the runs queued before it")
    def spec() -> Any:
        return build_spec(name, model, data, preset=preset, args=args, extra=parse_extra(extra_text.splitlines()),
                          deep=True)

    if go and can_act("Launching a run"):
        try:
            run_dir = launcher.launch(s := spec(), ws.runs)
        except OmrError as exc:
            st.error(str(exc))
        else:
            st.session_state["monitor_run"] = run_name(ws.runs, run_dir)
            st.success(f"Started **{s.name}** in `{run_dir}`; it appears below within a second.")
    elif later and can_act("Queueing a run"):
        try:
            entry = queue.add(spec(), ws.runs)
        except OmrError as exc:
            st.error(str(exc))
        else:
            st.success(f"Queued **{entry.name}** on {', '.join(entry.lanes)}; the queue is shown below.")
    elif not data:
        st.caption("Choose a data.yaml to launch.")
    if st.toggle("Sweep instead: search some of these arguments with Optuna, trial after trial", key="sw_on"):
        render_sweep_form(ws.runs, data, model, preset)


# ------------------------------------------------------------------------------------------------------ monitor


_STOP_LABELS = {"epoch": "at the end of this epoch", "batch": "after this batch"}


def _stop_choice(s: RunSummary) -> str:
    """The stop mode radio (epoch end by default) with what it does to the epoch in progress."""
    key = s.name
    at = st.radio("Stop", launcher.STOP_MODES, format_func=_STOP_LABELS.get, key=f"stop_when_{key}", horizontal=True,
                  disabled=not s.live)
    if s.live:
        st.caption(launcher.stop_consequence(str(at), s.current_epoch, s.batch, s.batches))
    return str(at)


def _controls(view: RunSnapshot, s: RunSummary) -> None:
    key = s.name
    if s.live and not s.managed:
        st.caption("Trained elsewhere and still running: watched read-only here. Stop it where it was started; "
                   "once it ends it can be resumed or deleted from here.")
        return
    pending = launcher.pending_stop(s.path) if s.live else None
    note = st.empty()
    c0, c1, c3, c4, c5 = st.columns([3, 0.9, 0.9, 1.1, 2.2], vertical_alignment="bottom")
    try:
        with c0:
            at = _stop_choice(s)
        if c1.button("Stop", icon=":material/pause:", key=f"stop_{key}", disabled=not s.live or bool(pending),
                     help="Graceful: the run stays resumable (a last validation runs first)") and can_act("Stopping a run"):
            launcher.stop(s.name, ws.runs, at=at)
            pending = at
        if c3.button("Kill", icon=":material/dangerous:", key=f"kill_{key}", disabled=not s.live, help="SIGKILL the whole process group now") and can_act("Killing a run"):
            launcher.kill(s.name, ws.runs)
            st.toast(f"Killed {s.name}")
        if c4.button("Resume", icon=":material/play_arrow:", key=f"resume_{key}", disabled=s.live or not s.resumable,
                     help=f"Continue from {s.resumable or 'the last checkpoint'}. Ultralytics cannot raise epochs on "
                          f"resume; only {', '.join(sorted(RESUME_ALLOWED))} may change.") and can_act("Resuming a run"):
            launcher.resume(s.name, ws.runs)
            st.toast(f"Resuming {s.name}")
        with c5:
            sure = st.checkbox("Yes, delete all its files", key=f"del_ok_{key}", disabled=s.live,
                               help=f"Deletes the run folder {s.path} and everything in it")
            if st.button("Delete", icon=":material/delete:", key=f"delete_{key}", disabled=s.live or not sure) and can_act("Deleting a run"):
                delete_run(ws.runs, s.name)
                run_view.clear()
                st.session_state.pop("monitor_run", None)
                st.rerun()
    except OmrError as exc:
        st.error(str(exc))
    if pending:
        note.info(f"Stop requested: {launcher.stop_consequence(pending, s.current_epoch, s.batch, s.batches)}",
                  icon=":material/pause_circle:")
    if s.state == "finished":
        st.caption("Finished. Ultralytics cannot raise epochs on resume: to train longer, launch a new run with "
                   f"model `{s.path / 'weights' / 'last.pt'}`.")


def run_panel(view: RunSnapshot, s: RunSummary, now: float) -> None:
    st.subheader(f"{s.name} {state_badge(s.state)}")
    if s.reason:
        st.caption(s.reason)
    damage = view.damage()  # after the poll with samples: gpu.jsonl included
    if damage:
        st.warning("Damaged run files (a worker killed mid-write, a full disk?); the page skipped what it could not "
                   "read: " + " · ".join(damage), icon=":material/broken_image:")
    m = [*st.columns(4), *st.columns(4)]  # two rows: in seven columns at 1280 px labels and durations were cut short
    if s.live and s.current_epoch:  # "Epoch 0/10, Batch 2/6" in the first epoch reads as a bug: name the epoch
        m[0].metric("Epoch in progress", f"{s.current_epoch} of {s.epochs or '?'}", help=f"{s.epoch} epoch(s) done")
    else:
        m[0].metric("Epoch", f"{s.epoch}/{s.epochs or '?'}", help="epochs done of planned")
    m[1].metric("Batch", f"{s.batch}/{s.batches}" if s.batch is not None and s.live else "–")
    m[2].metric(f"Best {s.metric}", f"{s.best_map:.4f}" if s.best_map is not None else "–",
                help=f"epoch {s.best_epoch}, the one best.pt holds" if s.best_epoch else None)
    m[3].metric(f"Last {s.metric}", f"{s.last_map:.4f}" if s.last_map is not None else "–")
    m[4].metric("Elapsed", fmt_duration(s.elapsed_s))
    m[5].metric("ETA", fmt_duration(s.eta_s) if s.live else "–")
    m[6].metric("s/batch", f"{s.s_per_batch:.2f}" if s.s_per_batch else "–")
    show_alerts(evaluate(view, now))
    ep_line, batch_line = last_values_text(view)
    st.text(f"{ep_line}\n{batch_line}")
    _controls(view, s)
    c1, c2 = st.columns([3, 1.2], vertical_alignment="bottom")
    smoothing = c1.slider("Smoothing", 0.0, 0.99, 0.0, 0.01, key="monitor_smoothing",
                          help="Exponential moving average of the curves (raw values stay faint behind)")
    log_y = c2.toggle("Log scale (losses)", key="monitor_log_y",
                      help="Loss axes in powers of ten: a loss growing by orders of magnitude stays readable")
    figs = live_figures(view, smoothing, log_y)
    if not figs:
        st.info("Waiting for the first batch (Ultralytics is loading the data and building the model)…")
    order = ["losses", "metrics", "batches", "lr", "memory", "util", "throughput"]
    keys = [k for k in order if k in figs]
    for i in range(0, len(keys), 2):
        cols = st.columns(2)
        for col, k in zip(cols, keys[i : i + 2]):
            col.plotly_chart(figs[k], key=f"fig_{k}", config={"displaylogo": False})
    with st.expander("Log (last lines)"):
        st.code("\n".join(view.log_tail(60)) or "(empty)", language=None)
    if view.events:
        with st.expander(f"Events ({len(view.events)})"):
            ev = pd.DataFrame(list(view.events[-200:]))
            ev["t"] = pd.to_datetime(ev["t"], unit="s")
            st.dataframe(ev[[c for c in ("t", "kind", "message") if c in ev.columns]], hide_index=True)


@st.fragment(run_every=REFRESH_S)
def monitor() -> None:
    now = time.time()
    dirs = discover_runs(ws.runs)
    if not dirs:
        st.info(f"No runs yet in {ws.runs}. Launch one above (or `omr train …`), or copy an Ultralytics run folder here.")
        return
    views = {name: run_view(str(d), name) for d, name in ((d, run_name(ws.runs, d)) for d in dirs)}
    # GPU samples only for the run on screen (below)
    summaries = sorted((v.poll(samples=False).summary(now) for v in views.values()),
                       key=lambda s: (not s.live, -(s.started or s.updated or 0)))
    st.subheader("Runs")
    st.dataframe(runs_table(summaries), hide_index=True, column_config=RUNS_TABLE_CONFIG, key="runs_table")
    names = [s.name for s in summaries]
    linked = st.query_params.get("run")  # a link from a notification: /training?run=NAME
    if linked in names and not st.session_state.get("monitor_linked"):
        st.session_state["monitor_run"], st.session_state["monitor_linked"] = linked, True
    if st.session_state.get("monitor_run") not in names:
        st.session_state["monitor_run"] = names[0]
    sel = st.selectbox("Watch run", names, key="monitor_run")
    run_panel(views[sel].poll(), next(s for s in summaries if s.name == sel), now)


def demo_box() -> None:
    """Empty workspace: one button engraves a small dataset, converts it and starts a short CPU training."""
    from omr_core.training import BUDGET_MIN, CORE_PRESET, run_demo

    with st.container(border=True):
        st.markdown("**New here?** Engrave 40 pages of music (music21 corpus + verovio), cut them into 640 px tiles "
                    f"with the *{CORE_PRESET}* preset and train `yolov8n.yaml` on the CPU with the `cpu-small` recipe, "
                    f"bounded so the whole demo takes at most {BUDGET_MIN:.0f} minutes on 2 cores. The finished model "
                    "is offered in Review a score (`demo/weights/best.pt`); the recipe is in docs/recipe.md.")
        if st.button("Start the demo", icon=":material/play_circle:", key="demo_start") and can_act("Starting the demo"):
            with st.status("Preparing the demo…", expanded=True) as status:
                bar = st.progress(0.0)

                def progress(done: int, total: int) -> None:
                    bar.progress(min(1.0, done / max(1, total)))

                try:
                    res = run_demo(ws, log=st.write, progress=progress)
                except OmrError as exc:
                    status.update(label="The demo could not start", state="error")
                    st.error(str(exc))
                    return
                bound = f", {res.train_hours * 60:.0f} min of training" if res.train_hours else ""
                status.update(label=f"Demo training started: {res.run_dir.name}{bound}", state="complete", expanded=False)
            st.session_state["monitor_run"] = run_name(ws.runs, res.run_dir)


has_runs = bool(discover_runs(ws.runs))
if not has_runs:
    demo_box()
render_demo_score(ws.runs)
with st.expander("Launch a run", icon=":material/rocket_launch:", expanded=not has_runs):
    launch_form()
with st.expander("Notifications", icon=":material/notifications:"):
    render_notifications()
with st.expander("Run folders from elsewhere (read-only)", icon=":material/folder_open:"):
    st.caption("Any Ultralytics or YOLOv5 run folder, or a folder of them, outside the workspace: listed with the "
               "runs here as @FOLDER/…, read-only (nothing here ever writes to it).")
    add = st.text_input("Folder to add (press Enter)", key="link_path", placeholder="/data/old_runs/detect")
    if add and can_act("Adding a run folder"):
        try:
            found = link_folder(ws.runs, add)
        except OmrError as exc:
            st.error(str(exc))
        else:
            st.session_state.pop("link_path", None)
            st.success(f"Added {add}: {len(found)} run{'s' if len(found) != 1 else ''}, listed below.")
    for f in linked_folders(ws.runs):
        c1, c2 = st.columns([5, 1])
        c1.markdown(f"`{f}`")
        if c2.button("Unlink", key=f"unlink_{f}") and can_act("Unlinking a folder"):
            unlink_folder(ws.runs, f)
            st.rerun()
st.fragment(run_every=2.0)(render_queue)(ws.runs)  # redrawn on its own, like the monitor
monitor()
