"""The CPU recipe that learns on a small machine, as data: the classes, the tile scale and the training arguments.

The numbers and what they were measured against are in docs/recipe.md. Two presets are built from these
values: the convert preset `READING_PRESET` (``omr_core.audit.PRESETS``) and the training preset ``cpu-small``
(``omr_core.training.spec.PRESETS``). ``omr demo`` and the Training page's first-start button use both.
"""

from __future__ import annotations

from typing import Any

#: Name of the convert preset (``omr convert --preset reading``).
READING_PRESET = "reading core, tiled for small machines"
#: Name of the training preset (``omr train --preset cpu-small``).
CPU_PRESET = "cpu-small"

#: The 49 classes a reader of the music needs and a small model can learn; everything else is left out (thin
#: symbols are rebuilt from noteheads and staff lines instead), and of these the ones absent from the data too.
READING_CLASSES: tuple[str, ...] = (
    "noteheadBlackOnLine", "noteheadBlackInSpace", "noteheadHalfOnLine", "noteheadHalfInSpace",
    "noteheadWholeOnLine", "noteheadWholeInSpace",
    "clefG", "clefF", "clefCAlto", "clefCTenor", "clef8",
    "accidentalSharp", "accidentalFlat", "accidentalNatural", "accidentalDoubleSharp", "accidentalDoubleFlat",
    "keySharp", "keyFlat", "keyNatural",
    "timeSigCommon", "timeSigCutCommon", "timeSig2", "timeSig3", "timeSig4", "timeSig6", "timeSig8",
    "restWhole", "restHalf", "restQuarter", "rest8th", "rest16th", "rest32nd", "restDoubleWhole",
    "flag8thUp", "flag8thDown", "flag16thUp", "flag16thDown", "flag32ndUp", "flag32ndDown",
    "augmentationDot", "articStaccatoAbove", "articStaccatoBelow", "articAccentAbove", "articAccentBelow",
    "fermataAbove", "dynamicP", "dynamicF", "tuplet3", "repeatDot",
)

#: Tiles of 640 page pixels trained at imgsz 320: an engraved notehead (~28x24 px on a 2211x3126 page) is
#: ~14x12 px at the training size, instead of ~6 px when a whole page is shrunk to 640.
TILE = 640
OVERLAP = 0.2
IMGSZ = 320

#: Sheet music must not be mirrored or rotated (a mirrored clef is another symbol) nor colour-jittered.
SHEET_MUSIC_ARGS: dict[str, Any] = {"fliplr": 0.0, "flipud": 0.0, "degrees": 0.0, "hsv_h": 0.0, "hsv_s": 0.0}

#: SGD at 0.02 with one optimizer step per batch (nbs = batch) converges in a few epochs; Ultralytics'
#: optimizer=auto picks AdamW at lr 7e-5 for 131 classes, far too slow for a short CPU run.
CPU_SMALL_ARGS: dict[str, Any] = {
    **SHEET_MUSIC_ARGS,
    "imgsz": IMGSZ,
    "batch": 8,
    "optimizer": "SGD",
    "lr0": 0.02,
    "lrf": 0.1,
    "momentum": 0.9,
    "nbs": 8,
    "warmup_epochs": 0.5,
    "close_mosaic": 2,
    "scale": 0.3,
    "translate": 0.1,
    "device": "cpu",
}

#: The model the recipe trains from scratch (no weights are downloaded).
MODEL = "yolov8n.yaml"
