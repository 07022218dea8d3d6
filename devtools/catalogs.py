"""Edit and check the gettext catalogs of the pages and mails (warranty/core/locales).

    python -m devtools.catalogs add KEY --ja "..." --en "..."   # add or change one text
    python -m devtools.catalogs import-dict FILE                # keys of an old MESSAGES dict
    python -m devtools.catalogs check                           # what the test checks

A text is a message id (a dotted key such as ``claim.title``) with a translation in each of
``ja`` and ``en``; ``{name}`` placeholders are filled by ``warranty.core.i18n.t``. The
catalogs are plain ``.po`` files, read at start (no compiled ``.mo`` files, no build step);
this tool writes them sorted by key, one line per text, so that two branches adding texts
rarely touch the same lines. Editing them by hand is fine too.

``import-dict`` takes a Python file that defines the hand-written ``MESSAGES = {key: {"ja":
..., "en": ...}}`` dictionary of earlier versions (``git show BRANCH:warranty/core/i18n.py >
old.py``) and adds its keys to the catalogs: what a branch written before the catalogs
needs when it is merged.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from warranty.core import i18n


def po_path(lang: str) -> Path:
    return i18n.LOCALES / lang / "LC_MESSAGES" / f"{i18n.DOMAIN}.po"


def load(lang: str) -> Catalog:
    path = po_path(lang)
    if not path.exists():
        return Catalog(locale=lang, domain=i18n.DOMAIN, project="warranty")
    with path.open("rb") as fp:
        return read_po(fp, locale=lang, domain=i18n.DOMAIN)


def save(lang: str, catalog: Catalog) -> None:
    path = po_path(lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    catalog.project = "warranty"
    catalog.version = ""
    catalog.msgid_bugs_address = ""
    catalog.copyright_holder = ""
    catalog.last_translator = "warranty <->"
    catalog.language_team = f"{lang} <->"
    catalog.fuzzy = False
    with path.open("wb") as fp:
        write_po(fp, catalog, width=0, sort_output=True, omit_header=False,
                 ignore_obsolete=True, include_lineno=False)
    # babel stamps creation/revision dates in the header; keep the files stable between runs
    lines = [line for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
             if not line.startswith(('"POT-Creation-Date:', '"PO-Revision-Date:',
                                     '"Generated-By:', "# Translations template",
                                     "# Copyright (C)", "# This file is distributed",
                                     "# FIRST AUTHOR", "#, fuzzy"))]
    path.write_text("".join(lines), encoding="utf-8")


def add(texts: dict[str, dict[str, str]], *, replace: bool) -> list[str]:
    """Add ``{key: {lang: text}}`` to the catalogs; the keys changed."""
    changed = set()
    for lang in i18n.LANGUAGES:
        catalog = load(lang)
        for key, by_lang in texts.items():
            text = by_lang.get(lang)
            if text is None:
                raise SystemExit(f"{key}: no {lang} text")
            present = catalog.get(key)
            if present is not None and not replace:
                if present.string != text:
                    print(f"kept {lang} {key!r} as in the catalog: {present.string!r} "
                          f"(the dictionary had {text!r})", file=sys.stderr)
                continue
            if present is not None and present.string == text:
                continue
            changed.add(key)
            if present is not None:
                del catalog[key]  # Catalog.add keeps an existing message's text
            catalog.add(key, text)
        save(lang, catalog)
    return sorted(changed)


def messages_of(path: Path) -> dict[str, dict[str, str]]:
    """The ``MESSAGES`` dictionary literal of a Python file, read without running it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == "MESSAGES" for t in targets):
            return ast.literal_eval(node.value)
    raise SystemExit(f"{path}: no MESSAGES dictionary")


def check() -> list[str]:
    """Problems: a text missing in a language, empty, fuzzy, or with other placeholders."""
    problems = []
    catalogs = {lang: i18n.catalog(lang) for lang in i18n.LANGUAGES}
    keys = set().union(*(set(c) for c in catalogs.values()))
    for key in sorted(keys):
        found = {}
        for lang, messages in catalogs.items():
            text = messages.get(key)
            if not text:
                problems.append(f"{key}: no {lang} text")
            else:
                found[lang] = i18n.placeholders(text)
        if len(set(map(frozenset, found.values()))) > 1:
            problems.append(f"{key}: placeholders differ between languages: {found}")
    for lang in i18n.LANGUAGES:
        fuzzy = [m.id for m in load(lang) if m.id and m.fuzzy]
        problems += [f"{key}: fuzzy in {lang}" for key in fuzzy]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.catalogs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("add", help="add or change one text in every language")
    one.add_argument("key")
    for lang in i18n.LANGUAGES:
        one.add_argument(f"--{lang}", required=True)
    old = sub.add_parser("import-dict", help="add the keys of an old MESSAGES dictionary")
    old.add_argument("file", type=Path)
    old.add_argument("--replace", action="store_true",
                     help="also overwrite texts the catalogs already have")
    sub.add_parser("check", help="every text in every language, same placeholders")
    args = parser.parse_args(argv)
    if args.command == "add":
        add({args.key: {lang: getattr(args, lang) for lang in i18n.LANGUAGES}}, replace=True)
    elif args.command == "import-dict":
        for key in add(messages_of(args.file), replace=args.replace):
            print(key)
    i18n.forget()
    problems = check()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
