"""Demo bank profiles, one per conversation, kept in a SQL database by the action server.

A profile is created on first use, keyed by the conversation's sender id, and
generated from a seed derived from that id: the same conversation always gets
the same accounts, two conversations never share one. Amounts are stored in
cents so sums stay exact. The tables live in a SQLite file under the state
folder, or in the PostgreSQL database of ``$DATABASE_URL``.

A card payment dated in the future waits in ``financial_scheduled_payments``
and is applied the first time the profile is read on or after its day.
"""
import datetime
import hashlib
import random
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterator, List, Optional, Tuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from handoff.sqlstore import Migration, get_engine

DB_NAME = "financial-profiles.sqlite"
PREFIX = "financial"
BANK = "bank"
CREDIT = "credit"
SPEND = "spend"
DEPOSIT = "deposit"
CARD_PAYMENT = "card_payment"
TRANSFER = "transfer"
CREDIT_CARDS = ("emblem", "justice bank", "credit all", "iron bank")
VENDORS = ("target", "starbucks", "amazon")
DEPOSIT_SOURCES = ("interest", "employer")
RECIPIENT_POOL = (
    "Maria Lopez", "Tom Becker", "Priya Shah", "Kenji Sato", "Amara Okafor",
    "Lucas Silva", "Ingrid Berg", "Omar Haddad", "Chloe Martin",
)
HISTORY_DAYS = 120
SCHEDULED, PAID, FAILED = "scheduled", "paid", "failed"

