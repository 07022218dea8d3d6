"""devtools.catalogs: adding a text writes both catalogs, an old MESSAGES dictionary moves
in, and check names what is missing. Runs on a copy of the catalogs."""

from __future__ import annotations

import shutil

import pytest

from devtools import catalogs
from warranty.core import i18n


@pytest.fixture
def copy(tmp_path, monkeypatch):
    """The catalogs copied to a temporary folder, which i18n reads while the test runs."""
    target = tmp_path / "locales"
    shutil.copytree(i18n.LOCALES, target)
    monkeypatch.setattr(i18n, "LOCALES", target)
    i18n.forget()
    yield target
    monkeypatch.undo()
    i18n.forget()


def test_add_writes_every_language_sorted_one_line_each(copy):
    assert catalogs.main(["add", "aaa.new_text", "--ja", "新しい{thing}です",
                          "--en", "A new {thing}"]) == 0
    assert i18n.t("ja", "aaa.new_text", thing="文") == "新しい文です"
    assert i18n.t("en", "aaa.new_text", thing="text") == "A new text"
    lines = (copy / "en" / "LC_MESSAGES" / "messages.po").read_text().splitlines()
    first = lines.index('msgid "aaa.new_text"')
    assert lines[first + 1] == 'msgstr "A new {thing}"'
    ids = [line for line in lines if line.startswith('msgid "') and line != 'msgid ""']
    assert ids == sorted(ids)
    # changing a text replaces it
    catalogs.main(["add", "aaa.new_text", "--ja", "変更{thing}", "--en", "Changed {thing}"])
    assert i18n.t("en", "aaa.new_text", thing="x") == "Changed x"
    assert "POT-Creation-Date" not in (copy / "ja" / "LC_MESSAGES" / "messages.po").read_text()


def test_import_dict_moves_an_old_dictionary_in_and_keeps_what_is_there(copy, tmp_path,
                                                                         capsys):
    old = tmp_path / "old_i18n.py"
    old.write_text('MESSAGES: dict = {\n'
                   '    "zzz.from_a_branch": {"ja": "枝", "en": "From a branch"},\n'
                   '    "site.title": {"ja": "別の題", "en": "Another title"},\n'
                   '}\n', encoding="utf-8")
    assert catalogs.main(["import-dict", str(old)]) == 0
    assert i18n.t("ja", "zzz.from_a_branch") == "枝"
    assert i18n.t("en", "site.title") == "Extended warranty"  # kept, and said so
    assert "kept en 'site.title'" in capsys.readouterr().err


def test_check_names_a_missing_language_and_different_placeholders(copy):
    ja = copy / "ja" / "LC_MESSAGES" / "messages.po"
    ja.write_text(ja.read_text(encoding="utf-8")
                  + '\nmsgid "only.japanese"\nmsgstr "日本語だけ"\n', encoding="utf-8")
    catalogs.main(["add", "two.places", "--ja", "{a}", "--en", "{b}"])
    i18n.forget()
    problems = catalogs.check()
    assert "only.japanese: no en text" in problems
    assert any(p.startswith("two.places: placeholders differ") for p in problems)
