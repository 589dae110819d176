"""Pages in real units: geometry, wrapping, layout (scale, baseline, margins, pagination), smoothing, rewrapping."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from engine.handwriting.page import (
    ADVANCE_PER_X_HEIGHT,
    PageError,
    PageGeometry,
    TextMetrics,
    layout_pages,
    line_shape,
    parse_length,
    parse_margins,
    parse_page_size,
    smooth_stroke,
    wrap_text,
    write_pages,
)

H = 30.0  # synthetic x-height, sensor units
ADVANCE = 40.0  # synthetic advance per character


def synthetic_line(n_chars: int, slope: float = 0.0, x0: float = 0.0, y0: float = 0.0, descender: bool = True):
    """A line shaped like cursive writing (sensor units, y up): per character a body stroke going between the
    baseline (0) and the x-height (H) twice, every third character an ascender to 2H, one descender to -H.
    Returns (strokes, body) where body marks the body strokes."""
    strokes, body = [], []
    for c in range(n_chars):
        t = np.linspace(0, 2, 41)
        x = x0 + c * ADVANCE + t * ADVANCE * 0.4
        y = H / 2 * (1 - np.cos(2 * np.pi * t))
        strokes.append(np.column_stack([x, y]))
        body.append(True)
        if c % 3 == 1:
            t = np.linspace(0, 1, 21)
            xa = x0 + c * ADVANCE + ADVANCE * 0.9 + 2 * t
            strokes.append(np.column_stack([xa, 2 * H * np.sin(np.pi * t)]))
            body.append(False)
    if descender:
        t = np.linspace(0, 1, 21)
        strokes.append(np.column_stack([x0 + ADVANCE * 0.5 + t, -H * np.sin(np.pi * t)]))
        body.append(False)
    sheared = [np.column_stack([s[:, 0], y0 + s[:, 1] + slope * (s[:, 0] - x0)]) for s in strokes]
    return sheared, body


# ---- geometry -------------------------------------------------------------------------------------------------


def test_lengths_and_page_sizes():
    assert parse_length("20") == 20 and parse_length("2cm") == 20 and parse_length("1in") == pytest.approx(25.4)
    assert parse_length("96px") == pytest.approx(25.4) and parse_length(3, default_unit="px") == pytest.approx(0.79375)
    assert parse_page_size("A4") == (210, 297) and parse_page_size("a5") == (148, 210)
    assert parse_page_size("Letter") == pytest.approx((215.9, 279.4))
    assert parse_page_size("A4-landscape") == (297, 210)
    assert parse_page_size("8.5x11in") == pytest.approx((215.9, 279.4))
    assert parse_page_size("100x50mm") == (100, 50) and parse_page_size("10x5cm") == (100, 50)
    assert parse_margins("10") == (10,) * 4 and parse_margins("10,5") == (10, 5, 10, 5)
    assert parse_margins("1,2,3,4") == (1, 2, 3, 4)
    for bad in ("B7", "10x", "x10mm"):
        with pytest.raises(PageError, match="page size"):
            parse_page_size(bad)
    with pytest.raises(PageError, match="not a length"):
        parse_length("ten mm")
    with pytest.raises(PageError):
        parse_margins("1,2,3")


def test_geometry_validation_says_what_is_wrong():
    geometry = PageGeometry.from_options("A4", "20mm", None, "3.5mm")
    assert geometry.usable_width == 170 and geometry.line_spacing == pytest.approx(10.0)
    assert PageGeometry.from_options("Letter", "1in", "0.5in", "0.15in").letter_height == pytest.approx(3.81)
    with pytest.raises(PageError, match="left and right margins"):
        PageGeometry(100, 100, (10, 50, 10, 50))
    with pytest.raises(PageError, match="top and bottom margins"):
        PageGeometry(100, 100, (60, 10, 40, 10))
    with pytest.raises(PageError, match="width must be a positive"):
        PageGeometry(0, 100)
    with pytest.raises(PageError, match="letter height must be a positive"):
        PageGeometry.from_options("A4", letter_height="0mm")
    with pytest.raises(PageError, match="line spacing"):
        PageGeometry(line_spacing=-1)
    with pytest.raises(PageError, match="leave"):
        PageGeometry(100, 30, (10, 10, 10, 10), 10, 5)  # 10 mm between the margins, a line needs 15
    with pytest.raises(PageError, match="margins"):
        PageGeometry(margins=(-1, 0, 0, 0))


# ---- wrapping -------------------------------------------------------------------------------------------------

TEXT = (
    "The quick brown fox jumps over the lazy dog and keeps running far beyond the hills\n"
    "A second line\n\n\n"
    "New paragraph with an extraordinarilylongwordthatcannotfit anywhere at all"
)


@pytest.mark.parametrize("width", [30.0, 55.0, 120.0])
def test_wrapping_fits_keeps_words_in_order_and_paragraphs(width):
    char_width = 2.5
    lines = wrap_text(TEXT, width, char_width)
    assert all(len(line) * char_width <= width + 1e-9 for line in lines)
    # words in order: joining the lines gives the text's words (long words were cut, not dropped)
    assert "".join("".join(line.split()) for line in lines) == "".join(TEXT.split())
    # one blank line between the paragraphs, none elsewhere; the hard break before "A second line" is kept
    assert lines.count("") == 1
    blank = lines.index("")
    assert lines[blank - 1].endswith("line") and lines[blank + 1].startswith("New")
    assert any(line.startswith("A second") for line in lines)
    if width >= 55:
        assert "A second line" in lines


def test_long_words_are_cut_to_the_line():
    assert wrap_text("abcdefghij xy", 4, 1) == ["abcd", "efgh", "ij", "xy"]
    assert wrap_text("\n\nab\n\n", 10, 1) == ["ab"]
    with pytest.raises(PageError):
        wrap_text("ab", 10, 0)


# ---- layout ---------------------------------------------------------------------------------------------------


def test_line_shape_finds_baseline_slope_and_x_height():
    strokes, _ = synthetic_line(8, slope=0.08, y0=100)
    shape = line_shape(strokes)
    assert shape.slope == pytest.approx(0.08, abs=0.01)
    assert shape.baseline == pytest.approx(100, abs=1.5)
    assert shape.x_height == pytest.approx(H, rel=0.05)
    assert line_shape(strokes, straighten=False).slope == 0


@pytest.mark.parametrize("letter_height", [2.5, 4.0, 6.0])
def test_layout_scales_every_line_to_the_letter_height_on_the_baseline(letter_height):
    geometry = PageGeometry(210, 297, (20, 15, 25, 30), 3 * letter_height, letter_height)
    lines, bodies = [], []
    for i, slope in enumerate((0.0, 0.06, -0.05)):
        strokes, body = synthetic_line(5 + i, slope=slope, x0=17 * i, y0=-50 * i)
        lines.append(strokes)
        bodies.append(body)
    (page,) = layout_pages(lines, geometry, ["abcde", "abcdef", "abcdefg"])
    assert (page.width, page.height) == (210, 297) and page.texts == ["abcde", "abcdef", "abcdefg"]
    placed = iter(page.strokes)
    for slot, body in enumerate(bodies):
        strokes = [next(placed) for _ in body]
        for stroke, is_body in zip(strokes, body, strict=True):
            if is_body:
                # the body of each letter spans the letter height, sitting on the line's baseline (y down)
                assert np.ptp(stroke[:, 1]) == pytest.approx(letter_height, rel=0.03)
                assert stroke[:, 1].max() == pytest.approx(geometry.baseline(slot), abs=0.03 * letter_height)
        xy = np.concatenate(strokes)
        assert xy[:, 0].min() == pytest.approx(30)  # left-aligned at the margin
    assert page.notes == []


def test_margins_are_respected_and_wide_lines_shrink_with_a_note():
    geometry = PageGeometry(100, 80, (10, 10, 10, 10), 12, 4)
    narrow, _ = synthetic_line(4)
    wide, _ = synthetic_line(30)  # 30 characters at 4/30*40 mm = about 160 mm: wider than the 80 between margins
    pages = layout_pages([narrow, wide], geometry, ["abcd", "x" * 30])
    xy = np.concatenate(pages[0].strokes)
    assert xy[:, 0].min() >= 10 - 1e-9 and xy[:, 0].max() <= 90 + 1e-9
    assert xy[:, 1].min() >= 10 - 0.2  # ascenders reach about the top margin
    assert len(pages[0].notes) == 1 and "smaller" in pages[0].notes[0]


def test_pagination_keeps_spacing_and_drops_blank_lines_at_a_page_top():
    geometry = PageGeometry(100, 60, (10, 10, 10, 10), 8, 3)
    per_page = geometry.lines_per_page
    assert per_page == 4  # 40 mm less 9 mm for the first and last line's ascent and descent: 31 // 8 + 1
    line, _ = synthetic_line(3)
    lines = [line] * per_page + [[]] + [line] * (per_page + 1)
    texts = ["abc"] * per_page + [""] + ["abc"] * (per_page + 1)
    pages = layout_pages(lines, geometry, texts)
    assert [p.number for p in pages] == [1, 2, 3]
    assert [len(p.texts) for p in pages] == [per_page, per_page, 1]  # the blank line at the top of page 2 went
    assert "" not in pages[1].texts
    strokes_per_line = len(line)
    for page in pages:
        assert all(s[:, 1].min() >= 0 and s[:, 1].max() <= 60 for s in page.strokes)
        firsts = [page.strokes[i][:, 1].max() for i in range(0, len(page.strokes), strokes_per_line)]
        assert np.allclose(np.diff(firsts), geometry.line_spacing, atol=0.05)


def test_a_blank_line_keeps_its_slot():
    geometry = PageGeometry(100, 100, (10, 10, 10, 10), 8, 3)
    line, _ = synthetic_line(3, descender=False)
    (page,) = layout_pages([line, [], line], geometry, ["abc", "", "abc"])
    n = len(line)
    gap = page.strokes[n][:, 1].max() - page.strokes[0][:, 1].max()
    assert gap == pytest.approx(2 * geometry.line_spacing, abs=0.05)


def test_smoothing_evens_jitter_and_keeps_the_end_points():
    rng = np.random.default_rng(0)
    x = np.linspace(0, 10, 200)
    clean = np.column_stack([x, np.sin(x)])
    noisy = clean + np.column_stack([np.zeros_like(x), rng.normal(0, 0.05, len(x))])
    smoothed = smooth_stroke(noisy, 3)
    assert np.array_equal(smoothed[[0, -1]], noisy[[0, -1]])
    assert np.abs(smoothed - clean)[5:-5].mean() < 0.6 * np.abs(noisy - clean)[5:-5].mean()
    geometry = PageGeometry(100, 100, (10, 10, 10, 10), 8, 3)
    line, _ = synthetic_line(3)
    rough = layout_pages([line], geometry, ["abc"])[0].strokes
    soft = layout_pages([line], geometry, ["abc"], smooth=2)[0].strokes
    assert len(rough) == len(soft) and not np.allclose(rough[0], soft[0])


# ---- metrics and write_pages ----------------------------------------------------------------------------------


def test_metrics_from_the_model_and_from_written_lines():
    prior = TextMetrics.from_model(normalizer_mean_dx=8.0, chars_per_step=1 / 6)
    assert prior.char_width == pytest.approx(48) and prior.x_height == pytest.approx(48 / ADVANCE_PER_X_HEIGHT)
    assert prior.char_width_mm(4.0) == pytest.approx(4.0 * ADVANCE_PER_X_HEIGHT)
    strokes, _ = synthetic_line(10)
    measured = TextMetrics.measure([strokes, []], ["a" * 10, ""])
    assert measured.x_height == pytest.approx(H, rel=0.05)
    assert measured.char_width == pytest.approx((9 * ADVANCE + 0.9 * ADVANCE) / 10, rel=0.05)
    flat = [np.column_stack([np.linspace(0, 400, 50), np.zeros(50)])]  # a flat scribble has no x-height
    assert TextMetrics.measure([flat], ["abcdefghij"]).x_height == pytest.approx(40 / ADVANCE_PER_X_HEIGHT)
    assert TextMetrics.measure([[]], [""]) is None


class FakeWriter:
    """Writes synthetic lines twice as wide per character as the model's metadata suggests."""

    def __init__(self):
        self.normalizer = SimpleNamespace(mean=(ADVANCE / 12, 0.0))  # from_model: 20 units per char
        self.chars_per_step = 1 / 6
        self.calls = []

    def write(self, texts, bias=0.0, seed=None, one_hand=False, prime=None):
        assert one_hand  # a page is written in one hand
        self.calls.append(list(texts))
        return [SimpleNamespace(text=t, strokes=synthetic_line(len(t))[0]) for t in texts]


