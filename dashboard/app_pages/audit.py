"""Page "Class audit": see every class before excluding any, plan exclusions by name, convert to YOLO."""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from dashboard.ui.audit import (
    acknowledge_plan,
    column_config,
    dataset_key,
    density_figure,
    distribution_figure,
    gallery_cached,
    load_cached,
    page_images,
    plan_table,
    save_uploads,
    show_gallery,
    show_lookup,
    stats_cached,
    summary_cached,
    table_view,
    workspace_datasets,
)
from dashboard.ui.guard import can_act
from omr_core.audit import (
    PRESETS,
    DatasetSummary,
    ExclusionPlan,
    check_yaml,
    class_stats,
    effective_plan,
    excluded_classes,
    forecasts,
    instances_per_image,
    lookup_names,
    make_plan,
    resolve_ids,
    split_tokens,
    summarize,
)
from omr_core.datasets import LoadedDataset, expand_sources, is_multi_source
from omr_core.errors import OmrError
from omr_core.workspace import get_workspace

log = logging.getLogger("omr.audit")
ws = get_workspace()

st.title("Class audit")
st.caption(
    "Every class of a dataset, by its official name, before anything is excluded. Exclusions are planned by name; "
    "ids are shown as the class they really are and must be confirmed; critical classes need an explicit override."
)

# ------------------------------------------------------------------------------------------------ choose a dataset
with st.container(border=True):
    st.subheader("Dataset")
    found = workspace_datasets(ws.datasets)
    c1, c2 = st.columns(2)
    with c1:
        picked = st.multiselect(
            f"From the workspace ({ws.datasets})",
            found,
            key="audit_ws_pick",
            format_func=lambda p: str(Path(p).relative_to(ws.datasets)) if p.startswith(str(ws.datasets)) else p,
            help="DeepScoresV2 JSON files (e.g. train + test) or one YOLO data.yaml",
            placeholder="no dataset found" if not found else "choose JSON file(s) or a data.yaml",
        )
    with c2:
        typed = st.text_input(
            "Or type path(s)",
            key="audit_path",
            placeholder="/data/ds2_dense/deepscores_train.json; /data/ds2_dense/deepscores_test.json",
            help="separate several files with ';'. A folder or a glob (/data/ds2_complete/deepscores-complete-*) is read "
            "file by file through a Parquet cache: a second opening reads no JSON, a damaged file is named and skipped.",
        )
    with st.expander("More: page images folder, upload"):
        images_dir = st.text_input("Page images folder (DeepScoresV2 JSON; default: images/ next to the JSON)", key="audit_images_dir")
        uploads = st.file_uploader("Upload annotation JSON (no images: no gallery)", type=["json"], accept_multiple_files=True, key="audit_upload")
    imgsz = int(st.select_slider("Training imgsz", options=[320, 416, 512, 640, 768, 896, 1024, 1280, 1536, 2048], value=1024, key="audit_imgsz"))

paths = [*picked, *[t.strip() for t in typed.split(";") if t.strip()]]
if uploads:
    paths += save_uploads(list(uploads))
if not paths:
    st.info(f"Choose a dataset above: DeepScoresV2 JSON file(s) or a YOLO data.yaml. Datasets in {ws.datasets} are listed automatically.")
    st.stop()

streaming = is_multi_source(paths)  # a folder or a glob: file by file through the Parquet cache
ds: LoadedDataset | DatasetSummary
try:
    if streaming:
        key = dataset_key(tuple(str(p) for p in expand_sources(paths)))
        reading = st.empty()

        def _reading(done: int, total: int, name: str) -> None:
            reading.progress(done / total, text=f"Reading {name} ({done}/{total} files; read files are cached)…")

        ds = summary_cached(key, images_dir.strip() or None, _progress=_reading)
        reading.empty()
        stats = class_stats(ds, imgsz)
    else:
        key = dataset_key(tuple(paths))
        with st.spinner("Reading the dataset…"):
            ds = load_cached(key, images_dir.strip() or None)
            stats = stats_cached(key, imgsz, images_dir.strip() or None)
except OmrError as exc:
    st.error(str(exc))
    st.stop()

n_img = len(page_images(ds))
total = int(stats["instances"].sum())
m = st.columns(4)
m[0].metric("Images", f"{n_img:,}")
m[1].metric("Instances", f"{total:,}")
m[2].metric("Classes with instances", f"{int((stats['instances'] > 0).sum())} / {len(stats)}")
m[3].metric("Source", ds.kind if not streaming else f"{ds.kind}, {len(ds.paths)} files")
for issue in ds.issues:
    st.warning(f"{getattr(issue, 'message', issue)}", icon=":material/warning:")

# ------------------------------------------------------------------------------------------------ exclusion plan
st.subheader("Exclusion plan (by name)")
names = list(ds.names)
info = {r["name"]: r for r in stats.to_dict("records")}


