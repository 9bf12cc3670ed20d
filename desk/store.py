"""Parlant's document stores on SQL, through Parlant's own DocumentDatabase interface.

Parlant's local store keeps each store in one JSON file and rewrites all of
it (every session, every event) on each write, so a write costs more as
history grows. Here each collection is a table of JSON documents, written one
row at a time, with SQL indexes on the fields Parlant filters and sorts by, so
appending an event costs the same with 10 sessions or 10,000.

One code path (SQLAlchemy Core, async) serves SQLite, the default (one file
under the desk's home), and PostgreSQL when ``DATABASE_URL`` names one.
Fields inside documents are reached with SQLAlchemy's typed JSON accessors;
the same expression is used in indexes and in queries, so the indexes serve.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import types
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Optional, Union, get_args, get_origin, get_type_hints

import sqlalchemy as sa
from parlant.core.persistence.common import Cursor, ObjectId, SortDirection, Where, ensure_is_total
from parlant.core.persistence.document_database import (
    BaseDocument,
    CollectionIndex,
    CollectionSort,
    DeleteResult,
    DocumentCollection,
    DocumentDatabase,
    FindResult,
    InsertResult,
    TDocument,
    UpdateResult,
    identity_loader,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

logger = logging.getLogger("desk.store")

DATABASE_URL_ENV = "DATABASE_URL"
SQLITE_NAME = "parlant.sqlite"
SQLITE_BUSY_SECONDS = 30
# The layout of the desk's tables (not Parlant's document versions, which Parlant migrates itself).
SCHEMA_VERSION = 1
SCHEMA_TABLE = "parlant_schema"
# PostgreSQL's limit on identifiers; SQLite has none, but one rule for both keeps names equal.
MAX_NAME = 63
MIGRATION_BATCH = 500

Loader = Callable[[BaseDocument], Awaitable[Optional[TDocument]]]
# How the layout moves from version N to N + 1; empty until the layout first changes.
MIGRATIONS: dict[int, Callable[[sa.Connection, str], None]] = {}


class StoreError(Exception):
    """The desk's database is unusable as configured: bad URL, or tables from a newer desk."""


def engine_url(database_url: str | None, home: Path) -> sa.URL:
    """Return the async SQLAlchemy URL for ``$DATABASE_URL``, or the SQLite file in ``home`` if unset."""
    if not database_url:
        return sa.URL.create("sqlite+aiosqlite", database=str(home / SQLITE_NAME))
    try:
        url = sa.make_url(database_url)
    except sa.exc.ArgumentError:
        raise StoreError(
            f"${DATABASE_URL_ENV} is not a database URL (use postgresql://user@host:port/dbname, "
            "or leave it unset for SQLite under $HANDOFF_STATE_DIR)"
        ) from None
    drivers = {"postgresql": "postgresql+psycopg", "sqlite": "sqlite+aiosqlite"}
    backend = url.get_backend_name()
    if backend not in drivers:
        raise StoreError(
            f"${DATABASE_URL_ENV}={url.render_as_string(hide_password=True)}: the desk stores in "
            "PostgreSQL or SQLite (use postgresql://user@host:port/dbname, or leave it unset)"
        )
    return url.set(drivername=drivers[backend])


