"""`warranty create-staff`: accounts for the staff pages, password hashed."""

import pytest
from click.testing import CliRunner
from sqlmodel import select

from warranty.cli import main
from warranty.core.errors import Unauthorized
from warranty.staff import accounts as staff_accounts
from warranty.staff.models import StaffUser


@pytest.fixture
def run(database_url, monkeypatch):
    """Invoke the CLI against the test database, with standard input."""
    monkeypatch.setenv("WARRANTY_ENV", "test")
    monkeypatch.setenv("WARRANTY_DATABASE_URL", database_url)

    def invoke(*args, stdin=None):
        return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)

    return invoke


def test_create_staff_from_stdin_hashes_the_password(run, db):
    result = run("create-staff", "Fin@Store.example", "--role", "finance", "--password-stdin",
                 stdin="a long enough secret\n")
    assert result.exit_code == 0, result.output
    user = db.exec(select(StaffUser)).one()
    assert (user.email, user.role) == ("fin@store.example", "finance")
    assert user.password_hash.startswith("scrypt:") and "secret" not in user.password_hash
    assert staff_accounts.authenticate(session=db, email="fin@store.example",
                                       password="a long enough secret").id == user.id
    with pytest.raises(Unauthorized):
        staff_accounts.authenticate(session=db, email="fin@store.example", password="wrong")


def test_create_staff_prompts_twice(run, db):
    result = run("create-staff", "a@store.example", stdin="a long enough secret\n"
                 "a long enough secret\n")
    assert result.exit_code == 0, result.output
    assert db.exec(select(StaffUser.role)).one() == "support"  # the least-privileged role


def test_create_staff_refuses_weak_passwords_duplicates_and_unknown_roles(run, db):
    weak = run("create-staff", "a@store.example", "--password-stdin", stdin="short\n")
    assert weak.exit_code == 1 and "at least 12 characters" in weak.output
    run("create-staff", "a@store.example", "--password-stdin", stdin="a long enough secret\n")
    again = run("create-staff", "a@store.example", "--password-stdin",
                stdin="another long secret\n")
    assert again.exit_code == 1 and "exists already" in again.output
    role = run("create-staff", "b@store.example", "--role", "owner", "--password-stdin",
               stdin="a long enough secret\n")
    assert role.exit_code == 2
    assert len(db.exec(select(StaffUser)).all()) == 1
