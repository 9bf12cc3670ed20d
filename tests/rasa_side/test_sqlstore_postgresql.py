"""The bots' demo data on a real PostgreSQL: a throwaway cluster on a free loopback port.

Skipped where Debian's postgresql is not installed (the server is conftest.py's); the same
store code runs on SQLite in every other test.
"""
import datetime
from decimal import Decimal
from typing import Iterator, List

import psycopg2
import pytest

from handoff import sqlstore
from tests.rasa_side.test_financial_actions import profiles
from tests.rasa_side.test_helpdesk_actions import incidents_db


@pytest.fixture(scope="module")
def postgresql_url(postgresql: str) -> Iterator[str]:
    """The throwaway PostgreSQL (conftest.py), with this module's engines closed before it stops."""
    yield postgresql
    sqlstore.dispose_all()


@pytest.fixture(autouse=True)
def on_postgresql(postgresql_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", postgresql_url)
    return postgresql_url


def tables(url: str) -> List[str]:
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
        )
        return [name for (name,) in cursor.fetchall()]


def test_incidents_are_numbered_kept_per_conversation_and_found_by_number(on_postgresql: str):
    opened = incidents_db.create_incident(
        email="Ana@Example.com", priority="low", title="Slow wifi", description="d", conversation_id="c1"
    )
    assert opened.number.startswith("INC")
    assert incidents_db.list_incidents("ana@example.com", "c1") == [opened]
    assert incidents_db.list_incidents("ana@example.com", "c2") == []
    assert incidents_db.find_incident(opened.number, "ana@example.com") == opened
    assert {"helpdesk_incidents", "helpdesk_schema_version"} <= set(tables(on_postgresql))


def test_profiles_transfers_and_scheduled_payments_work_the_same(on_postgresql: str):
    today = datetime.date.today()
    later = today + datetime.timedelta(days=2)
    with profiles.connect() as db:
        before = {a.name: a.balance for a in profiles.list_accounts(db, "p1")}
        profiles.transfer(db, "p1", "Maria Lopez", Decimal("5"), today)
        profiles.schedule_card_payment(db, "p1", "emblem", Decimal("10"), later)
        assert profiles.get_account(db, "p1", "emblem").balance == before["emblem"]
        profiles.ensure_profile(db, "p1", later)
        after = {a.name: a.balance for a in profiles.list_accounts(db, "p1")}
        month_ago = today - datetime.timedelta(days=30)
        total, count = profiles.search_transactions(db, "p1", "spend", month_ago, today)
    assert (after["bank"], after["emblem"]) == (before["bank"] - 15, before["emblem"] - 10)
    assert count > 0 and total > 0
    assert "financial_scheduled_payments" in tables(on_postgresql)


def test_the_schema_is_migrated_once_and_its_version_recorded(on_postgresql: str):
    engine = profiles.engine()
    assert sqlstore.migrate(engine, profiles.PREFIX, profiles.MIGRATIONS) == len(profiles.MIGRATIONS)
    with engine.connect() as connection:
        assert sqlstore.schema_version(connection, profiles.PREFIX) == len(profiles.MIGRATIONS)
