"""Warnings of the validation pass: Ultralytics' NMS time limit is counted and explained, not hidden."""

from __future__ import annotations

import logging

from omr_core.evaluation.validate import Capture, _Warnings, nms_limit_hits, nms_warning


def test_nms_time_limit_is_counted() -> None:
    cap = Capture()
    log = logging.getLogger("omr-test-ultralytics")
    handler = _Warnings(cap.warnings)
    log.addHandler(handler)
    try:
        log.warning("NMS time limit 2.400s exceeded")
        log.info("not a warning")
        log.warning("Dataset images contain up to 801 objects")
        log.warning("NMS time limit 2.400s exceeded")
    finally:
        log.removeHandler(handler)
    assert len(cap.warnings) == 3
    assert nms_limit_hits(cap.warnings) == 2
    text = nms_warning(2)
    assert "2 batch(es)" in text and "smaller batch" in text
    assert nms_warning(0) == ""
