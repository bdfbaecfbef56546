"""TaskAlignedAssigner memory forecast: Ultralytics' own AutoBatch envelope, before training starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: Detection strides of the YOLOv8/11 heads (P3, P4, P5); Ultralytics reads them from ``model.stride``.
STRIDES: tuple[int, ...] = (8, 16, 32)

#: Ultralytics multiplies the densest training image's label count by 4 because a mosaic joins four images
#: (``DetectionTrainer.auto_batch`` in ultralytics/models/yolo/detect/train.py).
MOSAIC_FACTOR = 4

#: Fraction of free GPU memory AutoBatch aims for when ``batch=-1`` (ultralytics/utils/autobatch.py).
AUTOBATCH_FRACTION = 0.6

GIB = 1 << 30


def anchors(imgsz: int, strides: tuple[int, ...] = STRIDES) -> int:
    """Number of anchor points of a square ``imgsz`` input: ``Σ (imgsz/s)²`` over the strides.

    Same expression as ``profile_ops`` in ultralytics/utils/torch_utils.py
    (``int(sum((w / s) * (h / s) for s in m.stride))``), float division then truncation.

    Examples:
        >>> anchors(640)
        8400
    """
    return int(sum((imgsz / s) * (imgsz / s) for s in strides))


def max_num_obj(max_labels: int) -> int:
    """The assigner's padded object count for a dataset whose densest image has ``max_labels`` labels."""
    return int(max_labels) * MOSAIC_FACTOR


def assigner_bytes(batch: int, imgsz: int, max_labels: int, nc: int) -> int:
    """Bytes of the detection-loss envelope Ultralytics' AutoBatch adds per batch.

    Follows ``ultralytics.utils.torch_utils.profile_ops`` (8.4.x), the code AutoBatch
    (``ultralytics.utils.autobatch.autobatch``) calls with ``max_num_obj``::

        mem += x.shape[0] * anchors * 6 * (max_num_obj + 2 * len(m.names)) * 4 / 2**30  # GiB

    i.e. ``batch × anchors × 6 × (max_num_obj + 2·nc) × 4`` bytes, where ``max_num_obj`` is 4 × the most labels on
    one training image (``DetectionTrainer.auto_batch``). The factor 6 covers the TaskAlignedAssigner's
    (batch, max_num_obj, anchors) metric/top-k tensors and the classification path (``2·nc``: validation runs the
    loss at up to twice the batch). It does not include the model's own activations, which AutoBatch profiles.

    Args:
        batch: Images per batch.
        imgsz: Training image size (square letterbox).
        max_labels: Most labels on one training image (after exclusion and tiling).
        nc: Number of classes in the head.

    Returns:
        The envelope in bytes.

    Examples:
        >>> assigner_bytes(1, 640, 1, 1)  # 8400 anchors x 6 x (4 + 2) x 4 bytes
        1209600
    """
    if batch < 0 or imgsz <= 0 or max_labels < 0 or nc < 0:
        raise ValueError("batch, max_labels and nc must be >= 0 and imgsz > 0")
    return int(batch) * anchors(imgsz) * 6 * (max_num_obj(max_labels) + 2 * int(nc)) * 4


def max_batch_that_fits(
    vram_bytes: int,
    imgsz: int,
    max_labels: int,
    nc: int,
    *,
    fraction: float = 1.0,
    model_bytes_per_image: int = 0,
) -> int:
    """Largest batch whose assigner envelope (plus optional per-image model memory) fits ``fraction × vram``.

    With the defaults this is an upper bound: the model's activations come on top (AutoBatch profiles them and
    then targets 60 % of free memory, see `AUTOBATCH_FRACTION`).

    Args:
        vram_bytes: GPU memory in bytes.
        imgsz: Training image size.
        max_labels: Most labels on one training image.
        nc: Number of classes.
        fraction: Share of ``vram_bytes`` the batch may use.
        model_bytes_per_image: Optional estimate of the model's own memory per image.

    Returns:
        The batch size (0 when not even one image fits).
    """
    per_image = assigner_bytes(1, imgsz, max_labels, nc) + max(0, int(model_bytes_per_image))
    budget = int(vram_bytes * fraction)
    if per_image <= 0:
        return 0 if budget <= 0 else 1 << 20
    return max(0, budget // per_image)


@dataclass(frozen=True)
class Forecast:
    """Assigner memory forecast for one plan (see `forecast`).

    Attributes:
        imgsz: Training image size.
        batch: Batch size asked for.
        nc: Classes in the head.
        max_labels: Most labels on one training image.
        max_num_obj: ``4 × max_labels`` (mosaic).
        anchors: Anchor points at ``imgsz``.
        bytes: Envelope at ``batch``.
        vram_bytes: GPU memory compared against (0 when unknown).
        fits: True when ``bytes <= vram_bytes`` (None when no VRAM was given).
        max_batch: Largest batch that fits ``vram_bytes`` (None when no VRAM was given).
    """

    imgsz: int
    batch: int
    nc: int
    max_labels: int
    max_num_obj: int
    anchors: int
    bytes: int
    vram_bytes: int
    fits: bool | None
    max_batch: int | None

    @property
    def gib(self) -> float:
        """The envelope in GiB."""
        return self.bytes / GIB

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (adds ``gib``)."""
        return {**asdict(self), "gib": round(self.gib, 3)}


def forecast(batch: int, imgsz: int, max_labels: int, nc: int, vram_bytes: int = 0) -> Forecast:
    """Compute the envelope at ``batch`` and, when ``vram_bytes`` is given, the largest batch that fits."""
    b = assigner_bytes(batch, imgsz, max_labels, nc)
    has_vram = vram_bytes > 0
    return Forecast(
        imgsz=int(imgsz),
        batch=int(batch),
        nc=int(nc),
        max_labels=int(max_labels),
        max_num_obj=max_num_obj(max_labels),
        anchors=anchors(imgsz),
        bytes=b,
        vram_bytes=int(vram_bytes),
        fits=(b <= vram_bytes) if has_vram else None,
        max_batch=max_batch_that_fits(vram_bytes, imgsz, max_labels, nc) if has_vram else None,
    )
