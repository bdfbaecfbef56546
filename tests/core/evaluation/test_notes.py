"""Notes read right next to mAP: the shipped reference model evaluated on engraved pages, their notes read and explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from omr_core.evaluation.evaluate import Evaluation, evaluate
from omr_core.evaluation.note_causes import CAUSE_KINDS
from omr_core.evaluation.notes import evaluate_notes, load_notes, truth_pages, wrong_note_crop
from omr_core.workspace import REPO_ROOT

REFERENCE = REPO_ROOT / "models" / "reading-v2.pt"
SEED = 43  # neither a training seed of the reference model (101, 202) nor the benchmark's (303)


def engraved_evaluation(root: Path, split: str = "train", out: Path | None = None) -> Evaluation:
    """The reference model evaluated (Ultralytics' validator) on 3 engraved pages cut into its training tiles: one
    page in ``val``, two in ``train`` (``out`` None: the workspace's default evaluation folder)."""
    from omr_core.evaluation.model_bench import _validator_set, engrave_heldout
    from omr_core.review.inference import load_model

    info = load_model(REFERENCE, warm_up=False).info
    test_json = engrave_heldout(root, 3, SEED, "none")
    names = [info.canonical[i] for i in sorted(info.canonical)]
    data = _validator_set(test_json, root / "yolo", names, 640, 0.2)
    return evaluate(REFERENCE, data, split, imgsz=320, batch=1, device="cpu", out=out)


@pytest.fixture(scope="module")
def ev(tmp_path_factory: pytest.TempPathFactory) -> Evaluation:
    root = tmp_path_factory.mktemp("evnotes")
    return engraved_evaluation(root, out=root / "evaluation")


def test_notes_read_right_of_an_evaluation_on_engraved_pages(ev: Evaluation) -> None:
    pages = truth_pages(ev)
    assert len(pages) == 2 and all(src.name == "deepscores_test.json" for src, _ in pages)
    seen: list[tuple[int, int]] = []
    notes = evaluate_notes(ev, 0.25, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (2, 2)
    assert notes.pages == 2 and notes.notes > 50 and not notes.message
    assert notes.pitch_share >= 0.9, notes.causes()
    assert notes.pitch_share >= notes.both_share
    assert len(notes.wrong) == notes.notes - notes.both_right
    labels = " ".join(c for c, _ in notes.causes())
    assert notes.wrong and all(w.cause for w in notes.wrong)
    assert any(k in labels for k in (*CAUSE_KINDS, "reader", "several")), labels
    crop = wrong_note_crop(notes.wrong[0])
    assert crop.ndim == 3 and max(crop.shape[:2]) == 160
    # cached in the evaluation folder: read back as it was, and asked again it is not recomputed
    again = load_notes(ev, 0.25)
    assert again == notes
    assert evaluate_notes(ev, 0.25).seconds == notes.seconds


def test_an_evaluation_without_note_truth_says_why(ev: Evaluation) -> None:
    manifest = Path(str(ev.data)).parent / "excluded_classes.json"
    assert manifest.is_file()
    backup = manifest.read_bytes()
    manifest.unlink()  # a YOLO dataset that does not say where its pages came from
    try:
        notes = evaluate_notes(ev, 0.25, force=True)
    finally:
        manifest.write_bytes(backup)
    assert notes.pages == 0 and "note truth" in notes.message and "omr synth" in notes.message


def test_omr_evaluate_prints_notes_read_right_next_to_map(ev: Evaluation, capsys: pytest.CaptureFixture[str]) -> None:
    from omr_core.cli import main as cli_main

    rc = cli_main(["evaluate", "--model", str(ev.model), "--data", str(ev.data), "--split", "train", "--imgsz", "320",
                   "--batch", "1", "--device", "cpu", "--out", str(ev.folder), "--no-report", "--notes", "2"])
    out = capsys.readouterr().out
    assert rc == 0, out
    notes = load_notes(ev, 0.25)
    assert notes is not None
    lines = out.splitlines()
    at_map = next(i for i, line in enumerate(lines) if "mAP50" in line)
    assert lines[at_map + 1] == (
        f"notes read right (2 pages with note truth, {notes.notes} notes): "
        f"pitch {notes.pitch_share:5.3f}  pitch + duration {notes.both_share:5.3f}"
    )
    top_cause, n = notes.causes()[0]
    assert f"{n:5d} wrong notes: {top_cause}" in out
    assert "notes-c0.25.json" in out
