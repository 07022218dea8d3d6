"""/docs in a real browser: Swagger UI, served by the service itself, draws every operation of
the service's own /openapi.json at desktop and phone widths, and asks no other host for
anything. Screenshots go to artifacts/."""

from pathlib import Path
from urllib.parse import urlsplit

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.mark.parametrize("width", [1280, 390])
def test_docs_render_every_operation_from_local_files(browser, live_server, client, request,
                                                      width):
    ARTIFACTS.mkdir(exist_ok=True)
    backend = request.node.callspec.id.split("-")[0]
    doc = client.get("/openapi.json").json
    operations = sum(len(ops) for ops in doc["paths"].values())
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    requested, problems = [], []
    page.on("request", lambda r: requested.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(live_server + "/docs")
    page.locator(".opblock").nth(operations - 1).wait_for()
    assert page.locator(".opblock").count() == operations
    assert page.locator(".info .title").inner_text().startswith("warranty")
    report = page.locator(".opblock-get", has_text="/api/v1/reports/{name}")
    assert report.is_visible()
    report.locator(".opblock-summary-control").click()
    page.get_by_text("ReportDocument", exact=False).first.wait_for()
    assert page.locator("select", has_text="finance").count() == 1  # the name's enum
    page.screenshot(path=str(ARTIFACTS / f"api-docs-{width}-{backend}.png"), full_page=False)

    own = urlsplit(live_server).netloc
    assert any(url.endswith("/openapi.json") for url in requested)
    assert [url for url in requested
            if not url.startswith("data:") and urlsplit(url).netloc != own] == []
    assert problems == []
    context.close()


def test_docs_assets_come_from_the_installed_package(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "//" not in page.text.replace("<!doctype", "").split("<body>")[0].replace(
        "http-equiv", "")
    with client.get("/docs/assets/swagger-ui-bundle.js") as script:
        assert script.status_code == 200 and script.mimetype == "text/javascript"
        assert b"SwaggerUIBundle" in script.data
    with client.get("/docs/assets/LICENSE") as licence:
        assert b"Apache License" in licence.data
    assert client.get("/docs/assets/index.html").status_code == 404
    assert client.get("/docs/assets/..%2Fflask_swagger_ui.py").status_code == 404
