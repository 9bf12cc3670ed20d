"""Operator logins kept on the server: who, made from which password, since when, last seen when."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .schema import operator_session

login = operator_session.c


@dataclass(frozen=True)
class OperatorSession:
    """One operator login; ``token_hash`` is the SHA-256 of the token its cookie holds."""

    token_hash: str
    operator: str
    password_fingerprint: str
    created_at: float
    last_seen_at: float
    expires_at: float


# Not named "token_hash": SQLAlchemy keeps column names for an UPDATE's own parameters.
this_login = login.token_hash == sa.bindparam("login")
INSERT_LOGIN = sa.insert(operator_session)
FIND_LOGIN = sa.select(operator_session).where(this_login)
SEE_LOGIN = sa.update(operator_session).where(this_login).values(last_seen_at=sa.bindparam("now"))
END_LOGIN = sa.delete(operator_session).where(this_login)
END_EXPIRED = sa.delete(operator_session).where(login.expires_at <= sa.bindparam("now"))
END_IDLE = sa.delete(operator_session).where(login.last_seen_at <= sa.bindparam("idle_since"))


def create_operator_session(
    db: Connection, token_hash: str, operator: str, password_fingerprint: str, now: float, expires_at: float
) -> OperatorSession:
    found = OperatorSession(token_hash, operator, password_fingerprint, now, now, expires_at)
    db.execute(INSERT_LOGIN, vars(found))
    return found


def find_operator_session(db: Connection, token_hash: str) -> OperatorSession | None:
    row = db.execute(FIND_LOGIN, {"login": token_hash}).mappings().first()
    return OperatorSession(**row) if row else None


def see_operator_session(db: Connection, token_hash: str, now: float) -> None:
    """Record that the login was used at ``now`` (what the idle timeout counts from)."""
    db.execute(SEE_LOGIN, {"login": token_hash, "now": now})


def end_operator_session(db: Connection, token_hash: str) -> None:
    db.execute(END_LOGIN, {"login": token_hash})


def end_lapsed_operator_sessions(db: Connection, now: float, idle_since: float) -> int:
    """Delete the logins past their lifetime or idle since ``idle_since``; return how many."""
    ended = db.execute(END_EXPIRED, {"now": now}).rowcount
    return ended + db.execute(END_IDLE, {"idle_since": idle_since}).rowcount
