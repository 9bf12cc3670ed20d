"""Demo bank profiles, one per conversation, kept in SQLite by the action server.

A profile is created on first use, keyed by the conversation's sender id, and
generated from a seed derived from that id: the same conversation always gets
the same accounts, two conversations never share one. Amounts are stored in
cents so sums stay exact.
"""
import datetime
import hashlib
import random
import sqlite3
from contextlib import closing, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from handoff.config import state_dir

DB_NAME = "financial-profiles.sqlite"
BANK = "bank"
CREDIT = "credit"
SPEND = "spend"
DEPOSIT = "deposit"
CREDIT_CARDS = ("emblem", "justice bank", "credit all", "iron bank")
VENDORS = ("target", "starbucks", "amazon")
DEPOSIT_SOURCES = ("interest", "employer")
RECIPIENT_POOL = (
    "Maria Lopez", "Tom Becker", "Priya Shah", "Kenji Sato", "Amara Okafor",
    "Lucas Silva", "Ingrid Berg", "Omar Haddad", "Chloe Martin",
)
HISTORY_DAYS = 120

SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    sender_id TEXT PRIMARY KEY,
    created_on TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    sender_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    balance_cents INTEGER NOT NULL,
    minimum_due_cents INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sender_id, name)
);
CREATE TABLE IF NOT EXISTS recipients (
    sender_id TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (sender_id, name)
);
CREATE TABLE IF NOT EXISTS transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sender_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    party TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    day TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transactions_by_sender ON transactions (sender_id, kind, day);
"""


@dataclass(frozen=True)
class Account:
    """The bank account or one credit card; a card's balance is what is owed on it."""

    name: str
    kind: str
    balance: Decimal
    minimum_due: Decimal


def db_path() -> Path:
    """Return the database file: ``$HANDOFF_STATE_DIR/financial-profiles.sqlite`` (var/ if unset)."""
    return state_dir() / DB_NAME


@contextmanager
def connect(path: Optional[Path] = None) -> Iterator[sqlite3.Connection]:
    """Open the database, create the tables if needed, commit on success."""
    path = path or db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(str(path), timeout=10)) as db:
        db.executescript(SCHEMA)
        with db:
            yield db


