"""Attachments: type by content, size and count limits, random names outside the web root."""

import pytest

from tests.factories import EXE, HEIC, JPEG, PDF, PNG, WEBP
from warranty import uploads
from warranty.uploads import Upload, UploadRefused


@pytest.mark.parametrize(("data", "kind"), [(JPEG, "image/jpeg"), (PNG, "image/png"),
                                            (WEBP, "image/webp"), (HEIC, "image/heic"),
                                            (PDF, "application/pdf")])
def test_accepted_types_are_read_from_the_bytes(data, kind):
    assert uploads.sniff(data[:16]) == kind
    assert uploads.check([Upload("whatever.bin", data)]) == [kind]


@pytest.mark.parametrize("data", [EXE, b"<html><script>alert(1)</script>", b"GIF89a\x01\x00",
                                  b"PK\x03\x04zip", b"RIFF\x00\x00\x00\x00WAVEfmt "])
def test_other_content_is_refused_whatever_its_name(data):
    with pytest.raises(UploadRefused) as refused:
        uploads.check([Upload("holiday.jpg", data)])
    assert refused.value.code == "file_type_refused"
    assert refused.value.details == {"name": "holiday.jpg"}


def test_size_limit_is_ten_megabytes_per_file():
    at_limit = JPEG + b"\x00" * (uploads.MAX_FILE_BYTES - len(JPEG))
    assert uploads.check([Upload("big.jpg", at_limit)]) == ["image/jpeg"]
    with pytest.raises(UploadRefused) as refused:
        uploads.check([Upload("big.jpg", at_limit + b"\x00")])
    assert refused.value.code == "file_too_large"


def test_count_limits_per_submission_and_per_claim():
    assert len(uploads.check([Upload(f"{i}.png", PNG) for i in range(5)])) == 5
    with pytest.raises(UploadRefused) as too_many:
        uploads.check([Upload(f"{i}.png", PNG) for i in range(6)])
    assert too_many.value.code == "too_many_files"
    with pytest.raises(UploadRefused):
        uploads.check([Upload("1.png", PNG)], already=uploads.MAX_FILES_PER_CLAIM)


def test_empty_files_are_refused():
    with pytest.raises(UploadRefused) as refused:
        uploads.check([Upload("empty.jpg", b"")])
    assert refused.value.code == "empty_file"


def test_stored_under_a_random_name_with_the_detected_extension(tmp_path):
    name, digest = uploads.store(str(tmp_path), PDF, "application/pdf")
    assert name.endswith(".pdf") and len(name) == 36
    assert (tmp_path / name).read_bytes() == PDF and len(digest) == 64
    other, _ = uploads.store(str(tmp_path), PDF, "application/pdf")
    assert other != name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, other])


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b.jpg", ".hidden", "", "..\\x.jpg"])
def test_stored_paths_cannot_escape_the_folder(tmp_path, name):
    with pytest.raises(UploadRefused):
        uploads.path_of(str(tmp_path), name)


@pytest.mark.parametrize(("given", "shown"), [("C:\\Users\\me\\photo.jpg", "photo.jpg"),
                                              ("../../x.jpg", "x.jpg"), ('a"<b>.jpg', "ab.jpg"),
                                              ("", "file"), ("写真.jpg", "写真.jpg")])
def test_customer_file_names_are_made_harmless(given, shown):
    assert uploads.safe_name(given) == shown
