"""A page document: what is needed to write the same page again (text, style, seed, neatness, page geometry,
and the seeds of lines written again on their own).

Saved as small JSON rather than strokes: the same model, text, bias and seed write the same handwriting,
and the file stays readable and editable. Written atomically, so a crash never leaves half a page.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_text
from engine.handwriting.page import PageError, PageGeometry

FORMAT = "penwright-page"
VERSION = 1
SUFFIX = ".penwright.json"


class PageDocumentError(ValueError):
    """The file is not a page document this version can read; the message is meant for the user."""


@dataclass(frozen=True)
class PageDocument:
    text: str
    style: str = ""
    seed: int = 1
    bias: float = 0.75
    geometry: PageGeometry = field(default_factory=PageGeometry)
    line_seeds: dict[int, int] = field(default_factory=dict)  # line (0-based) -> seed it was rewritten with
    match_style: bool = True  # the style's size, width and slant matched (pages saved before it existed: False)

    def to_json(self) -> str:
        data: dict[str, Any] = {"format": FORMAT, "version": VERSION, **asdict(self)}
        data["geometry"]["margins"] = list(self.geometry.margins)
        data["line_seeds"] = {str(k): v for k, v in sorted(self.line_seeds.items())}
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> PageDocument:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PageDocumentError(f"it is not JSON ({exc.msg} at line {exc.lineno})") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise PageDocumentError("it is not a Penwright page")
        if not isinstance(data.get("version"), int) or data["version"] > VERSION:
            raise PageDocumentError("it was saved by a newer Penwright; update to open it")
        try:
            geometry = dict(data.get("geometry") or {})
            if "margins" in geometry:
                geometry["margins"] = tuple(float(m) for m in geometry["margins"])
            return cls(
                text=str(data["text"]),
                style=str(data.get("style", "")),
                seed=int(data.get("seed", 1)),
                bias=float(data.get("bias", 0.75)),
                geometry=PageGeometry(**geometry),
                line_seeds={int(k): int(v) for k, v in dict(data.get("line_seeds") or {}).items()},
                match_style=_flag(data.get("match_style", False)),
            )
        except PageError as exc:
            raise PageDocumentError(f"its page geometry is invalid: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise PageDocumentError(f"a field is missing or has the wrong type ({exc})") from exc

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> PageDocument:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise PageDocumentError(f"it could not be read ({reason})") from exc
        return cls.from_json(text)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(f"match_style must be true or false, not {value!r}")
