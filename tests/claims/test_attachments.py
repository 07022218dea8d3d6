"""Attachments: type by content, size and count limits, random names outside the web root."""

import pytest

from tests.factories import EXE, HEIC, JPEG, PDF, PNG, WEBP
from warranty.claims import attachments as uploads
from warranty.claims.attachments import Upload, UploadRefused


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


@pytest.mark.parametrize(("given", "kind", "named"), [
    ("invoice.exe", "application/pdf", "invoice.pdf"), ("photo.JPEG", "image/jpeg", "photo.JPEG"),
    ("scan.jpg", "image/png", "scan.png"), ("receipt", "image/webp", "receipt.webp"),
    ("IMG_1.HEIF", "image/heic", "IMG_1.HEIF")])
def test_file_names_take_the_extension_of_the_detected_type(given, kind, named):
    assert uploads.named_for_type(given, kind) == named


@pytest.mark.parametrize("how", ["environment", "copied settings"])
def test_a_relative_upload_folder_works_for_upload_and_download(db, settings, tmp_path,
                                                                monkeypatch, how):
    import io
    import re

    from sqlmodel import select

    from tests.factories import paid_order
    from tests.http.web.pages import PURCHASE, csrf, multipart, sign_in_customer
    from warranty.claims.models import ClaimFile
    from warranty.core.settings import Settings
    from warranty.http.app import create_app

    # The service started in its folder with the default relative WARRANTY_UPLOAD_DIR.
    monkeypatch.chdir(tmp_path)
    if how == "environment":
        monkeypatch.setenv("WARRANTY_ENV", "test")
        relative = Settings(upload_dir="var/uploads")
        assert relative.upload_dir == str(tmp_path / "var" / "uploads")
        settings = settings.model_copy(update={"upload_dir": relative.upload_dir})
    else:
        settings = settings.model_copy(update={"upload_dir": "var/uploads"})
    app = create_app(settings)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # whatever the working directory is later, the folder stays
    client = app.test_client()
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    sign_in_customer(client, settings)
    path = f"/my/plans/{contract.public_id}/claims/new"
    form = {"csrf_token": csrf(client, path), "incident_date": "2025-03-01",
            "failure_type": "breakdown", "description": "映りません。", "estimated_amount": "",
            "files": [(io.BytesIO(PDF), "invoice.exe")]}
    response = client.post(path, **multipart(form))
    assert response.status_code == 303, response.get_data(as_text=True)
    stored = db.exec(select(ClaimFile)).one()
    db.commit()
    assert (tmp_path / "var" / "uploads" / stored.stored_name).read_bytes() == PDF
    assert stored.stored_name.endswith(".pdf") and stored.original_name == "invoice.pdf"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    link = re.search(r'href="(/my/claims/[^"]+/files/[^"]+)"', page).group(1)
    with client.get(link) as download:
        assert download.status_code == 200 and download.data == PDF
        assert download.headers["Content-Disposition"] == "attachment; filename=invoice.pdf"
    assert not (elsewhere / "var").exists()
