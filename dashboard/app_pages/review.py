"""Page "Review a score": detections, staff lines and reconstructed stems/ledger lines on a page."""

from __future__ import annotations

from pathlib import Path

import orjson
import streamlit as st

from dashboard.ui.guard import can_act
from dashboard.ui.review import (
    LAYERS,
    count_pages,
    counts_table,
    digest,
    load_page_cached,
    model_cached,
    overlay_figure,
    page_uri_cached,
    read_cached,
    review_cached,
    save_upload,
    system_crop,
    system_svgs_cached,
)
from omr_core.classes import GROUPS
from omr_core.errors import OmrError
from omr_core.evaluation import crop_case, notes_read_right
from omr_core.raster import encode_png
from omr_core.review import (
    LoadedModel,
    NoteTruth,
    deepscores_page_from_bytes,
    draw_overlay,
    json_bytes,
    list_models,
    midi_bytes,
    models_dir,
    musicxml_bytes,
    parse_noteheads,
)
from omr_core.workspace import get_workspace

ws = get_workspace()
NO_MODEL = "No model (staff lines, heads.json)"
UPLOAD = "Upload a .pt file"
AS_TRAINED = "as trained"
TILING = {AS_TRAINED: None, "whole page": False, "tiled": True}

st.title("Review a score")
st.caption(
    "Upload a page (PNG, JPEG, TIFF or PDF). Staff lines are found on the page itself; with a trained model its "
    "detections are shown and stems and ledger lines are rebuilt from its noteheads; without one, upload the "
    "noteheads as heads.json to judge the reconstruction on its own. Zoom with the mouse wheel, hover a box for "
    "its class and confidence."
)

# ------------------------------------------------------------------------------------------------------- inputs
with st.container(border=True):
    c1, c2 = st.columns([3, 2])
    with c1:
        up = st.file_uploader(
            "Score page",
            type=["png", "jpg", "jpeg", "tif", "tiff", "pdf", "bmp", "webp"],
            key="rv_page",
            help="The type is read from the content, not the name; pages above 80 Mpx are refused.",
        )
    with c2:
        choices = list_models(ws)
        labels = [NO_MODEL, *[c.label for c in choices], UPLOAD]
        # The shipped reference model is the default: a first upload gets real detections without training.
        default = 1 if choices and choices[0].shipped else 0
        choice = st.selectbox("Model", labels, index=default, key="rv_model",
                              help=f"reference models in {models_dir()}, best.pt / last.pt of the runs in {ws.runs}; "
                              "without a model the page shows its staff lines, and stems and ledger lines rebuilt "
                              "from an uploaded heads.json")
        model_up = st.file_uploader("Model checkpoint (.pt)", type=["pt"], key="rv_model_up") if choice == UPLOAD else None
        heads_up = st.file_uploader(
            "Noteheads to rebuild from (optional heads.json)",
            type=["json"],
            key="rv_heads",
            help='A list of {"bbox": [x0, y0, x1, y1], "name": "noteheadBlackOnLine"}; overrides the model\'s noteheads.',
        )
    s1, s2, s3, s4 = st.columns(4)
    conf = s1.slider("Confidence", 0.01, 1.0, 0.25, 0.01, key="rv_conf")
    iou = s2.slider("NMS IoU", 0.05, 0.95, 0.5, 0.05, key="rv_iou")
    # "as trained": the tile size and imgsz the model records (omr_core/training/scale.py); a person may override.
    size = s3.select_slider("imgsz", options=[AS_TRAINED, 320, 480, 640, 768, 896, 1024, 1280, 1536, 2048],
                            value=AS_TRAINED, key="rv_imgsz", help="The size the model was trained at, or one chosen by hand.")
    tiling = s4.selectbox("Tiling", list(TILING), key="rv_tiling", help="As trained: tiles exactly when the model was "
                          "trained on tiles. Tiled: overlapping tiles at full resolution, merged with NMS.")
    imgsz = size if isinstance(size, int) else None  # AS_TRAINED: the size the weights record
    tile = TILING[tiling]

if up is None:
    st.info("Upload a score page to start. Without a model the page still shows its staff lines (and rebuilt stems and ledger lines from an uploaded heads.json).")
    st.stop()

