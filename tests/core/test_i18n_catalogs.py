"""The gettext catalogs (warranty/core/locales/<lang>/LC_MESSAGES/messages.po): every text in
Japanese and English with the same placeholders, and every key that code, mails or templates
use is in them, including the families built at run time (``"status." ~ claim.status``)."""

from __future__ import annotations

import ast
import re
import typing
from pathlib import Path

import pytest

from devtools import catalogs
from warranty.attention import services as attention
from warranty.claims import rules as claim_rules
from warranty.claims.models import STATUSES
from warranty.claims.transitions import DENY_CODES
from warranty.claims.workflow import DECISIONS
from warranty.contracts.lifecycle import TRANSITIONS as CONTRACT_STATUSES
from warranty.core import i18n
from warranty.pricing.rules import Coverage

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "warranty"
TEMPLATES = PACKAGE / "http" / "templates"
# Templates of the demo storefront: a stand-in for the store's own site, not the service's.
NOT_OURS = {"demo"}

# A template call with a literal key: t("key" ...), _("key"), gettext("key").
TEMPLATE_KEY = re.compile(r"""\b(?:t|_|gettext)\(\s*(["'])([A-Za-z0-9_.-]+)\1\s*[,)]""")
# A template call building its key: t("status." ~ claim.status).
TEMPLATE_FAMILY = re.compile(r"""\bt\(\s*(["'])([A-Za-z0-9_.-]+\.)\1\s*~""")


def _templates() -> list[Path]:
    return [p for p in TEMPLATES.rglob("*.html")
            if p.relative_to(TEMPLATES).parts[0] not in NOT_OURS]


def _python_calls() -> tuple[set[str], set[str]]:
    """Keys and key prefixes of ``t(lang, "key")`` / ``i18n.t(lang, f"family.{x}")`` calls
    in the package."""
    keys, families = set(), set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name != "t":
                continue
            key = node.args[1]
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                keys.add(key.value)
            elif isinstance(key, ast.JoinedStr) and isinstance(key.values[0], ast.Constant):
                families.add(key.values[0].value)
    return keys, families


def _template_uses() -> tuple[set[str], set[str]]:
    keys, families = set(), set()
    for path in _templates():
        text = path.read_text(encoding="utf-8")
        keys |= {m[2] for m in TEMPLATE_KEY.finditer(text)}
        families |= {m[2] for m in TEMPLATE_FAMILY.finditer(text)}
    return keys, families


def _field_problem_keys() -> set[str]:
    """The message keys the pages give a form field: ``problem.<code>`` of the claim rules'
    field problems and of the page's own checks, ``upload.<code>`` of refused uploads."""
    web = (PACKAGE / "http" / "web").rglob("*.py")
    literal = {node.value for path in web
               for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(node, ast.Constant) and isinstance(node.value, str)
               and re.fullmatch(r"(problem|upload)\.[a-z_]+", node.value)}
    rules_src = Path(claim_rules.__file__).read_text(encoding="utf-8")
    problems = set(re.findall(r"""problems\.append\(\(\s*"\w+",\s*"(\w+)"\s*\)\)""", rules_src))
    assert problems, "the claim rules' field problems were not found"
    attachments_src = (PACKAGE / "claims" / "attachments.py").read_text(encoding="utf-8")
    check_src = attachments_src.split("def check(", 1)[1].split("\ndef ", 1)[0]
    uploads = set(re.findall(r"""code="(\w+)\"""", check_src))
    assert uploads, "the upload refusals of attachments.check were not found"
    return literal | {f"problem.{c}" for c in problems} | {f"upload.{c}" for c in uploads}


# The values each key family built at run time takes.
FAMILIES: dict[str, tuple[str, ...]] = {
    "status.": STATUSES,
    "cstatus.": tuple(CONTRACT_STATUSES),
    "coverage.": typing.get_args(Coverage),
    "decision.": DECISIONS,
    "deny.": DENY_CODES,
    "failure.": claim_rules.FAILURE_TYPES,
    "lang.": i18n.LANGUAGES,
    # the claim events a customer's timeline names (customer/claim.html lists them)
    "event.": ("submitted", "info_provided", "files_added", "auto_approved"),
    # the attention page's status filter
    "staff.attention.": (*attention.STATUSES, "all"),
    "problem.": (),  # checked through _field_problem_keys
    "upload.": (),
}


def test_every_text_has_japanese_and_english_with_the_same_placeholders():
    assert catalogs.check() == []
    for lang in i18n.LANGUAGES:
        assert len(i18n.catalog(lang)) > 100


def test_the_catalogs_hold_the_same_keys_in_every_language():
    keys = {lang: set(i18n.catalog(lang)) for lang in i18n.LANGUAGES}
    assert keys["ja"] - keys["en"] == set()
    assert keys["en"] - keys["ja"] == set()


def test_every_key_used_in_code_and_templates_is_in_the_catalogs():
    code_keys, code_families = _python_calls()
    page_keys, page_families = _template_uses()
    used = code_keys | page_keys | _field_problem_keys()
    assert len(used) > 50  # the scans found the calls
    missing = sorted(key for key in used if not i18n.has(key))
    assert missing == []
    unknown_families = (code_families | page_families) - set(FAMILIES)
    assert unknown_families == set(), "add the family's values to FAMILIES"
    missing = sorted(prefix + value for prefix, values in FAMILIES.items()
                     for value in values if not i18n.has(prefix + value))
    assert missing == []


def test_t_fills_placeholders_and_falls_back():
    assert i18n.t("en", "scoped.title", order="A-1") == "Plans of order A-1"
    assert i18n.t("ja", "scoped.title", order="A-1") == "ご注文 A-1 のプラン"
    assert i18n.t("fr", "site.title") == i18n.t("ja", "site.title")  # unknown language
    assert i18n.t("en", "no.such.key") == "no.such.key"


def test_the_templates_gettext_reads_the_same_catalogs():
    for lang in i18n.LANGUAGES:
        assert i18n.translations(lang).gettext("site.title") == i18n.t(lang, "site.title")


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_the_catalogs_are_source_files_only(lang):
    folder = i18n.LOCALES / lang / "LC_MESSAGES"
    assert sorted(p.name for p in folder.iterdir()) == ["messages.po"]


def test_the_catalogs_are_package_data():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"warranty.core" = ["locales/*/LC_MESSAGES/*.po"]' in pyproject