def _label(n: str) -> str:
    r = info[n]
    ident = f"id {r['id']}" if r["official"] else "unofficial"
    crit = " · CRITICAL" if r["critical"] else ""
    return f"{n} ({ident}, {r['instances']:,}){crit}"


def _add(name: str, why: str) -> None:
    if name not in st.session_state["audit_exclude"]:
        st.session_state["audit_exclude"] = [*st.session_state["audit_exclude"], name]
    st.session_state["audit_reasons"].setdefault(name, why)


def _add_typed() -> None:
    # Enter adds exactly the names typed; a partial name adds nothing and lists its candidates instead.
    found = lookup_names(names, st.session_state["audit_names"])
    for n in found.exact:
        _add(n, "typed name")
    st.session_state["audit_lookup"] = found
    st.session_state["audit_names"] = ""


def _apply_preset() -> None:
    pr = PRESETS[st.session_state["audit_preset"]]
    st.session_state["audit_exclude"] = list(pr.exclusions(names, [n for n in names if info[n]["instances"] > 0]))
    st.session_state["audit_reasons"] = {n: f"preset {pr.name}" for n in st.session_state["audit_exclude"]}
    st.session_state["audit_lookup"] = None


def _remove() -> None:
    gone = st.session_state.get("audit_remove")
    st.session_state["audit_exclude"] = [n for n in st.session_state["audit_exclude"] if n != gone]
    st.session_state["audit_reasons"].pop(gone, None)


def _clear_plan() -> None:
    st.session_state["audit_exclude"] = []
    st.session_state["audit_reasons"] = {}
    st.session_state["audit_lookup"] = None
    st.session_state["audit_ids"] = ""
    st.session_state["audit_ids_ok"] = False


def _ids_changed() -> None:
    # any edit of the ids withdraws the confirmation: it was given for the names shown then, not for these
    st.session_state["audit_ids_ok"] = False


def _ids_confirmed() -> None:
    st.session_state["audit_ids_ok_for"] = split_tokens(st.session_state.get("audit_ids", ""))


st.session_state.setdefault("audit_exclude", [])
st.session_state.setdefault("audit_reasons", {})
st.session_state["audit_exclude"] = [n for n in st.session_state["audit_exclude"] if n in names]
pc = st.columns([3, 1, 1])
pc[0].selectbox("Preset", list(PRESETS), key="audit_preset", help="\n\n".join(f"**{p}**: {pr.description}" for p, pr in PRESETS.items()))
pc[1].button("Apply preset", on_click=_apply_preset, key="audit_apply_preset", width="stretch")
pc[2].button("Clear plan", on_click=_clear_plan, key="audit_clear", width="stretch")
st.caption(f"Preset \"{st.session_state['audit_preset']}\": {PRESETS[st.session_state['audit_preset']].description}")
st.text_input(
    "Classes to exclude", key="audit_names", on_change=_add_typed, placeholder="exact names, e.g. stem tie slur, then Enter",
    help="Enter adds exactly the names typed (several may be pasted, separated by spaces or commas). "
    "A partial name adds nothing: the classes containing it are listed, and each needs its own click.",
)
show_lookup(st.session_state.get("audit_lookup"), names, _add)
chosen = list(st.session_state["audit_exclude"])
if chosen:
    rc = st.columns([3, 1])
    rc[0].selectbox("Remove from the plan", chosen, key="audit_remove", format_func=_label)
    rc[1].button("Remove", key="audit_remove_btn", on_click=_remove, width="stretch")

ids_text = st.text_input(
    "Exclude by id (resolved to names; you must confirm)", key="audit_ids", placeholder="e.g. 122 123 121",
    on_change=_ids_changed,
    help="Ids are how our users lost a run (6 is clefG, not beam). They are shown as names and only join the plan once confirmed.",
)
id_names: list[str] = []
if ids_text.strip():
    res = resolve_ids(split_tokens(ids_text))
    st.markdown("\n".join(f"- **{r.label}**" for r in res))
    bad = [r for r in res if r.category is None or r.category.name not in names]
    if bad:
        st.error("Not classes of this dataset: " + ", ".join(r.token for r in bad))
    confirmed = st.checkbox("Yes, these names are the classes I mean to exclude", key="audit_ids_ok", on_change=_ids_confirmed)
    if confirmed and st.session_state.get("audit_ids_ok_for") == split_tokens(ids_text):
        id_names = [r.category.name for r in res if r.category is not None and r.category.name in names]
    else:
        st.info("Typed ids are not part of the plan until you confirm the names above.")

override = st.checkbox(
    "Override: allow excluding critical classes (logged in excluded_classes.json and the conversion log)",
    key="audit_override",
)
drop_empty = st.checkbox("Also exclude classes with no instance here", key="audit_drop_empty")

