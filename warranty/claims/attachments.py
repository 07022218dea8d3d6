"""Claim attachments: type checked by content (magic bytes), stored under random names."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from warranty.core.errors import ValidationFailed

MAX_FILE_BYTES = 10 * 1024 * 1024  # 10 MB per photo or PDF
MAX_FILES_PER_SUBMISSION = 5  # one form or filing
MAX_FILES_PER_CLAIM = 10  # filing plus answers to "more information, please"

# Detected type → the extension its stored copy gets.
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp",
              "image/heic": ".heic", "application/pdf": ".pdf"}
# ISO-BMFF brands of HEIF/HEIC stills (the "simple" case: a plain ftyp box at offset 4).
HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"}


class UploadRefused(ValidationFailed):
    """An attachment that is too large, too many, empty or of a type we do not accept."""

    code = "upload_refused"


@dataclass(frozen=True)
class Upload:
    """One received file: the name the customer gave it and its bytes."""

    filename: str
    data: bytes


def sniff(head: bytes) -> str | None:
    """The content type of a file from its first bytes, or None when it is not accepted."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in HEIC_BRANDS:
        return "image/heic"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def check(uploads: list[Upload], *, already: int = 0) -> list[str]:
    """Each upload's detected type; UploadRefused names the first file that breaks a limit."""
    if len(uploads) > MAX_FILES_PER_SUBMISSION:
        raise UploadRefused(f"attach at most {MAX_FILES_PER_SUBMISSION} files at a time",
                            code="too_many_files")
    if already + len(uploads) > MAX_FILES_PER_CLAIM:
        raise UploadRefused(f"a claim holds at most {MAX_FILES_PER_CLAIM} files",
                            code="too_many_files")
    types = []
    for upload in uploads:
        name = safe_name(upload.filename)
        if not upload.data:
            raise UploadRefused(f"{name} is empty", code="empty_file", details={"name": name})
        if len(upload.data) > MAX_FILE_BYTES:
            raise UploadRefused(f"{name} is larger than 10 MB", code="file_too_large",
                                details={"name": name})
        kind = sniff(upload.data[:16])
        if kind is None:
            raise UploadRefused(f"{name} is not a JPEG, PNG, WebP, HEIC photo or a PDF",
                                code="file_type_refused", details={"name": name})
        types.append(kind)
    return types


def safe_name(filename: str) -> str:
    """The customer's file name reduced to something harmless to show and send back."""
    base = os.path.basename((filename or "").replace("\\", "/")).strip()
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '"<>|:*?')
    return cleaned[:200] or "file"


# Other spellings of the accepted types' extensions, kept as the customer wrote them.
SAME_TYPE = {"image/jpeg": {".jpg", ".jpeg", ".jpe", ".jfif"}, "image/heic": {".heic", ".heif"}}


def named_for_type(name: str, content_type: str) -> str:
    """A file name whose extension says what the bytes are: ``invoice.exe`` holding a PDF
    becomes ``invoice.pdf``, so the downloaded copy opens as what it is (and never runs)."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        stem, suffix = name, ""
    wanted = EXTENSIONS[content_type]
    if f".{suffix.lower()}" in SAME_TYPE.get(content_type, {wanted}):
        return name
    return f"{stem[:200 - len(wanted)]}{wanted}"


def store(upload_dir: str, data: bytes, content_type: str) -> tuple[str, str]:
    """Write ``data`` under a new random name; returns (stored_name, sha256)."""
    root = Path(upload_dir)
    root.mkdir(parents=True, exist_ok=True)
    stored = secrets.token_hex(16) + EXTENSIONS[content_type]
    partial = root / f".{stored}.part"
    partial.write_bytes(data)
    os.replace(partial, root / stored)  # readers never see half a file
    return stored, hashlib.sha256(data).hexdigest()


def path_of(upload_dir: str, stored_name: str) -> Path:
    """Where a stored file lives; refuses names that are not ours (no path tricks)."""
    if not stored_name or "/" in stored_name or "\\" in stored_name or stored_name[0] == ".":
        raise UploadRefused("not a stored file name", code="bad_stored_name")
    return Path(upload_dir) / stored_name
