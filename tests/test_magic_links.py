"""Customer links: signed, expiring, bound to their purpose."""

import pytest

from warranty import magic_links
from warranty.settings import demo_settings


@pytest.fixture
def settings():
    return demo_settings(env="test", secret_key="link-test-secret")


def test_plans_link_round_trip(settings):
    url = magic_links.plans_link(settings, " Buyer@Example.com ")
    token = url.split("token=")[1]
    assert url.startswith("http://127.0.0.1:5000/my/plans?token=")
    assert magic_links.email_from_plans_token(settings, token) == "buyer@example.com"


def test_tampered_foreign_or_expired_links_are_refused(settings):
    token = magic_links.make_token(settings, "plans", {"email": "a@example.com"})
    with pytest.raises(magic_links.InvalidLink):
        magic_links.email_from_plans_token(settings, token[:-2] + "xx")
    other = demo_settings(env="test", secret_key="another-secret")
    with pytest.raises(magic_links.InvalidLink):
        magic_links.email_from_plans_token(other, token)
    with pytest.raises(magic_links.InvalidLink):
        magic_links.read_token(settings, "post_purchase", token)
    with pytest.raises(magic_links.InvalidLink) as expired:
        magic_links.read_token(settings, "plans", token, max_age=-1)
    assert expired.value.code == "link_expired"
