"""The holdout arm is a reproducible hash; client times are clamped; token buckets limit."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from warranty.experiment import arms, events


def test_arm_is_the_documented_hash_so_reports_can_recompute_it():
    for n in range(200):
        vid = f"visitor-{n:04d}"
        digest = hashlib.sha256(f"salt-a:{vid}".encode()).digest()
        expected = int.from_bytes(digest[:8], "big") / 2**64 < 0.3
        assert (arms.assign_arm(vid, salt="salt-a", share=0.3) == "holdout") == expected


def test_holdout_share_is_respected_and_growing_it_only_adds_visitors():
    ids = [f"v{n:06d}" for n in range(20000)]
    at5 = {v for v in ids if arms.assign_arm(v, salt="s", share=0.05) == "holdout"}
    at10 = {v for v in ids if arms.assign_arm(v, salt="s", share=0.10) == "holdout"}
    assert 0.09 < len(at10) / len(ids) < 0.11
    assert 0.04 < len(at5) / len(ids) < 0.06
    assert at5 <= at10
    other_salt = {v for v in ids if arms.assign_arm(v, salt="t", share=0.10) == "holdout"}
    assert len(other_salt & at10) < len(at10) * 0.2  # a new salt reshuffles
    assert arms.assign_arm("v000001", salt="s", share=0.0) == "treatment"
    assert arms.assign_arm("v000001", salt="s", share=1.0) == "holdout"


@pytest.mark.parametrize(("offset", "expected"), [
    (timedelta(minutes=-5), timedelta(minutes=-5)),
    (timedelta(hours=3), timedelta(0)),  # from the future: now
    (timedelta(days=-30), -events.MAX_CLIENT_AGE),  # too old: a day ago
    (None, timedelta(0)),
])
def test_client_time_is_clamped(offset, expected):
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    given = None if offset is None else now + offset
    assert events.clamp_client_time(given, now) == now + expected