def test_write_pages_rewraps_with_measured_metrics_when_lines_overflow():
    geometry = PageGeometry(120, 200, (10, 10, 10, 10), 10, 3)
    writer = FakeWriter()
    text = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor\n\nut labore et dolore"
    pages, lines = write_pages(writer, text, geometry, bias=1.0, seed=3)
    assert len(writer.calls) == 2  # the first wrapping overflowed; the second used what was measured
    assert len(writer.calls[1]) > len(writer.calls[0])  # shorter lines, so more of them
    assert pages[0].notes == []
    xy = np.concatenate([s for p in pages for s in p.strokes])
    assert xy[:, 0].max() <= 110 + 1e-9
    assert " ".join(t for p in pages for t in p.texts if t).split() == text.split()
    assert [line.text for line in lines] == [t for p in pages for t in p.texts if t]
    # without rewrapping, lines are shrunk to fit instead
    pages, _ = write_pages(FakeWriter(), text, geometry, rewrap=False)
    assert any("smaller" in note for note in pages[0].notes)


def test_a_styled_page_is_wrapped_by_the_styles_own_measures_at_once():
    """With a style the first wrapping uses the style's character width (with a margin), not the model's average:
    the synthetic writer writes as the style does, so nothing overflows and the page is written once."""
    from engine.handwriting.page import WRAP_MARGIN
    from engine.handwriting.writer import Prime

    strokes, _ = synthetic_line(12)
    points = np.concatenate([np.column_stack([s, np.zeros(len(s))]) for s in strokes])
    points[np.cumsum([len(s) for s in strokes]) - 1, 2] = 1
    offsets = np.column_stack([np.diff(points[:, :2], axis=0), points[1:, 2]])
    style = Prime(offsets, "a" * 12)
    geometry = PageGeometry(120, 200, (10, 10, 10, 10), 10, 3)
    writer = FakeWriter()
    text = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor\n\nut labore et dolore"
    pages, _ = write_pages(writer, text, geometry, bias=1.0, seed=3, prime=style)
    assert len(writer.calls) == 1

    class HandWriter(FakeWriter):  # without a style, not by the invented hand (primed lines regress from it)
        def invented_hand(self, seed, bias):
            raise AssertionError("the page's wrapping does not invent a hand")

    hand_writer = HandWriter()
    write_pages(hand_writer, text, geometry, bias=1.0, seed=3)
    assert len(hand_writer.calls) == 2  # the model's average, then what was written
    assert pages[0].notes == []
    xy = np.concatenate([s for p in pages for s in p.strokes])
    assert xy[:, 0].max() <= 110 + 1e-9
    assert WRAP_MARGIN > 1
