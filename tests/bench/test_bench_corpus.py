"""The Debian corpus parser, on records copied from apt's bookworm Translation-en list."""

from __future__ import annotations

from pathlib import Path

import corpus_debian
import pytest

SAMPLE = Path(__file__).parent / "data" / "Translation-en.sample"


def test_the_short_description_is_the_query_and_the_long_text_the_memory():
    records = corpus_debian.parse(SAMPLE.read_text())
    first = records[0]
    assert first.package == "0ad-data"
    assert first.query == "Real-time strategy game of ancient warfare (data files)"
    assert first.text.startswith('0 A.D. (pronounced "zero ey-dee") is a free, open-source, cross-platform\n')
    assert first.text.endswith("game engine.\n\nThis package contains the main data files required by 0 A.D.")
    assert "Description" not in first.text and "md5" not in first.text


def test_paragraph_markers_become_blank_lines_and_indented_lines_keep_their_indent():
    flasher = next(r for r in corpus_debian.parse(SAMPLE.read_text()) if r.package == "0xffff")
    paragraphs = flasher.text.split("\n\n")
    assert len(paragraphs) == 3
    assert paragraphs[1].splitlines()[1] == " * generating and unpacking FIASCO images on local device"
    assert paragraphs[2] == "Supported are the Nokia 770, N800, N810, N810w, N900, N950 and N9."
    assert "\n.\n" not in flasher.text and not flasher.text.startswith(" ")


def test_records_without_a_long_text_are_dropped():
    packages = [r.package for r in corpus_debian.parse(SAMPLE.read_text())]
    assert "freeglut3-dev" not in packages  # "Description-en: Tranisitonal package" and nothing after it
    assert packages == ["0ad-data", "0xffff", "libadios-dev", "libadios-examples", "afl", "afl++-clang"]


def test_a_repeated_long_text_keeps_only_its_first_record():
    kept = corpus_debian.unique(corpus_debian.parse(SAMPLE.read_text()))
    packages = [r.package for r in kept]
    assert packages == ["0ad-data", "0xffff", "libadios-dev", "afl"]
    texts = [" ".join(r.text.split()) for r in kept]
    assert len(set(texts)) == len(texts)


def test_whitespace_alone_does_not_make_a_text_new():
    record = corpus_debian.parse(SAMPLE.read_text())[0]
    rewrapped = corpus_debian.Record("other", "another query", record.text.replace("\n", " "))
    assert corpus_debian.unique([record, rewrapped]) == [record]


def test_the_sampling_order_is_a_fixed_permutation():
    records = [corpus_debian.Record(f"p{i}", f"q{i}", f"text {i}") for i in range(50)]
    order = corpus_debian.shuffled(records)
    assert order == corpus_debian.shuffled(list(records))
    assert order != records and sorted(order, key=records.index) == records
    assert corpus_debian.shuffled(records, seed=1) != order


def test_memory_names_carry_no_words_of_the_text():
    assert corpus_debian.name(42) == "debian/d00042"


def test_missing_lists_say_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_debian, "LISTS", str(tmp_path / "*_i18n_Translation-en.lz4"))
    with pytest.raises(SystemExit, match=r"run `apt-get update -o Acquire::Languages=en`"):
        corpus_debian.load()

