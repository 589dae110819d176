"""Reading IAM-OnDB: archives and trees built in the test, splits, blacklist, skip reasons, the parse cache."""

from __future__ import annotations

import itertools
import tarfile
from pathlib import Path

import numpy as np
import pytest
from iam_builder import (
    EXPECTED_READ,
    EXPECTED_READ_SKIPS,
    EXPECTED_SPLIT_COUNTS,
    EXPECTED_TRAIN,
    EXPECTED_VALIDATION,
    FORMS,
    SPLITS,
    build_small_iam,
    folder_parts,
    points_of,
    random_strokes,
    skip_counts,
    stroke_xml,
)

from engine.handwriting import dataset
from engine.handwriting.dataset import load_handwriting_data, load_lines, resolve_data_folder
from engine.handwriting.iam_ondb import (
    DataFolderError,
    ReadReport,
    parse_line_strokes,
    parse_transcriptions,
    read_iam_ondb,
    read_split_file,
    read_splits,
    split_of,
)
from engine.handwriting.preprocessing import Normalizer, points_to_offsets


def _by_id(lines):
    return {line.line_id: line for line in lines}


# ----- parsing single files ----------------------------------------------------------------------------
def test_transcriptions_are_the_nonempty_lines_after_csr():
    content = b"OCR:\n\nnot this\n\nCSR: \n\n  first line  \n\n\nsecond\n   \nthird\xe9\n"
    assert parse_transcriptions(content) == ["first line", "second", "third\u00e9"]
    assert parse_transcriptions(b"OCR:\n\nno transcription here\n") == []


def test_stroke_xml_gives_points_with_end_of_stroke_flags():
    rng = np.random.default_rng(3)
    strokes = random_strokes(rng, n_strokes=3)
    points = parse_line_strokes(stroke_xml(strokes, empty_stroke=True))
    assert points.shape == (sum(len(s) for s in strokes), 3)
    np.testing.assert_array_equal(points, points_of(strokes))
    # one flag per stroke, on its last point; the empty stroke adds nothing
    assert points[:, 2].sum() == len(strokes)


# ----- reading a folder ----------------------------------------------------------------------------------
def test_archives_match_lines_to_transcriptions_and_count_skips(small_iam):
    report = ReadReport()
    lines = read_iam_ondb(small_iam.folder, report)
    found = _by_id(lines)
    assert set(found) == EXPECTED_READ
    for line_id, line in found.items():
        assert line.text == small_iam.text(line_id), line_id
        np.testing.assert_array_equal(line.points, small_iam.points[line_id])
    assert found["a01-000u-02"].text == FORMS["a01-000u"][1]
    assert found["a01-000u-02"].form_id == "a01-000u"
    assert report.lines_read == len(EXPECTED_READ)
    assert skip_counts(report.skipped, EXPECTED_READ_SKIPS) == EXPECTED_READ_SKIPS
    assert sum(report.skipped.values()) == sum(EXPECTED_READ_SKIPS.values())
    summary = report.summary()
    assert f"{len(EXPECTED_READ)} lines read" in summary and "1 skipped: blacklisted" in summary


@pytest.mark.parametrize(("layout", "prefix"), [("tree", ""), ("archive", "./")])
def test_unpacked_trees_and_dot_slash_archives_read_the_same(tmp_path, layout, prefix):
    reference_report, other_report = ReadReport(), ReadReport()
    reference = read_iam_ondb(build_small_iam(tmp_path / "archive").folder, reference_report)
    other = read_iam_ondb(build_small_iam(tmp_path / "other", layout, prefix).folder, other_report)
    # a tree is read in sorted path order, an archive in member order: compare line by line id
    assert sorted(ln.line_id for ln in other) == sorted(ln.line_id for ln in reference)
    other_by_id = _by_id(other)
    for a in reference:
        b = other_by_id[a.line_id]
        assert a.text == b.text
        np.testing.assert_array_equal(a.points, b.points)
    assert other_report.skipped == reference_report.skipped
    assert other_report.lines_read == reference_report.lines_read