reasons = {**st.session_state["audit_reasons"], **{n: f"typed id {info[n]['id']} (confirmed)" for n in id_names if n not in chosen}}
requested = make_plan(
    names,
    [*chosen, *id_names],
    allow_critical=override,
    reasons=reasons,
    drop_empty=[n for n in names if info[n]["instances"] == 0] if drop_empty else (),
)
for v in requested.violations:
    st.error(f"Refused: {v}", icon=":material/block:")
plan: ExclusionPlan = effective_plan(requested)  # refused critical classes stay in the dataset
if plan.override_log():
    st.warning(plan.override_log(), icon=":material/priority_high:")
    if st.session_state.get("_audit_logged") != plan.override_log():
        log.warning("%s (dashboard, dataset %s)", plan.override_log(), ", ".join(paths))
        st.session_state["_audit_logged"] = plan.override_log()

summ = summarize(stats, plan)
s = st.columns(4)
s[0].metric("Kept classes", summ.kept_classes)
s[1].metric("Excluded classes", summ.excluded_classes)
s[2].metric("Instances removed", f"{summ.instances_removed:,}", f"{summ.removed_pct:.1f}% of all", delta_color="off", delta_arrow="off")
s[3].metric("Kept but empty", len(summ.become_empty), help="kept classes with no instance here: they can never be learned")
plan_rows = excluded_classes(plan, stats)
if plan_rows:
    with st.container(key="audit_plan_table"):
        st.dataframe(plan_table(plan_rows), hide_index=True, width="stretch", height="auto" if len(plan_rows) <= 10 else 400,
                     column_config={"instances": st.column_config.NumberColumn("instances", format="localized")})
if summ.become_empty:
    with st.expander(f"{len(summ.become_empty)} kept classes have no instance in this dataset"):
        st.write(", ".join(summ.become_empty))

# ------------------------------------------------------------------------------------------------ tabs
t_table, t_chart, t_gallery, t_density, t_yaml, t_convert = st.tabs(
    ["Classes", "Distribution", "Visual audit", "Density & memory", "Check a data.yaml", "Convert to YOLO"]
)

with t_table:
    q = st.text_input("Search (name, group, id, flag)", key="audit_search", placeholder="e.g. clef, critical, 42, < 2 px")
    view = table_view(stats, q, set(plan.excluded))
    with st.container(key="audit_class_table"):
        # placeholder "": a class with no instance has no size; the grid's default placeholder reads "None"
        st.dataframe(view, column_config=column_config(imgsz), hide_index=True, width="stretch",
                     height=min(36 * len(view) + 40, 700), placeholder="")
    st.caption(f"{len(view)} of {len(stats)} classes · click a header to sort · median sizes at imgsz {imgsz} use "
               "scale = imgsz / max(page width, height) per page, like Ultralytics' letterbox.")

with t_chart:
    cc = st.columns(2)
    log_x = cc[0].toggle("Log scale", value=True, key="audit_log")
    hide_empty = cc[1].toggle("Hide empty classes", value=False, key="audit_hide_empty")
    st.plotly_chart(distribution_figure(stats, log_x=log_x, hide_empty=hide_empty, excluded=set(plan.excluded)), width="stretch")
    st.caption("Hatched bars: excluded by the current plan.")

with t_gallery:
    has_images = bool((page_images(ds)["path"].fillna("").astype(str) != "").any())
    if isinstance(ds, DatasetSummary):
        st.info("The visual audit reads the annotations themselves: choose the file(s) to look at instead of a folder or a glob.")
    elif not has_images:
        st.info("No page images were found for this dataset, so there is nothing to show. Put the pages in images/ "
                "next to the JSON, or give the page images folder above.")
    else:
        present = [n for n in names if info[n]["instances"] > 0]
        gc = st.columns([3, 1, 1])
        cls_name = gc[0].selectbox("Class", present, key="audit_gallery_class", format_func=_label)
        n_crops = gc[1].number_input("Crops", 1, 48, 12, key="audit_gallery_n")
        seed = gc[2].number_input("Seed", 0, 10_000, 0, key="audit_gallery_seed")
        if cls_name:
            items = gallery_cached(key, cls_name, int(n_crops), int(seed), 160, images_dir.strip() or None)
            if not items:
                st.info(f"No instance of {cls_name} has its page image on disk.")
            show_gallery(items)

