"""W3C InkML (https://www.w3.org/TR/InkML/): a page's strokes as traces of X Y in millimetres, and a reader.

The file declares its trace format (X and Y, decimal, units="mm"; Y grows down the page, origin at the page's
top-left corner) in a context every trace refers to, and the page size as annotations. The reader takes plain
decimal traces (the form written here and by most tools); traces using InkML's difference encodings (the ' and
" prefixes) or channels other than X and Y first are refused with a clear error.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from engine.atomic import atomic_write_text

INKML_NS = "http://www.w3.org/2003/InkML"
_TO_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "in": 25.4, "pt": 25.4 / 72, "": 1.0}


class InkmlError(ValueError):
    """A file that is not InkML this reader understands."""


def inkml_document(page, title: str = "", digits: int = 3) -> str:
    """An InkML string for a :class:`~engine.handwriting.page.Page` (strokes in mm, y down)."""
    traces = []
    for stroke in page.strokes:
        if len(stroke) == 0:
            continue
        body = ", ".join(f"{x:.{digits}f} {y:.{digits}f}" for x, y in np.asarray(stroke, np.float64))
        traces.append(f'<trace contextRef="#page">{body}</trace>')
    texts = "\n".join(t for t in getattr(page, "texts", []))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ink xmlns="{INKML_NS}">\n'
        f'<annotation type="title">{escape(title)}</annotation>\n'
        f'<annotation type="truth">{escape(texts)}</annotation>\n'
        f'<annotation type="pageWidth" units="mm">{page.width:g}</annotation>\n'
        f'<annotation type="pageHeight" units="mm">{page.height:g}</annotation>\n'
        "<definitions>\n"
        '<context xml:id="page">\n'
        '<traceFormat xml:id="xy-mm">\n'
        '<channel name="X" type="decimal" units="mm"/>\n'
        '<channel name="Y" type="decimal" units="mm" orientation="+ve"/>\n'
        "</traceFormat>\n"
        "</context>\n"
        "</definitions>\n" + "\n".join(traces) + "\n</ink>\n"
    )


def write_inkml(path: str | Path, page, **kwargs) -> None:
    atomic_write_text(path, inkml_document(page, **kwargs))


def _units_factor(root: ET.Element) -> tuple[float, float]:
    """mm per unit of the X and Y channels of the (first) trace format; mm when none is declared."""
    factors = {"X": 1.0, "Y": 1.0}
    fmt = root.find(f".//{{{INKML_NS}}}traceFormat")
    if fmt is None:
        return 1.0, 1.0
    channels = fmt.findall(f"{{{INKML_NS}}}channel")
    names = [c.get("name") for c in channels]
    if names[:2] != ["X", "Y"]:
        raise InkmlError(f"the trace format's first channels are {names[:2]}, not X and Y")
    for channel in channels[:2]:
        units = (channel.get("units") or "").lower()
        if units not in _TO_MM:
            raise InkmlError(f"channel {channel.get('name')} has units {units!r}, which this reader does not know")
        factors[channel.get("name")] = _TO_MM[units]
    return factors["X"], factors["Y"]


def read_inkml(path: str | Path) -> list[np.ndarray]:
    """The traces of an InkML file as strokes: (n, 2) arrays of X Y in mm (extra channels are dropped)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise InkmlError(f"{path} is not well-formed XML: {exc}") from exc
    if root.tag != f"{{{INKML_NS}}}ink":
        raise InkmlError(f"{path} is not InkML (its root element is {root.tag!r})")
    fx, fy = _units_factor(root)
    strokes = []
    for trace in root.iter(f"{{{INKML_NS}}}trace"):
        text = (trace.text or "").strip()
        if not text:
            continue
        if any(mark in text for mark in "'\"!?*"):
            raise InkmlError("traces in InkML's difference encoding are not supported; write plain decimals")
        points = []
        for item in text.split(","):
            values = item.split()
            if len(values) < 2:
                raise InkmlError(f"a trace point needs X and Y, not {item.strip()!r}")
            try:
                points.append((float(values[0]) * fx, float(values[1]) * fy))
            except ValueError as exc:
                raise InkmlError(f"not a number in a trace: {item.strip()!r}") from exc
        strokes.append(np.array(points, np.float64))
    return strokes


__all__ = ["INKML_NS", "InkmlError", "inkml_document", "read_inkml", "write_inkml"]