def test_missing_or_empty_folders_give_a_clear_error(tmp_path):
    with pytest.raises(DataFolderError, match="does not exist"):
        read_iam_ondb(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFolderError) as info:
        read_iam_ondb(empty)
    message = str(info.value)
    assert str(empty) in message and "tar.gz" in message and "lineStrokes-all.tar.gz" in message
    # archives present but nothing in them matches a transcription
    only_strokes = tmp_path / "only-strokes"
    build_small_iam(only_strokes)
    (only_strokes / "ascii-x.tar.gz").unlink()
    with tarfile.open(only_strokes / "ascii-empty.tar.gz", "w:gz"):
        pass
    report = ReadReport()
    with pytest.raises(DataFolderError, match="no IAM-OnDB lines found"):
        read_iam_ondb(only_strokes, report)
    assert report.skipped["no transcription file for its form"] > 0


# ----- splits ---------------------------------------------------------------------------------------------
def test_split_entries_without_the_final_letter_cover_every_form_starting_with_them():
    splits = {"trainset": {"a01-000", "b02-001x"}, "testset_v": {"c03-007"}}
    assert split_of("a01-000u", splits) == "trainset"
    assert split_of("a01-000", splits) == "trainset"
    assert split_of("b02-001x", splits) == "trainset"
    assert split_of("b02-001w", splits) is None  # a lettered entry covers only itself
    assert split_of("c03-007z", splits) == "testset_v"
    assert split_of("a01-0001", splits) is None  # a digit is not a form letter
    assert split_of("a01-00", splits) is None


def test_an_exact_split_entry_beats_a_letterless_entry_of_another_split():
    assert split_of("a01-000u", {"trainset": {"a01-000"}, "testset_v": {"a01-000u"}}) == "testset_v"


def test_split_files_are_read_stripped(small_iam):
    splits = read_splits(small_iam.folder)
    assert splits == {name: {i.strip() for i in ids if i.strip()} for name, ids in SPLITS.items()}
    (small_iam.folder / "testset_t.txt").unlink()
    assert set(read_splits(small_iam.folder)) == {"trainset", "testset_v"}


# ----- training and validation sets -----------------------------------------------------------------------
def _check_handwriting_data(data, small_iam):
    assert set(data.train.ids) == EXPECTED_TRAIN
    assert set(data.validation.ids) == EXPECTED_VALIDATION
    assert data.split_counts == EXPECTED_SPLIT_COUNTS
    assert data.report.skipped["form is in none of the split files"] == 1
    # the crossed-out-word line (train) and the line with 'd' (validation) are skipped, with a reason naming '#'
    alphabet_reasons = {r: n for r, n in data.report.skipped.items() if "alphabet" in r}
    assert sum(alphabet_reasons.values()) == 2 and all("'#'" in r for r in alphabet_reasons)
    assert "a01-000u-03" not in data.train.ids and "a02-050-03" not in data.validation.ids
    assert data.alphabet.characters == " abc"
    # the normaliser is fitted on the training lines (all five raw lines, '#' line included)
    train_raw = [small_iam.points[i] for i in sorted(EXPECTED_TRAIN | {"a01-000u-03"})]
    expected = Normalizer.fit([points_to_offsets(p, "skip2") for p in train_raw])
    np.testing.assert_allclose(data.normalizer.mean, expected.mean, rtol=1e-9)
    np.testing.assert_allclose(data.normalizer.std, expected.std, rtol=1e-9)
    for seqs in (data.train, data.validation):
        for line_id, text, strokes, chars in zip(seqs.ids, seqs.texts, seqs.strokes, seqs.chars, strict=True):
            assert text == small_iam.text(line_id)
            assert "".join(data.alphabet.characters[c] for c in chars) == text
            raw = points_to_offsets(small_iam.points[line_id], "skip2")
            np.testing.assert_allclose(data.normalizer.denormalize(strokes), raw, atol=1e-3)