with t_density:
    dc = st.columns(3)
    batch = int(dc[0].number_input("Batch", 1, 1024, 16, key="audit_batch"))
    vram = float(dc[1].number_input("GPU memory (GiB)", 1.0, 1024.0, 24.0, step=1.0, key="audit_vram"))
    dc[2].metric("imgsz", imgsz)
    before = instances_per_image(ds)
    after = instances_per_image(ds, plan)
    st.plotly_chart(density_figure(before, after), width="stretch")
    fb, fa = forecasts(ds, plan, imgsz=imgsz, batch=batch, vram_bytes=int(vram * (1 << 30)))
    fc = st.columns(2)
    for col, label, f in ((fc[0], "Before plan", fb), (fc[1], "After plan", fa)):
        with col:
            st.markdown(f"**{label}** · {f.nc} classes")
            st.metric("Max labels on one training image", f"{f.max_labels:,}", help="max_num_obj = 4 × this (mosaic)")
            st.metric(f"Assigner envelope at batch {batch}", f"{f.gib:.2f} GiB",
                      "fits" if f.fits else "does NOT fit", delta_color="normal" if f.fits else "inverse")
            st.metric(f"Largest batch that fits {vram:.0f} GiB", f.max_batch)
    st.caption(
        "Envelope from Ultralytics' AutoBatch (ultralytics.utils.torch_utils.profile_ops): "
        "batch × anchors × 6 × (max_num_obj + 2·nc) × 4 bytes, anchors = Σ (imgsz/s)² for s = 8, 16, 32, "
        "max_num_obj = 4 × max labels per training image. The model's own activations come on top."
    )

with t_yaml:
    yamls = [p for p in workspace_datasets(ws.datasets) if p.endswith((".yaml", ".yml"))]
    yc = st.columns(2)
    ypick = yc[0].selectbox("data.yaml from the workspace", [""] + yamls, key="audit_yaml_pick")
    ytyped = yc[1].text_input("or its path", key="audit_yaml_path")
    ypath = ytyped.strip() or ypick
    st.caption("Intent = the current plan: its excluded names must be absent; critical names must be present.")
    if ypath:
        try:
            chk = check_yaml(ypath, plan.excluded)
        except OmrError as exc:
            st.error(str(exc))
        else:
            (st.success if chk.ok else st.error)("\n\n".join(chk.lines()))

with t_convert:
    st.markdown(f"Writes a YOLO dataset into **{ws.datasets}** (temporary folder, verified, then renamed).")
    cv = st.columns(3)
    out_name = cv[0].text_input("Output folder name", key="audit_out", placeholder="ds2_core_yolo")
    images_mode = cv[1].selectbox("Page images", ["hardlink", "symlink", "copy"], key="audit_images_mode")
    val_from = cv[2].selectbox("Validation set", ["test", "split"], key="audit_val_from",
                               format_func=lambda v: "the source's test split" if v == "test" else "carved from train (10%)")
    tc = st.columns(3)
    tile_on = tc[0].checkbox("Tile pages", key="audit_tile_on")
    tile = int(tc[1].number_input("Tile size (px)", 256, 4096, 1024, step=64, key="audit_tile", disabled=not tile_on))
    overlap = float(tc[2].number_input("Overlap", 0.0, 0.5, 0.2, step=0.05, key="audit_overlap", disabled=not tile_on))
    overwrite = st.checkbox("Replace the folder if it exists", key="audit_overwrite")
    acked = acknowledge_plan(plan, plan_rows)
    disabled = bool(requested.violations) or not out_name.strip() or not acked or streaming
    if streaming:
        st.caption("A folder or a glob is converted from the command line: `omr convert " + " ".join(paths) + " OUT`.")
    elif requested.violations:
        st.caption("Conversion is disabled while the plan asks for a refused critical exclusion.")
    elif not acked:
        st.caption("Conversion is enabled once you have read and acknowledged the plan above.")
    if (st.button("Convert", type="primary", disabled=disabled, key="audit_convert") and can_act("Converting a dataset")
            and isinstance(ds, LoadedDataset)):
        from omr_core.audit.convert import ConvertOptions, convert
        from omr_core.security import sanitize_run_name

        try:
            out = ws.confine(ws.datasets / sanitize_run_name(out_name))
            slot = st.empty()  # the bar goes away on failure: no "Converting…" left above an error
            bar = slot.progress(0.0, text="Converting…")

            def progress(done: int, total: int) -> None:
                bar.progress(done / max(total, 1), text=f"Converting… {done}/{total}")

            rep = convert(
                ds,
                out,
                plan,
                ConvertOptions(imgsz=imgsz, tile=tile if tile_on else None, overlap=overlap, val_from=val_from,
                               images=images_mode, overwrite=overwrite),
                progress=progress,
                log=lambda m_: log.info("%s", m_),
            )
        except OmrError as exc:
            if "slot" in locals():
                slot.empty()
            st.error(f"Conversion failed, nothing was written: {exc}")
        else:
            bar.progress(1.0, text="Done")
            st.success(f"Wrote {rep.out} · {rep.labels:,} labels · {len(rep.names)} classes · {rep.seconds:.1f} s")
            st.code("\n".join(rep.verification.lines), language=None)