# ------------------------------------------------------------------------------------------------- load inputs
data = up.getvalue()
page_key = digest(data)
try:
    n_pages = count_pages(page_key, data)
    page_no = 1
    if n_pages > 1:
        page_no = int(st.number_input(f"Page (1-{n_pages})", 1, n_pages, 1, key="rv_page_no"))
    page = load_page_cached(page_key, page_no - 1, up.name, data)
except OmrError as exc:
    st.error(str(exc))
    st.stop()
for note in page.notes:
    st.info(note)

model: LoadedModel | None = None
model_key = ""
try:
    if choice not in (NO_MODEL, UPLOAD):
        picked = choices[labels.index(choice) - 1]
        path = picked.path
        if picked.shipped:
            st.caption(f"Reference model shipped with the project{f' · card: {picked.card.name}' if picked.card else ''}")
        if can_act("Loading a model file"):
            model = model_cached(str(path), path.stat().st_mtime)
            model_key = f"{path}:{path.stat().st_mtime}"
    elif choice == UPLOAD and model_up is not None:
        st.caption("A .pt file runs code when loaded: only upload models you trust.")
        if can_act("Loading an uploaded model file"):
            saved = save_upload(model_up.name, model_up.getvalue())
            model = model_cached(str(saved), saved.stat().st_mtime)
            model_key = saved.name
except OmrError as exc:
    st.error(str(exc))
    model = None

heads = None
heads_key = ""
if heads_up is not None:
    try:
        raw = heads_up.getvalue()
        try:
            items = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise OmrError(f"{heads_up.name}: not valid JSON ({exc})") from None
        if isinstance(items, dict) and "noteheads" in items:
            items = items["noteheads"]
        heads = parse_noteheads(items, source=heads_up.name)
        heads_key = digest(raw)
    except OmrError as exc:
        st.error(str(exc))

# ------------------------------------------------------------------------------------------------------ review
try:
    result = review_cached(
        f"{page_key}:{page_no}", model_key, heads_key, conf, iou, imgsz, tile, up.name, page.gray, model, heads
    )
except OmrError as exc:
    st.error(str(exc))
    st.stop()
for m in result.messages:
    st.warning(m)

# ------------------------------------------------------------------------------------------------------ overlay
present = [g for g in GROUPS if any(d.group == g for d in result.detections)]
# One row each: side by side, a row of pills that does not fit is cut off ("ledger lines (rebuil").
groups = set(st.pills("Class groups", present, default=present, selection_mode="multi", key="rv_groups") or []) if present else set()
layers = set(st.pills("Layers", list(LAYERS), default=list(LAYERS), format_func=LAYERS.__getitem__, selection_mode="multi", key="rv_layers") or [])

left, right = st.columns([2.6, 1.4])
with left:
    fig = overlay_figure(result, page_uri_cached(f"{page_key}:{page_no}", page.gray), groups=groups, layers=layers)
    st.plotly_chart(fig, width="stretch", config={"scrollZoom": True, "displaylogo": False}, key="rv_overlay")
with right:
    t = result.timings
    st.metric("Staves", len(result.staves), help=f"{len(result.systems)} systems")
    if result.inference is not None:
        st.caption(f"Model run: {result.inference.summary}")
    st.caption(
        f"{page.width}×{page.height} px · inference {t.get('inference', 0) * 1000:.0f} ms · staff {t.get('staff', 0) * 1000:.0f} ms · "
        f"reconstruction {t.get('reconstruct', 0) * 1000:.0f} ms"
    )
    table = counts_table(result)
    st.dataframe(table, hide_index=True, width="stretch", height=min(700, 35 * (len(table) + 1) + 3),
                 column_config={"count": st.column_config.NumberColumn("count", width="small"),
                                "group": st.column_config.TextColumn("group", width="small")})