def _cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def _money(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


def _seed(sender_id: str) -> int:
    # Not hash(): Python salts it per process, and profiles must not change on restart.
    return int(hashlib.sha256(sender_id.encode("utf-8")).hexdigest()[:16], 16)


def ensure_profile(db: sqlite3.Connection, sender_id: str, today: Optional[datetime.date] = None) -> None:
    """Create the demo profile of ``sender_id`` unless it exists."""
    if db.execute("SELECT 1 FROM profiles WHERE sender_id = ?", (sender_id,)).fetchone():
        return
    today = today or datetime.date.today()
    rng = random.Random(_seed(sender_id))
    db.execute("INSERT INTO profiles VALUES (?, ?)", (sender_id, today.isoformat()))
    db.execute(
        "INSERT INTO accounts VALUES (?, ?, ?, ?, 0)",
        (sender_id, BANK, BANK, rng.randint(3_000_00, 9_000_00)),
    )
    for card in CREDIT_CARDS:
        owed = rng.randint(150_00, 2_500_00)
        # A typical minimum payment: a small share of what is owed, never under $25.
        minimum = max(25_00, owed * 3 // 100)
        db.execute("INSERT INTO accounts VALUES (?, ?, ?, ?, ?)", (sender_id, card, CREDIT, owed, minimum))
    for name in rng.sample(RECIPIENT_POOL, 5):
        db.execute("INSERT INTO recipients VALUES (?, ?)", (sender_id, name))
    rows: List[Tuple[str, str, str, int, str]] = []
    for days_ago in range(1, HISTORY_DAYS + 1):
        day = (today - datetime.timedelta(days=days_ago)).isoformat()
        for vendor in VENDORS:
            if rng.random() < 0.3:
                rows.append((sender_id, SPEND, vendor, rng.randint(3_00, 150_00), day))
        if days_ago % 14 == 0:
            rows.append((sender_id, DEPOSIT, "employer", rng.randint(1_800_00, 2_400_00), day))
        if (today - datetime.timedelta(days=days_ago)).day == 1:
            rows.append((sender_id, DEPOSIT, "interest", rng.randint(1_00, 20_00), day))
    db.executemany(
        "INSERT INTO transactions (sender_id, kind, party, amount_cents, day) VALUES (?, ?, ?, ?, ?)", rows
    )


def list_accounts(db: sqlite3.Connection, sender_id: str) -> List[Account]:
    """Return the bank account first, then the credit cards in their usual order."""
    ensure_profile(db, sender_id)
    rows = db.execute(
        "SELECT name, kind, balance_cents, minimum_due_cents FROM accounts WHERE sender_id = ?",
        (sender_id,),
    ).fetchall()
    order = (BANK,) + CREDIT_CARDS
    accounts = [
        Account(name, kind, _money(balance), _money(minimum)) for name, kind, balance, minimum in rows
    ]
    return sorted(accounts, key=lambda account: order.index(account.name))


def get_account(db: sqlite3.Connection, sender_id: str, name: str) -> Account:
    """Return one account by name ("bank" or a card name); raise KeyError if unknown."""
    for account in list_accounts(db, sender_id):
        if account.name == name:
            return account
    known = ", ".join((BANK,) + CREDIT_CARDS)
    raise KeyError(f"no account {name!r} in the profile of {sender_id!r} (known: {known})")


def list_recipients(db: sqlite3.Connection, sender_id: str) -> List[str]:
    """Return the names of the known recipients, sorted."""
    ensure_profile(db, sender_id)
    rows = db.execute("SELECT name FROM recipients WHERE sender_id = ? ORDER BY name", (sender_id,))
    return [name for (name,) in rows]


def transfer(
    db: sqlite3.Connection, sender_id: str, recipient: str, amount: Decimal, day: datetime.date
) -> Decimal:
    """Send ``amount`` from the bank account to ``recipient``; return the new bank balance."""
    ensure_profile(db, sender_id)
    _debit_bank(db, sender_id, amount)
    db.execute(
        "INSERT INTO transactions (sender_id, kind, party, amount_cents, day) VALUES (?, ?, ?, ?, ?)",
        (sender_id, "transfer", recipient, _cents(amount), day.isoformat()),
    )
    return get_account(db, sender_id, BANK).balance


def pay_card(
    db: sqlite3.Connection, sender_id: str, card: str, amount: Decimal, day: datetime.date
) -> Account:
    """Pay ``amount`` off ``card`` from the bank account; return the card afterwards."""
    ensure_profile(db, sender_id)
    _debit_bank(db, sender_id, amount)
    db.execute(
        "UPDATE accounts SET balance_cents = balance_cents - ?,"
        " minimum_due_cents = MAX(0, minimum_due_cents - ?) WHERE sender_id = ? AND name = ?",
        (_cents(amount), _cents(amount), sender_id, card),
    )
    db.execute(
        "INSERT INTO transactions (sender_id, kind, party, amount_cents, day) VALUES (?, ?, ?, ?, ?)",
        (sender_id, "card_payment", card, _cents(amount), day.isoformat()),
    )
    return get_account(db, sender_id, card)


def _debit_bank(db: sqlite3.Connection, sender_id: str, amount: Decimal) -> None:
    bank = get_account(db, sender_id, BANK)
    if amount <= 0 or amount > bank.balance:
        raise ValueError(f"cannot take {amount} from a bank balance of {bank.balance}")
    db.execute(
        "UPDATE accounts SET balance_cents = balance_cents - ? WHERE sender_id = ? AND name = ?",
        (_cents(amount), sender_id, BANK),
    )


def search_transactions(
    db: sqlite3.Connection,
    sender_id: str,
    kind: str,
    first: datetime.date,
    last: datetime.date,
    party: Optional[str] = None,
) -> Tuple[Decimal, int]:
    """Return the total and count of spending or deposits between two days, inclusive."""
    ensure_profile(db, sender_id)
    query = (
        "SELECT COALESCE(SUM(amount_cents), 0), COUNT(*) FROM transactions"
        " WHERE sender_id = ? AND kind = ? AND day BETWEEN ? AND ?"
    )
    params: list = [sender_id, kind, first.isoformat(), last.isoformat()]
    if party:
        query += " AND party = ?"
        params.append(party)
    total, count = db.execute(query, params).fetchone()
    return _money(total), count
