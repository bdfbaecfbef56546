"""Hidden verovio placeholders are removed from a page SVG without breaking the groups around them."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from omr_core.datasets.synth import engrave_job
from omr_core.datasets.synth_render import prepare_svg

SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg"><g class="system"><g class="measure"><path d="M0 0 L1 1"/></g>'
    '<g id="a" class="sb placeholder" />\n   </g>'
    '<g id="b" class="section placeholder systemMilestone"> <ellipse cx="1" cy="1" rx="9" ry="9" /> </g></svg>'
)


def test_a_self_closing_placeholder_keeps_its_parents_closing_tag() -> None:
    out = prepare_svg(SVG)
    root = ET.fromstring(out)  # well-formed
    assert "placeholder" not in out
    assert [g.get("class") for g in root.iter("{http://www.w3.org/2000/svg}g")] == ["system", "measure"]


def test_the_page_that_showed_it_engraves() -> None:
    """Seed 29, job 5 (an `sb` placeholder at the end of a system) used to fail with 'mismatched tag'."""
    pages = list(engrave_job(29, 5, 0.3))
    assert pages and all(p.classified.symbols for p in pages)