# ------------------------------------------------------------------------------------------------------ exports
stem = Path(up.name).stem + (f"-p{page_no}" if n_pages > 1 else "")
e1, e2, e3 = st.columns(3)
# Exports are built only when clicked (deferred data): nothing is encoded on every rerun.
gray, shown_groups, shown_layers = page.gray, set(groups), tuple(layers)
e1.download_button("Result JSON", lambda: json_bytes(result.to_dict()), f"{stem}-review.json", "application/json", key="rv_dl_json")
e2.download_button(
    "Annotated PNG",
    lambda: encode_png(draw_overlay(gray, result, groups=shown_groups, layers=shown_layers)),
    f"{stem}-overlay.png",
    "image/png",
    key="rv_dl_png",
)
e3.download_button(
    "DeepScoresV2 JSON (for the audit)",
    lambda: json_bytes(result.to_deepscores(f"{stem}.png")),
    f"{stem}-deepscores.json",
    "application/json",
    key="rv_dl_ds",
)

# ------------------------------------------------------------------------------------------------------ read
st.subheader("Read the music")
gt_up = st.file_uploader(
    "Symbols to read instead of the model's (optional: this page's DeepScoresV2 JSON)",
    type=["json"],
    key="rv_read_ds",
    help="Reads the page's own annotations (ground truth); pages engraved by `omr synth` also say how many notes were read right.",
)
if not st.toggle("Read the notes", key="rv_read", help="Pitch, rhythm, chords and measures, rendered back with verovio next to the page."):
    st.stop()
symbols: list[object] = list(result.detections)
truth: tuple[NoteTruth, ...] = ()
symbols_key = f"{model_key}:{conf}:{iou}:{imgsz}:{tile}"
if gt_up is not None:
    try:
        dpage = deepscores_page_from_bytes(gt_up.getvalue(), gt_up.name)
    except OmrError as exc:
        st.error(str(exc))
        st.stop()
    symbols, truth, symbols_key = list(dpage.glyphs), dpage.truth, digest(gt_up.getvalue())
elif not result.detections:
    st.info("Choose a model (or upload this page's DeepScoresV2 JSON) to read the notes.")
    st.stop()
try:
    reading = read_cached(f"{page_key}:{page_no}", symbols_key, page.gray, symbols)
    xml = musicxml_bytes(reading, title=stem)
    svgs = system_svgs_cached(f"{page_key}:{page_no}", symbols_key, reading)
except OmrError as exc:
    st.error(str(exc))
    st.stop()
for m in reading.messages:
    st.warning(m)
doubtful = sum(1 for n in reading.notes if n.uncertain)
m1, m2, m3, m4 = st.columns(4)
m1.metric("Notes read", len(reading.notes))
m2.metric("Uncertain (red)", doubtful)
m3.metric("Measures", len({(e.system, e.measure) for e in (*reading.notes, *reading.rests)}))
score = notes_read_right(reading, truth) if truth else None
if score is not None:
    m4.metric("Notes read right", f"{score.both_share:.1%}", help=f"pitch right {score.pitch_share:.1%}, pitch + duration {score.both_share:.1%} of {score.notes} notes")
r1, r2 = st.columns(2)
r1.download_button("MusicXML", xml, f"{stem}.musicxml", "application/vnd.recordare.musicxml+xml", key="rv_dl_xml")
r2.download_button("MIDI", lambda: midi_bytes(reading), f"{stem}.mid", "audio/midi", key="rv_dl_midi")
for k, svg in enumerate(svgs):
    c1, c2 = st.columns(2)
    n_sys = [n for n in reading.notes if n.system == k]
    c1.image(system_crop(page.gray, reading, k), caption=f"System {k + 1} on the page")
    c2.image(svg, caption=f"System {k + 1} as read: {len(n_sys)} notes, {sum(1 for n in n_sys if n.uncertain)} uncertain in red")
if score is not None and score.wrong:
    with st.expander(f"Notes read wrong ({len(score.wrong)})", expanded=False):
        shown = score.wrong[:48]
        st.image(
            [crop_case(page.gray, w.bbox, min_context=int(3 * reading.staves[0].space) if reading.staves else 48, size=160) for w in shown],
            caption=[f"{w.truth_pitch} ({w.truth_quarter_length}) read {w.read_pitch or '—'} ({w.read_quarter_length})" for w in shown],
        )
        if len(score.wrong) > len(shown):
            st.caption(f"the first {len(shown)} of {len(score.wrong)}; durations in quarter notes")