metadata = sa.MetaData()
profiles = sa.Table(
    "financial_profiles", metadata,
    sa.Column("sender_id", sa.String(255), primary_key=True),
    sa.Column("created_on", sa.String(10), nullable=False),
)
accounts = sa.Table(
    "financial_accounts", metadata,
    sa.Column("sender_id", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("balance_cents", sa.BigInteger, nullable=False),
    sa.Column("minimum_due_cents", sa.BigInteger, nullable=False, server_default="0"),
)
recipients = sa.Table(
    "financial_recipients", metadata,
    sa.Column("sender_id", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
)
transactions = sa.Table(
    "financial_transactions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sender_id", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("party", sa.String(128), nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Index("financial_transactions_by_sender", "sender_id", "kind", "day"),
)
scheduled_payments = sa.Table(
    "financial_scheduled_payments", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sender_id", sa.String(255), nullable=False),
    sa.Column("card", sa.String(64), nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Index("financial_scheduled_by_sender", "sender_id", "state", "day"),
)


def _create_profiles(connection: Connection) -> None:
    for table in (profiles, accounts, recipients, transactions):
        table.create(connection)


def _create_scheduled_payments(connection: Connection) -> None:
    scheduled_payments.create(connection)


# Append only: a migration that has run somewhere must never change. Migration 1
# creates the tables as declared above; the day one of them changes, that change
# becomes a new migration and migration 1 spells out the old shape.
MIGRATIONS = [
    Migration(1, "profiles, accounts, recipients and transaction history", _create_profiles),
    Migration(2, "card payments scheduled for a later day", _create_scheduled_payments),
]


@dataclass(frozen=True)
class Account:
    """The bank account or one credit card; a card's balance is what is owed on it."""

    name: str
    kind: str
    balance: Decimal
    minimum_due: Decimal


@dataclass(frozen=True)
class ScheduledPayment:
    """A card payment waiting for its day."""

    card: str
    amount: Decimal
    day: datetime.date


def engine() -> Engine:
    """Return the engine of the profile database, its schema up to date."""
    return get_engine(DB_NAME, PREFIX, MIGRATIONS)


@contextmanager
def connect() -> Iterator[Connection]:
    """Open a transaction on the profile database; commit on success, roll back on error."""
    with engine().begin() as db:
        yield db


def _cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def _money(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


def _seed(sender_id: str) -> int:
    # Not hash(): Python salts it per process, and profiles must not change on restart.
    return int(hashlib.sha256(sender_id.encode("utf-8")).hexdigest()[:16], 16)


def ensure_profile(db: Connection, sender_id: str, today: Optional[datetime.date] = None) -> None:
    """Create the demo profile of ``sender_id`` unless it exists; apply card payments now due."""
    today = today or datetime.date.today()
    exists = db.execute(sa.select(profiles.c.sender_id).where(profiles.c.sender_id == sender_id)).first()
    if exists:
        _apply_due_payments(db, sender_id, today)
        return
    rng = random.Random(_seed(sender_id))
    db.execute(sa.insert(profiles).values(sender_id=sender_id, created_on=today.isoformat()))
    rows = [dict(name=BANK, kind=BANK, balance_cents=rng.randint(3_000_00, 9_000_00), minimum_due_cents=0)]
    for card in CREDIT_CARDS:
        owed = rng.randint(150_00, 2_500_00)
        # A typical minimum payment: a small share of what is owed, never under $25.
        minimum = max(25_00, owed * 3 // 100)
        rows.append(dict(name=card, kind=CREDIT, balance_cents=owed, minimum_due_cents=minimum))
    db.execute(sa.insert(accounts), [dict(row, sender_id=sender_id) for row in rows])
    db.execute(sa.insert(recipients), [
        dict(sender_id=sender_id, name=name) for name in rng.sample(RECIPIENT_POOL, 5)
    ])
    history = []
    for days_ago in range(1, HISTORY_DAYS + 1):
        day = today - datetime.timedelta(days=days_ago)
        for vendor in VENDORS:
            if rng.random() < 0.3:
                history.append((SPEND, vendor, rng.randint(3_00, 150_00), day))
        if days_ago % 14 == 0:
            history.append((DEPOSIT, "employer", rng.randint(1_800_00, 2_400_00), day))
        if day.day == 1:
            history.append((DEPOSIT, "interest", rng.randint(1_00, 20_00), day))
    db.execute(sa.insert(transactions), [
        dict(sender_id=sender_id, kind=kind, party=party, amount_cents=cents, day=day.isoformat())
        for kind, party, cents, day in history
    ])


def list_accounts(db: Connection, sender_id: str) -> List[Account]:
    """Return the bank account first, then the credit cards in their usual order."""
    ensure_profile(db, sender_id)
    rows = db.execute(
        sa.select(accounts.c.name, accounts.c.kind, accounts.c.balance_cents, accounts.c.minimum_due_cents)
        .where(accounts.c.sender_id == sender_id)
    )
    order = (BANK,) + CREDIT_CARDS
    found = [Account(name, kind, _money(balance), _money(minimum)) for name, kind, balance, minimum in rows]
    return sorted(found, key=lambda account: order.index(account.name))


def get_account(db: Connection, sender_id: str, name: str) -> Account:
    """Return one account by name ("bank" or a card name); raise KeyError if unknown."""
    for account in list_accounts(db, sender_id):
        if account.name == name:
            return account
    known = ", ".join((BANK,) + CREDIT_CARDS)
    raise KeyError(f"no account {name!r} in the profile of {sender_id!r} (known: {known})")


def list_recipients(db: Connection, sender_id: str) -> List[str]:
    """Return the names of the known recipients, sorted."""
    ensure_profile(db, sender_id)
    rows = db.execute(
        sa.select(recipients.c.name).where(recipients.c.sender_id == sender_id).order_by(recipients.c.name)
    )
    return [name for (name,) in rows]


def transfer(db: Connection, sender_id: str, recipient: str, amount: Decimal, day: datetime.date) -> Decimal:
    """Send ``amount`` from the bank account to ``recipient``; return the new bank balance."""
    ensure_profile(db, sender_id)
    _debit_bank(db, sender_id, amount)
    _record(db, sender_id, TRANSFER, recipient, amount, day)
    return get_account(db, sender_id, BANK).balance


def pay_card(db: Connection, sender_id: str, card: str, amount: Decimal, day: datetime.date) -> Account:
    """Pay ``amount`` off ``card`` from the bank account now; return the card afterwards."""
    ensure_profile(db, sender_id, day)
    _pay_card(db, sender_id, card, amount, day)
    return get_account(db, sender_id, card)


def schedule_card_payment(
    db: Connection, sender_id: str, card: str, amount: Decimal, day: datetime.date
) -> ScheduledPayment:
    """Keep a payment of ``amount`` off ``card`` for ``day``; balances change only on that day."""
    ensure_profile(db, sender_id)
    get_account(db, sender_id, card)
    if amount <= 0:
        raise ValueError(f"cannot schedule a payment of {amount}")
    db.execute(sa.insert(scheduled_payments).values(
        sender_id=sender_id, card=card, amount_cents=_cents(amount), day=day.isoformat(), state=SCHEDULED,
    ))
    return ScheduledPayment(card, amount, day)


def list_scheduled_payments(db: Connection, sender_id: str) -> List[ScheduledPayment]:
    """Return the card payments still waiting for their day, soonest first."""
    ensure_profile(db, sender_id)
    rows = db.execute(
        sa.select(scheduled_payments.c.card, scheduled_payments.c.amount_cents, scheduled_payments.c.day)
        .where(scheduled_payments.c.sender_id == sender_id, scheduled_payments.c.state == SCHEDULED)
        .order_by(scheduled_payments.c.day, scheduled_payments.c.id)
    )
    return [
        ScheduledPayment(card, _money(cents), datetime.date.fromisoformat(day)) for card, cents, day in rows
    ]


def _apply_due_payments(db: Connection, sender_id: str, today: datetime.date) -> None:
    due = db.execute(
        sa.select(scheduled_payments.c.id, scheduled_payments.c.card, scheduled_payments.c.amount_cents,
                  scheduled_payments.c.day)
        .where(
            scheduled_payments.c.sender_id == sender_id,
            scheduled_payments.c.state == SCHEDULED,
            scheduled_payments.c.day <= today.isoformat(),
        )
        .order_by(scheduled_payments.c.day, scheduled_payments.c.id)
    ).all()
    for payment_id, card, cents, day in due:
        try:
            _pay_card(db, sender_id, card, _money(cents), datetime.date.fromisoformat(day))
            state = PAID
        except ValueError:
            # The bank balance no longer covers it; a real bank would notify the person.
            state = FAILED
        db.execute(
            sa.update(scheduled_payments).where(scheduled_payments.c.id == payment_id).values(state=state)
        )


def _pay_card(db: Connection, sender_id: str, card: str, amount: Decimal, day: datetime.date) -> None:
    _debit_bank(db, sender_id, amount)
    cents = _cents(amount)
    db.execute(
        sa.update(accounts)
        .where(accounts.c.sender_id == sender_id, accounts.c.name == card)
        .values(
            balance_cents=accounts.c.balance_cents - cents,
            minimum_due_cents=sa.case(
                (accounts.c.minimum_due_cents > cents, accounts.c.minimum_due_cents - cents), else_=0
            ),
        )
    )
    _record(db, sender_id, CARD_PAYMENT, card, amount, day)


def _record(
    db: Connection, sender_id: str, kind: str, party: str, amount: Decimal, day: datetime.date
) -> None:
    db.execute(sa.insert(transactions).values(
        sender_id=sender_id, kind=kind, party=party, amount_cents=_cents(amount), day=day.isoformat(),
    ))


def _debit_bank(db: Connection, sender_id: str, amount: Decimal) -> None:
    bank = db.execute(
        sa.select(accounts.c.balance_cents).where(accounts.c.sender_id == sender_id, accounts.c.name == BANK)
    ).scalar_one()
    if amount <= 0 or _cents(amount) > bank:
        raise ValueError(f"cannot take {amount} from a bank balance of {_money(bank)}")
    db.execute(
        sa.update(accounts)
        .where(accounts.c.sender_id == sender_id, accounts.c.name == BANK)
        .values(balance_cents=accounts.c.balance_cents - _cents(amount))
    )


def search_transactions(
    db: Connection,
    sender_id: str,
    kind: str,
    first: datetime.date,
    last: datetime.date,
    party: Optional[str] = None,
) -> Tuple[Decimal, int]:
    """Return the total and count of spending or deposits between two days, inclusive."""
    ensure_profile(db, sender_id)
    conditions = [
        transactions.c.sender_id == sender_id,
        transactions.c.kind == kind,
        transactions.c.day.between(first.isoformat(), last.isoformat()),
    ]
    if party:
        conditions.append(transactions.c.party == party)
    total, count = db.execute(
        sa.select(sa.func.coalesce(sa.func.sum(transactions.c.amount_cents), 0), sa.func.count())
        .where(*conditions)
    ).one()
    return _money(total), count