@pytest.mark.parametrize("use_cache", [False, True])
def test_load_handwriting_data_applies_splits_blacklist_and_alphabet(small_iam, cache_folder, use_cache):
    data = load_handwriting_data(small_iam.folder, "skip2", use_cache=use_cache)
    _check_handwriting_data(data, small_iam)
    cached = list(cache_folder.glob("iam-ondb-*.npz"))
    assert len(cached) == (1 if use_cache else 0)


def test_the_parse_cache_is_used_and_gives_the_same_lines(small_iam, cache_folder, monkeypatch):
    fresh, fresh_report = load_lines(small_iam.folder, use_cache=True)
    assert len(list(cache_folder.glob("iam-ondb-*.npz"))) == 1

    def no_parsing(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(dataset, "read_iam_ondb", no_parsing)
    again, again_report = load_lines(small_iam.folder, use_cache=True)
    assert [ln.line_id for ln in again] == [ln.line_id for ln in fresh]
    for a, b in zip(fresh, again, strict=True):
        assert a.text == b.text
        np.testing.assert_array_equal(a.points, b.points)
    assert again_report.skipped == fresh_report.skipped and again_report.lines_read == fresh_report.lines_read
    _check_handwriting_data(load_handwriting_data(small_iam.folder, "skip2"), small_iam)
    # use_cache=False parses again
    with pytest.raises(AssertionError, match="cache should have been used"):
        load_lines(small_iam.folder, use_cache=False)


def test_the_parse_cache_notices_edits_inside_unpacked_trees(tmp_path, cache_folder):
    small = build_small_iam(tmp_path / "tree", layout="tree")
    lines, _ = load_lines(small.folder, use_cache=True)
    assert _by_id(lines)["a01-000u-01"].text == "abc ab"
    top, base = folder_parts("a01-000u")
    form = small.folder / "ascii" / top / base / "a01-000u.txt"
    form.write_bytes(form.read_bytes().replace(b"abc ab", b"cab ba"))
    lines, _ = load_lines(small.folder, use_cache=True)
    assert _by_id(lines)["a01-000u-01"].text == "cab ba"


def test_without_split_files_lines_are_split_by_form(tmp_path, cache_folder):
    small = build_small_iam(tmp_path / "nosplits", splits=False)
    data = load_handwriting_data(small.folder, "paper", use_cache=False)
    assert set(data.split_counts) <= {"trainset", "testset_v"}
    assert sum(data.split_counts.values()) == len(EXPECTED_READ)
    forms_in = {
        name: {i.rsplit("-", 1)[0] for i in seqs.ids} for name, seqs in [("t", data.train), ("v", data.validation)]
    }
    assert not forms_in["t"] & forms_in["v"]


def test_data_folder_comes_from_argument_or_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(dataset.DATA_ENV, raising=False)
    with pytest.raises(ValueError, match=dataset.DATA_ENV):
        resolve_data_folder(None)
    monkeypatch.setenv(dataset.DATA_ENV, str(tmp_path))
    assert resolve_data_folder(None) == tmp_path.resolve()
    assert resolve_data_folder(tmp_path / "x") == (tmp_path / "x").resolve()


def test_compact_data_round_trip(small_iam, tmp_path):
    data = load_handwriting_data(small_iam.folder, "skip2", use_cache=False)
    path = tmp_path / "compact.npz"
    dataset.save_compact_data(data, path)
    back = dataset.load_compact_data(path)
    assert back.alphabet == data.alphabet and back.convention == "skip2"
    assert back.normalizer.to_dict() == data.normalizer.to_dict()
    assert back.split_counts == data.split_counts
    for a, b in [(data.train, back.train), (data.validation, back.validation)]:
        assert a.ids == b.ids and a.texts == b.texts
        for sa, sb in zip(a.strokes, b.strokes, strict=True):
            np.testing.assert_allclose(sa, sb, atol=2e-3 * max(1.0, float(np.abs(sa).max())))
        for ca, cb in zip(a.chars, b.chars, strict=True):
            np.testing.assert_array_equal(ca, cb)


# ----- the real data (needs ../shared/data/iam-ondb) -------------------------------------------------------
def _first_members(archive: Path, count: int) -> list[tuple[str, bytes]]:
    """The first ``count`` files of a .tar.gz, read as a stream (never the whole 45 MB)."""
    out = []
    with tarfile.open(archive, "r|gz") as tar:
        for member in tar:
            if member.isfile():
                handle = tar.extractfile(member)
                out.append((member.name.lstrip("./"), handle.read()))
                if len(out) == count:
                    break
    return out


@pytest.mark.needs_data
def test_real_split_files_and_first_archive_members(iam_ondb):
    splits = read_splits(iam_ondb)
    assert {"trainset", "testset_t", "testset_v"} <= set(splits)
    for name, ids in splits.items():
        assert len(ids) > 50, name
        assert all(i == i.strip() and i for i in ids)
    for a, b in itertools.combinations(splits, 2):
        assert not splits[a] & splits[b], (a, b)
    for name, ids in splits.items():
        for form in sorted(ids)[:20]:
            # the entry itself, and (for a letter-less entry) a lettered form it covers
            assert split_of(form, {name: ids}) == name
            if not form[-1].isalpha():
                assert split_of(form + "z", {name: ids}) == name
    blacklist = read_split_file(iam_ondb / "blacklist.txt")
    assert blacklist and all(i.count("-") == 2 for i in blacklist)

    stroke_archives = sorted(iam_ondb.glob("lineStrokes*.tar.gz"))
    ascii_archives = sorted(iam_ondb.glob("ascii*.tar.gz"))
    assert stroke_archives and ascii_archives
    transcriptions = {Path(n).stem: parse_transcriptions(c) for n, c in _first_members(ascii_archives[0], 5)}
    assert all(transcriptions.values())
    for form in transcriptions:
        assert split_of(form, splits) is not None, form
    members = _first_members(stroke_archives[0], 4)
    for name, content in members:
        assert name.startswith("lineStrokes/") and name.endswith(".xml")
        points = parse_line_strokes(content)
        assert points.ndim == 2 and points.shape[1] == 3 and len(points) > 10
        assert points[-1, 2] == 1 and set(np.unique(points[:, 2])) <= {0, 1}
        line_id = Path(name).stem
        form, number = line_id.rsplit("-", 1)
        if form in transcriptions:
            assert 1 <= int(number) <= len(transcriptions[form])
        offsets = points_to_offsets(points, "skip2")
        assert np.isfinite(offsets).all() and offsets[:, 2].sum() == points[1:, 2].sum()


def test_training_on_line_pairs_with_and_without_the_single_lines(small_iam, cache_folder):
    single = load_handwriting_data(small_iam.folder, "skip2", use_cache=False)
    paired = load_handwriting_data(small_iam.folder, "skip2", use_cache=False, pair_train_lines=True)
    both = load_handwriting_data(
        small_iam.folder, "skip2", use_cache=False, pair_train_lines=True, keep_single_lines=True
    )
    # Pairs join two lines of a form each (an odd last line stays alone); keep_single_lines adds the singles.
    assert len(paired.train) < len(single.train) and any("+" in i for i in paired.train.ids)
    assert len(both.train) == len(paired.train) + len(single.train)
    assert paired.validation.ids == single.validation.ids  # validation lines stay single
    joined = next(i for i in paired.train.ids if "+" in i)
    first = joined.split("+")[0]
    second = first.rsplit("-", 1)[0] + "-" + joined.split("+")[1]
    text = dict(zip(single.train.ids, single.train.texts, strict=True))
    assert paired.train.texts[paired.train.ids.index(joined)] == f"{text[first]} {text[second]}"
