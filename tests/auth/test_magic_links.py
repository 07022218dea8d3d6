"""Customer links: signed, expiring, bound to their purpose, each with a one-time id."""

from urllib.parse import parse_qs, urlsplit

import pytest

from devtools.settings import demo_settings
from warranty.auth import links as magic_links


@pytest.fixture
def settings():
    return demo_settings(env="test", secret_key="link-test-secret")


def _token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def test_plans_link_round_trip(settings):
    url = magic_links.plans_link(settings, " Buyer@Example.com ", lang="en")
    assert url.startswith("http://127.0.0.1:5000/my/sign-in?token=") and url.endswith("&lang=en")
    link = magic_links.read_plans_link(settings, _token(url))
    assert link.email == "buyer@example.com" and link.next is None and len(link.jti) >= 16
    assert magic_links.email_from_plans_token(settings, _token(url)) == "buyer@example.com"
    again = magic_links.read_plans_link(settings, _token(magic_links.plans_link(
        settings, "buyer@example.com")))
    assert again.jti != link.jti  # each mailed link is spent on its own


def test_the_next_page_is_signed_into_the_link_and_only_a_claim_page(settings):
    url = magic_links.plans_link(settings, "a@example.com", next="/my/claims/cl_1")
    assert magic_links.read_plans_link(settings, _token(url)).next == "/my/claims/cl_1"
    for elsewhere in ("https://evil.example/", "//evil.example/my/claims/x", "/staff/claims",
                      "/my/claims/\\evil"):
        url = magic_links.plans_link(settings, "a@example.com", next=elsewhere)
        assert magic_links.read_plans_link(settings, _token(url)).next is None
    assert "next=" not in magic_links.plans_link(settings, "a@example.com",
                                                  next="/my/claims/cl_1")


def test_tampered_foreign_expired_or_old_links_are_refused(settings):
    token = _token(magic_links.plans_link(settings, "a@example.com"))
    with pytest.raises(magic_links.InvalidLink):
        magic_links.read_plans_link(settings, token[:-2] + "xx")
    other = demo_settings(env="test", secret_key="another-secret")
    with pytest.raises(magic_links.InvalidLink):
        magic_links.read_plans_link(other, token)
    with pytest.raises(magic_links.InvalidLink):
        magic_links.read_token(settings, "post_purchase", token)
    with pytest.raises(magic_links.InvalidLink) as expired:
        magic_links.read_token(settings, "plans", token, max_age=-1)
    assert expired.value.code == "link_expired"
    # A link mailed before links had one-time ids can no longer sign in.
    old = magic_links.make_token(settings, "plans", {"email": "a@example.com"})
    with pytest.raises(magic_links.InvalidLink) as outdated:
        magic_links.read_plans_link(settings, old)
    assert outdated.value.code == "link_outdated"
    # Whose address a link was for is known when the signature is ours, whatever its age.
    assert magic_links.email_of_link(settings, old) == "a@example.com"
    assert magic_links.email_of_link(settings, token[:-2] + "xx") is None
    assert magic_links.email_of_link(other, token) is None