def create_engine(url: sa.URL) -> AsyncEngine:
    """Return an engine for ``url``; SQLite gets write-ahead logging so readers never wait on a write."""
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url)
    # The desk's own connections are SQLite's only users; on a busy machine one may wait for another's
    # write (or for recovery after a crash) longer than sqlite3's default 5 s.
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})

    # Connection set-up, not query logic: WAL lets the many long-poll readers run beside the writer,
    # and synchronous=NORMAL keeps a commit to one write (safe against a crashed process).
    @sa.event.listens_for(engine.sync_engine, "connect")
    def use_wal(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def sql_name(*parts: str) -> str:
    """Return a table or index name made of ``parts``: lower case, [a-z0-9_], at most 63 characters."""
    name = re.sub(r"[^a-z0-9_]", "_", "_".join(parts).lower())
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"


def scalar_type(hint: Any) -> type | None:
    """Return str, int, float or bool for a TypedDict field's hint, or None if it is not one of them."""
    while hasattr(hint, "__supertype__"):  # NewType, e.g. SessionId
        hint = hint.__supertype__
    origin = get_origin(hint)
    if origin is Literal:
        found = {type(arg) for arg in get_args(hint)}
    elif origin in (Union, types.UnionType):
        found = {scalar_type(arg) for arg in get_args(hint) if arg is not type(None)}
    else:
        return hint if hint in (str, int, float, bool) else None
    if found == {int, float}:
        return float
    return found.pop() if len(found) == 1 and None not in found else None


def field_types(schema: type) -> dict[str, type]:
    """Return the scalar type of each top-level field of a document schema that has one."""
    try:
        hints = get_type_hints(schema)
    except (NameError, TypeError):
        return {}
    return {name: kind for name, hint in hints.items() if (kind := scalar_type(hint)) is not None}


def value_type(value: Any) -> type | None:
    if isinstance(value, (list, tuple)):
        return next((value_type(item) for item in value if item is not None), None)
    return type(value) if isinstance(value, (str, int, float, bool)) else None


def schema_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        SCHEMA_TABLE,
        metadata,
        sa.Column("table_name", sa.String(MAX_NAME), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )


def document_table(metadata: sa.MetaData, name: str) -> sa.Table:
    """Return the table holding one collection: a row number (insertion order) and the document."""
    return sa.Table(
        name,
        metadata,
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("doc", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    )


class SQLDocumentDatabase(DocumentDatabase):
    """Parlant's DocumentDatabase on one SQL database: a table per collection, named ``<prefix>_<name>``.

    Several databases (the session, customer and variable stores) share one
    engine, each with its own prefix.
    """

    def __init__(self, engine: AsyncEngine, prefix: str) -> None:
        self.engine = engine
        self.prefix = prefix
        self._metadata = sa.MetaData()
        self._schema = schema_table(self._metadata)
        self._collections: dict[str, SQLDocumentCollection[Any]] = {}

    async def __aenter__(self) -> SQLDocumentDatabase:
        async with self.engine.begin() as conn:
            await conn.execute(sa.schema.CreateTable(self._schema, if_not_exists=True))
        return self

    async def __aexit__(self, *exc_info: object) -> bool:
        return False

    def table_name(self, name: str) -> str:
        return sql_name(self.prefix, name)

    async def _version(self, conn: AsyncConnection, table: str) -> int | None:
        result = await conn.execute(
            sa.select(self._schema.c.version).where(self._schema.c.table_name == table)
        )
        return result.scalar_one_or_none()

    async def _exists(self, name: str) -> bool:
        async with self.engine.connect() as conn:
            return await self._version(conn, self.table_name(name)) is not None

    async def _open(
        self, name: str, schema: type[TDocument], create: bool
    ) -> SQLDocumentCollection[TDocument]:
        """Return the collection, creating its table or bringing its layout up to date."""
        table_name = self.table_name(name)
        table = document_table(sa.MetaData(), table_name)
        async with self.engine.begin() as conn:
            version = await self._version(conn, table_name)
            if version is None:
                if not create:
                    raise ValueError(f'Collection "{name}" does not exist')
                await conn.execute(sa.schema.CreateTable(table, if_not_exists=True))
                await conn.execute(
                    self._schema.insert().values(table_name=table_name, version=SCHEMA_VERSION)
                )
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    f"table {table_name} has layout version {version}, newer than this desk's "
                    f"{SCHEMA_VERSION} (run the desk version that created it, or point "
                    f"${DATABASE_URL_ENV} at another database)"
                )
            else:
                for step in range(version, SCHEMA_VERSION):
                    await conn.run_sync(MIGRATIONS[step], table_name)
                await conn.execute(
                    self._schema.update()
                    .where(self._schema.c.table_name == table_name)
                    .values(version=SCHEMA_VERSION)
                )
        collection = SQLDocumentCollection(self, name, table, schema)
        # Mongo's adapter does the same: find() always sorts by creation_utc, then id.
        await collection.ensure_indexes(
            [CollectionIndex(fields=(("creation_utc", SortDirection.ASC), ("id", SortDirection.ASC)))]
        )
        self._collections[name] = collection
        return collection

    async def create_collection(self, name: str, schema: type[TDocument]) -> SQLDocumentCollection[TDocument]:
        return await self._open(name, schema, create=True)

    async def get_collection(
        self, name: str, schema: type[TDocument], document_loader: Loader[TDocument]
    ) -> SQLDocumentCollection[TDocument]:
        return await self._loaded(name, schema, document_loader, create=False)

    async def get_or_create_collection(
        self, name: str, schema: type[TDocument], document_loader: Loader[TDocument]
    ) -> SQLDocumentCollection[TDocument]:
        return await self._loaded(name, schema, document_loader, create=True)

    async def _loaded(
        self, name: str, schema: type[TDocument], document_loader: Loader[TDocument], create: bool
    ) -> SQLDocumentCollection[TDocument]:
        """Return the collection, its stored documents migrated by ``document_loader`` on first use."""
        if name not in self._collections:
            await (await self._open(name, schema, create)).load(document_loader)
        return self._collections[name]

    async def import_json_file(self, path: Path) -> int:
        """Copy a file of Parlant's local JSON store into these tables, once; return the documents copied.

        A desk that kept its sessions in Parlant's JSON files before keeps them:
        on the first start with these tables still empty, each collection in
        ``path`` is copied as it is (Parlant's loaders then migrate it like any
        stored document) and the file is renamed ``*.imported``.
        """
        if not path.is_file():
            return 0
        if not await self._is_empty():
            logger.warning("%s not imported: the desk's tables for it already hold documents", path)
            return 0
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
        tables = [(name, (await self.create_collection(name, BaseDocument)).table) for name in data]
        async with self.engine.begin() as conn:
            for name, table in tables:
                if data[name]:
                    await conn.execute(table.insert(), [{"doc": document} for document in data[name]])
        path.rename(path.with_name(f"{path.name}.imported"))
        copied = sum(len(documents) for documents in data.values())
        logger.info("imported %d documents from %s", copied, path)
        return copied

    async def _is_empty(self) -> bool:
        async with self.engine.connect() as conn:
            names = (await conn.execute(
                sa.select(self._schema.c.table_name)
                .where(self._schema.c.table_name.startswith(f"{self.prefix}_", autoescape=True))
            )).scalars().all()
            for name in names:
                table = document_table(sa.MetaData(), name)
                if (await conn.execute(sa.select(table.c.seq).limit(1))).first() is not None:
                    return False
        return True

    async def delete_collection(self, name: str) -> None:
        if not await self._exists(name):
            raise ValueError(f'Collection "{name}" does not exist')
        table_name = self.table_name(name)
        table = document_table(sa.MetaData(), table_name)
        async with self.engine.begin() as conn:
            await conn.execute(sa.schema.DropTable(table, if_exists=True))
            await conn.execute(self._schema.delete().where(self._schema.c.table_name == table_name))
        self._collections.pop(name, None)


class SQLDocumentCollection(DocumentCollection[TDocument]):
    """One collection: Parlant's filters become SQL over the documents' fields."""

    def __init__(
        self, database: SQLDocumentDatabase, name: str, table: sa.Table, schema: type[TDocument]
    ) -> None:
        self._database = database
        self._engine = database.engine
        self.name = name
        self.table = table
        self._schema = schema
        self._types = field_types(schema)
        self._indexed: set[str] = set()

    def field(self, name: str, sample: Any = None) -> sa.ColumnElement[Any]:
        """Return the SQL expression for a top-level document field, typed by the schema (else by ``sample``).

        The key is rendered into the statement rather than bound, so that the
        expression is textually the one in the index and the planner uses it.
        """
        key = sa.bindparam(None, name, type_=sa.JSON.JSONIndexType, literal_execute=True)
        element = self.table.c.doc[key]
        kind = self._types.get(name) or value_type(sample)
        if kind is bool:
            return element.as_boolean()
        if kind is int:
            return element.as_integer()
        if kind is float:
            return element.as_float()
        return element.as_string()

    def where(self, filters: Where | Mapping[str, Any]) -> sa.ColumnElement[bool]:
        """Translate Parlant's filter language ($eq, $ne, $gt(e), $lt(e), $in, $nin, $and, $or) to SQL."""
        parts = []
        for key, value in filters.items():
            if key == "$and":
                parts.append(sa.and_(sa.true(), *(self.where(sub) for sub in value)))
            elif key == "$or":
                parts.append(sa.or_(sa.false(), *(self.where(sub) for sub in value)))
            elif key.startswith("$"):
                raise ValueError(f"filter operator {key!r} is not supported (use $and or $or)")
            elif isinstance(value, Mapping):
                parts.extend(self.compare(key, operator, operand) for operator, operand in value.items())
            else:
                parts.append(self.compare(key, "$eq", value))
        return sa.and_(sa.true(), *parts)

    def compare(self, name: str, operator: str, operand: Any) -> sa.ColumnElement[bool]:
        """Return one field test; a missing or null field behaves as None does in Parlant's own filters."""
        field = self.field(name, operand)
        if operator in ("$in", "$nin"):
            values = [value for value in operand if value is not None]
            with_null = len(values) < len(operand)
            contained = field.in_(values) if values else sa.false()
            if with_null:
                contained = sa.or_(field.is_(None), contained)
            if operator == "$in":
                return contained
            return sa.and_(field.is_not(None), sa.not_(contained)) if with_null else sa.or_(
                field.is_(None), sa.not_(contained)
            )
        if operator == "$eq":
            return field.is_(None) if operand is None else field == operand
        if operator == "$ne":
            return field.is_not(None) if operand is None else field.is_distinct_from(operand)
        comparisons = {"$gt": field.__gt__, "$gte": field.__ge__, "$lt": field.__lt__, "$lte": field.__le__}
        if operator not in comparisons:
            raise ValueError(f"filter operator {operator!r} on field {name!r} is not supported")
        # A literal rather than the bare value: SQLAlchemy takes True/False beside < or > for IS, not a value.
        return comparisons[operator](sa.literal(operand, type_=field.type))

    def order(self, sort: CollectionSort) -> list[sa.ColumnElement[Any]]:
        return [
            self.field(name).desc() if direction == SortDirection.DESC else self.field(name).asc()
            for name, direction in sort
        ]

    async def find(
        self,
        filters: Where,
        limit: Optional[int] = None,
        cursor: Optional[Cursor] = None,
        sort_direction: Optional[SortDirection] = None,
    ) -> FindResult[TDocument]:
        direction = sort_direction or SortDirection.ASC
        condition = self.where(filters)
        if cursor is not None:
            created, ident = self.field("creation_utc"), self.field("id")
            if direction == SortDirection.DESC:
                before = sa.and_(created == cursor.creation_utc, ident < cursor.id)
                condition = sa.and_(condition, sa.or_(created < cursor.creation_utc, before))
            else:
                after = sa.and_(created == cursor.creation_utc, ident > cursor.id)
                condition = sa.and_(condition, sa.or_(created > cursor.creation_utc, after))
        query = (
            sa.select(self.table.c.doc)
            .where(condition)
            .order_by(*self.order((("creation_utc", direction), ("id", direction))), self.table.c.seq)
        )
        if limit is not None:
            query = query.limit(limit + 1)
        async with self._engine.connect() as conn:
            items = list((await conn.execute(query)).scalars())
            has_more = limit is not None and len(items) > limit
            if has_more:
                items = items[:limit]
                count = sa.select(sa.func.count()).select_from(self.table).where(condition)
                total_count = (await conn.execute(count)).scalar_one()
            else:
                total_count = len(items)
        next_cursor = None
        if has_more and items:
            last = items[-1]
            next_cursor = Cursor(
                creation_utc=str(last.get("creation_utc", "")), id=ObjectId(str(last.get("id", "")))
            )
        return FindResult(items=items, total_count=total_count, has_more=has_more, next_cursor=next_cursor)

    def _first(self, filters: Where, sort: Optional[CollectionSort] = None) -> sa.Select[Any]:
        return (
            sa.select(self.table.c.seq, self.table.c.doc)
            .where(self.where(filters))
            .order_by(*self.order(sort or ()), self.table.c.seq)
            .limit(1)
        )

    async def find_one(self, filters: Where, sort: Optional[CollectionSort] = None) -> Optional[TDocument]:
        async with self._engine.connect() as conn:
            row = (await conn.execute(self._first(filters, sort))).first()
        return row.doc if row else None

    async def ensure_indexes(self, indexes: Sequence[CollectionIndex]) -> None:
        for index in indexes:
            name = sql_name("ix", self.table.name, *(field for field, _ in index.fields))
            if name in self._indexed:
                continue
            sql_index = sa.Index(name, *self.order(index.fields), unique=index.unique)
            async with self._engine.begin() as conn:
                await conn.execute(sa.schema.CreateIndex(sql_index, if_not_exists=True))
            self._indexed.add(name)

    async def insert_one(self, document: TDocument) -> InsertResult:
        ensure_is_total(document, self._schema)
        async with self._engine.begin() as conn:
            await conn.execute(self.table.insert().values(doc=document))
        return InsertResult(acknowledged=True)

    async def update_one(
        self, filters: Where, params: TDocument, upsert: bool = False
    ) -> UpdateResult[TDocument]:
        """Merge ``params`` into the first match; with ``upsert`` and no match, insert ``params`` as it is."""
        async with self._engine.begin() as conn:
            row = (await conn.execute(self._first(filters).with_for_update())).first()
            if row is not None:
                merged = {**row.doc, **params}
                await conn.execute(self.table.update().where(self.table.c.seq == row.seq).values(doc=merged))
                return UpdateResult(True, matched_count=1, modified_count=1, updated_document=merged)
            if upsert:
                ensure_is_total(params, self._schema)
                await conn.execute(self.table.insert().values(doc=params))
                return UpdateResult(True, matched_count=0, modified_count=0, updated_document=params)
        return UpdateResult(True, matched_count=0, modified_count=0, updated_document=None)

    async def delete_one(self, filters: Where) -> DeleteResult[TDocument]:
        async with self._engine.begin() as conn:
            row = (await conn.execute(self._first(filters).with_for_update())).first()
            if row is None:
                return DeleteResult(True, deleted_count=0, deleted_document=None)
            await conn.execute(self.table.delete().where(self.table.c.seq == row.seq))
        return DeleteResult(True, deleted_count=1, deleted_document=row.doc)

    async def load(self, document_loader: Loader[TDocument]) -> None:
        """Run Parlant's loader (its document migrations) over the stored documents.

        Parlant's loaders convert a document step by step until it has the
        store's version and return a current one unchanged. So one document per
        stored version is tried: a version whose sample comes back unchanged is
        current and its rows are left alone (a restart with 10,000 sessions
        reads a handful of rows, not all of them). Rows of other versions are
        converted and written back; those the loader refuses move to
        ``<name>_failed_migrations``, as Parlant's own adapters do.
        """
        version = self.field("version")
        async with self._engine.connect() as conn:
            versions = list((await conn.execute(sa.select(version).distinct())).scalars())
        for stored in versions:
            same_version = version.is_(None) if stored is None else version == stored
            async with self._engine.connect() as conn:
                first = sa.select(self.table.c.doc).where(same_version).limit(1)
                sample = (await conn.execute(first)).scalar()
            if sample is not None and await self._try_load(document_loader, sample) == sample:
                continue
            await self._migrate_rows(document_loader, same_version)

    async def _try_load(self, document_loader: Loader[TDocument], document: Any) -> Any:
        try:
            return await document_loader(document)
        except Exception:
            logger.exception("%s: failed to load document %s", self.name, document.get("id"))
            return None

    async def _migrate_rows(
        self, document_loader: Loader[TDocument], same_version: sa.ColumnElement[bool]
    ) -> None:
        last = 0
        failed: SQLDocumentCollection[Any] | None = None
        while True:
            async with self._engine.connect() as conn:
                rows = (
                    await conn.execute(
                        sa.select(self.table.c.seq, self.table.c.doc)
                        .where(same_version, self.table.c.seq > last)
                        .order_by(self.table.c.seq)
                        .limit(MIGRATION_BATCH)
                    )
                ).all()
            if not rows:
                return
            for row in rows:
                loaded = await self._try_load(document_loader, row.doc)
                if loaded == row.doc:
                    continue
                if loaded is not None:
                    async with self._engine.begin() as conn:
                        this_row = self.table.c.seq == row.seq
                        await conn.execute(self.table.update().where(this_row).values(doc=loaded))
                    continue
                if failed is None:
                    failed = await self._database.get_or_create_collection(
                        f"{self.name}_failed_migrations", BaseDocument, identity_loader
                    )
                logger.warning("%s: document %s could not be migrated; kept in %s",
                               self.name, row.doc.get("id"), failed.table.name)
                async with self._engine.begin() as conn:
                    await conn.execute(failed.table.insert().values(doc=row.doc))
                    await conn.execute(self.table.delete().where(self.table.c.seq == row.seq))
            last = rows[-1].seq
