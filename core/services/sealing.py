"""Sealed text columns: text encrypted at rest (AES-256-GCM), for any plugin (and core).

A confidential value (a casework progress note, a maternal-care history) is stored *sealed*: a database
dump, a backup or a replica shows bytes, not the text. The service opens a value only for callers its own
rules already allowed to read the row: sealing protects data at rest, not from a caller the service
trusts.

**Format** (version 1), self-describing so that old and new keys and future versions can coexist::

    b"YS" | 0x01 | n (1 byte) | key id (n ASCII bytes) | nonce (12 bytes) | ciphertext and tag (len + 16)

The key id says which key of the keyring opens the value; the nonce is random per seal (at most about 2**32
seals per key stay within AES-GCM's bounds for random nonces: rotate long before that). The length of the
text is visible (ciphertext length = UTF-8 length + 16 + header).

**Associated data binds a value to its place.** The header, the table, the column and the row's id are
authenticated (not stored) with every seal, and opening checks them. Without that binding, AES-GCM would
happily open a sealed value anywhere the same key is used: anyone able to write to the database but not
holding the key (an injection, an over-broad migration, a careless operator, a bug that copies columns)
could copy the sealed note of a case they may not read into a row they may read -- their own case's note,
or a column shown to more people (a referral summary) -- and the service would decrypt it and hand it to
them. Bound, a value moved to another row, column or table fails to open (`SealedValueMismatch`, a typed
error, never a crash), and so does a value whose header was rewritten to name another key. (A value
written back into *its own* row, e.g. an older version of the same note, still opens: the binding does not
order versions; revisions tables keep their own rows.)

**Keys.** `YUNSHEGONG_SEALING_KEYS="id:base64,id2:base64"`: 32-byte keys, the first one seals, all open.
Without the setting, one key is generated on first use and kept in `app_meta` (like the token secret):
convenient for development, but then *a database dump contains the key*, so production sets the setting.
A stored key stays usable for opening after keys are configured, so that moving to configured keys loses
nothing: configure, run `yunshegong reseal --forget-stored-key`.

**Rotation.** Put the new key first and keep the old ones (`new:…,old:…`); new writes use the new key at
once, old values still open. `yunshegong reseal` (`reseal()` here) then rewrites, in batches of its own
transactions, every value of every registered sealed column (hook `register_sealed_columns`) not yet under
the current key; it is idempotent (a second run finds nothing to do) and safe beside a running service
(rows are locked while rewritten). When it reports nothing remaining, the old key can be dropped;
`forget_stored_key_if_unused` drops the stored one only when an exact count says no value needs it.

**Append-only tables** (a trigger refuses every UPDATE of a note's revision): each batch of `reseal` says
what it rewrites, `set_config('app.resealing', '<table>.<column>', true)` (transaction-local, like the
tenancy settings), and a guard may let through an UPDATE that, in such a transaction, changes nothing but
that column and changes its key id (every other column equal: `to_jsonb(NEW) - col = to_jsonb(OLD) - col`;
the header's key id differs). Any other change is still refused. See plugins/case_work/migrations/w006_*.

**Using it from a plugin** (docs/plugins.md, "Sealed columns"): a `LargeBinary` column
(`sealed_column()`), a row id known before sealing (`await next_id(ctx, table)`, or insert then seal), and
`await seal(ctx, text, table=…, column=…, row_id=…)` / `await unseal(ctx, sealed, table=…, …)`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import CheckConstraint, LargeBinary, text
from sqlalchemy.orm import mapped_column

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlalchemy.orm import MappedColumn

    from core.services.context import ServiceContext

MAGIC = b"YS"
VERSION = 1
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
# Table and column names go into SQL (reseal) and into the associated data: plain identifiers only.
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Where the generated key lives when YUNSHEGONG_SEALING_KEYS is not set, and the id it seals under.
STORED_KEY = "sealing_key"
# Set (transaction-local) by `reseal` to the `table.column` it rewrites: a guard trigger of an append-only
# table lets through an UPDATE that only moves that column's value to another key (see `reseal`).
RESEALING_SETTING = "app.resealing"
STORED_KEY_ID = "db"
SETTING = "YUNSHEGONG_SEALING_KEYS"
_ASSOCIATED_PREFIX = b"yunshegong.sealed"


# -- errors ------------------------------------------------------------------------------------------------


class SealingKeysError(ValueError):
    """The key setting cannot work; str() is one line and never contains key material."""


class SealedValueError(ValueError):
    """A stored value that does not open here. `reason` is stable: `malformed`, `unknown_key`, `mismatch`."""

    reason = "unreadable"


class MalformedSealedValue(SealedValueError):
    """Not a sealed value of a format this version knows (plain text written by mistake, truncation)."""

    reason = "malformed"


class UnknownSealingKey(SealedValueError):
    """Sealed under a key id the keyring does not hold (an old key dropped before `reseal` finished)."""

    reason = "unknown_key"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"sealed under key {key_id!r}, which is not configured")
        self.key_id = key_id


class SealedValueMismatch(SealedValueError):
    """The key is there but the value does not open: tampered with, or moved from another row, column or
    table (the associated data differ)."""

    reason = "mismatch"


# -- keys --------------------------------------------------------------------------------------------------


def _decode_key(key_id: str, encoded: str) -> bytes:
    text_value = encoded.strip()
    try:
        # Standard or URL-safe alphabet; padding optional (operators paste what `openssl rand -base64 32` or
        # a password manager gives them).
        normalised = text_value.replace("-", "+").replace("_", "/")
        raw = base64.b64decode(normalised + "=" * (-len(normalised) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SealingKeysError(f"key {key_id!r} is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise SealingKeysError(f"key {key_id!r} is {len(raw)} bytes; AES-256 needs {KEY_BYTES} (base64 of 32 bytes)")
    return raw


def parse_keys(spec: str) -> tuple[tuple[str, bytes], ...]:
    """`"id:base64,id2:base64"` as ((id, key), ...), first = current. Raises SealingKeysError (one line that
    names key ids, never keys)."""
    keys: list[tuple[str, bytes]] = []
    for position, entry in enumerate((part.strip() for part in spec.split(",")), start=1):
        if not entry:
            continue
        key_id, colon, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not colon or not encoded.strip():
            raise SealingKeysError(f"entry {position} is not 'id:base64key'")
        if not KEY_ID.match(key_id):
            # Not echoed: a key pasted the wrong way round would be printed in the log.
            raise SealingKeysError(f"entry {position}: key id must be 1-32 letters, digits, '_', '.' or '-'")
        if any(key_id == seen for seen, _ in keys):
            raise SealingKeysError(f"key id {key_id!r} appears twice")
        keys.append((key_id, _decode_key(key_id, encoded)))
    if not keys:
        raise SealingKeysError("no keys: expected 'id:base64key[,id2:base64key…]'")
    return tuple(keys)


def new_key() -> str:
    """A fresh key, base64 (what `YUNSHEGONG_SEALING_KEYS` expects after `id:`)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def _check_name(kind: str, name: str) -> None:
    if not IDENTIFIER.match(name):
        raise ValueError(f"sealed {kind} {name!r} must be a lower_snake_case identifier")


def _row_text(row_id: int | str | uuid.UUID) -> str:
    # One spelling per id, whatever type the caller holds: the associated data must match byte for byte.
    if isinstance(row_id, bool) or not isinstance(row_id, (int, str, uuid.UUID)):
        raise TypeError(f"row_id must be an int, str or UUID, not {type(row_id).__name__}")
    if isinstance(row_id, str):
        try:
            return str(uuid.UUID(row_id))
        except ValueError:
            return row_id
    return str(row_id)


def associated_data(header: bytes, table: str, column: str, row_id: int | str | uuid.UUID) -> bytes:
    """What a seal is bound to: its header and its place. Length-prefixed, so no two places share one."""
    _check_name("table", table)
    _check_name("column", column)
    parts = [_ASSOCIATED_PREFIX, header, table.encode(), column.encode(), _row_text(row_id).encode("utf-8")]
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def header_for(key_id: str) -> bytes:
    encoded = key_id.encode("ascii")
    return MAGIC + bytes([VERSION, len(encoded)]) + encoded


def key_id_of(sealed: bytes) -> str:
    """The id of the key a value was sealed under. Raises MalformedSealedValue."""
    if len(sealed) < 4 or sealed[:2] != MAGIC:
        raise MalformedSealedValue("not a sealed value")
    if sealed[2] != VERSION:
        raise MalformedSealedValue(f"sealed value of unknown version {sealed[2]}")
    n = sealed[3]
    if n == 0 or len(sealed) < 4 + n + NONCE_BYTES + TAG_BYTES:
        raise MalformedSealedValue("sealed value is truncated")
    try:
        return sealed[4 : 4 + n].decode("ascii")
    except UnicodeDecodeError:
        raise MalformedSealedValue("sealed value has a malformed key id") from None


@dataclass(frozen=True)
class Keyring:
    """Keys by id; the first seals, every one opens. Never printed (its repr shows ids only)."""

    keys: tuple[tuple[str, bytes], ...] = field(repr=False)
    _ciphers: dict[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise SealingKeysError("a keyring needs at least one key")
        object.__setattr__(self, "_ciphers", {key_id: AESGCM(key) for key_id, key in self.keys})

    def __repr__(self) -> str:
        return f"Keyring(ids={self.ids!r})"

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        return cls(parse_keys(spec))

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(key_id for key_id, _ in self.keys)

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    def seal(self, plaintext: str, *, table: str, column: str, row_id: int | str | uuid.UUID) -> bytes:
        """`plaintext` sealed under the current key, bound to (table, column, row_id)."""
        if not isinstance(plaintext, str):
            raise TypeError(f"seal() takes text, not {type(plaintext).__name__}")
        header = header_for(self.current_id)
        nonce = os.urandom(NONCE_BYTES)
        body = self._ciphers[self.current_id].encrypt(
            nonce, plaintext.encode("utf-8"), associated_data(header, table, column, row_id)
        )
        return header + nonce + body

    def open(self, sealed: bytes, *, table: str, column: str, row_id: int | str | uuid.UUID) -> str:
        """The text of a value sealed for (table, column, row_id). Raises a SealedValueError subclass."""
        sealed = bytes(sealed)  # asyncpg may hand back a memoryview
        key_id = key_id_of(sealed)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownSealingKey(key_id)
        header_length = 4 + len(key_id)
        header, nonce = sealed[:header_length], sealed[header_length : header_length + NONCE_BYTES]
        try:
            plain = cipher.decrypt(
                nonce, sealed[header_length + NONCE_BYTES :], associated_data(header, table, column, row_id)
            )
        except InvalidTag:
            raise SealedValueMismatch("sealed value does not open here: tampered with, or moved") from None
        return plain.decode("utf-8")

    def is_current(self, sealed: bytes) -> bool:
        """Whether a value is sealed under the current key (reseal skips those)."""
        return bytes(sealed).startswith(header_for(self.current_id))

    def with_stored(self, stored: tuple[str, bytes] | None) -> Keyring:
        """This keyring, also opening values sealed under the key kept in the database (if any)."""
        if stored is None:
            return self
        stored_id, stored_key = stored
        for key_id, key in self.keys:
            if key_id == stored_id:
                if key != stored_key:
                    raise SealingKeysError(
                        f"{SETTING}: key id {stored_id!r} names another key than the one kept in the database "
                        "(app_meta 'sealing_key'); give the configured key another id"
                    )
                return self
        return Keyring((*self.keys, stored))


# -- which keys this process uses --------------------------------------------------------------------------


class _Unset:
    pass


log = logging.getLogger(__name__)

_UNSET = _Unset()
_configured: str | _Unset | None = _UNSET
# Keyrings per engine (and configured spec): read from the database once per engine, not once per value.
_cache: weakref.WeakKeyDictionary[Engine, dict[str | None, Keyring]] = weakref.WeakKeyDictionary()


def configure(spec: str | None) -> None:
    """Fix this process's keys to `spec` (None: the generated key kept in the database), for code that
    builds its Settings in code rather than from the environment.

    Not called by default: services read `YUNSHEGONG_SEALING_KEYS` from the environment, which is what
    `Settings.from_env()` validated when the command started (keys have no command-line flag), so every
    service context -- requests, jobs, side sessions -- finds the keys without being handed them."""
    global _configured
    if spec is not None:
        parse_keys(spec)
    _configured = spec
    _cache.clear()


def configured_spec() -> str | None:
    """The configured keys (`configure`, else the environment), or None for the generated key."""
    if isinstance(_configured, _Unset):
        value = os.environ.get(SETTING, "")
        return value if value.strip() else None
    return _configured


def forget_cached_keys() -> None:
    """Read the keys from the settings and the database again on next use (tests; after `reseal`)."""
    _cache.clear()


def _stored(value: str | None) -> tuple[str, bytes] | None:
    if not value:
        return None
    key_id, colon, encoded = value.partition(":")
    if not colon or key_id != STORED_KEY_ID:
        # Not echoed: without its "id:" the whole value (the key itself) would be the id in the message.
        raise SealingKeysError(f"the sealing key kept in app_meta ({STORED_KEY!r}) is malformed")
    return key_id, _decode_key(key_id, encoded)


async def load_keyring(engine: AsyncEngine, configured: str | None, *, generate: bool = True) -> Keyring:
    """The keyring for a database: the configured keys (plus the stored key, for opening), or else the key
    kept in `app_meta`, generated on first use (`generate`).

    The key is generated and committed in a short transaction of its own on a separate connection, never
    in the caller's: a key that the caller's rollback took away while this process kept using it would
    leave values nobody else can open. Two processes generating at once agree (ON CONFLICT DO NOTHING,
    then read what won)."""
    select_stored = text("SELECT value FROM app_meta WHERE key = :key")
    async with engine.connect() as conn:
        stored = await conn.scalar(select_stored, {"key": STORED_KEY})
        await conn.rollback()
    if configured is not None:
        return Keyring.parse(configured).with_stored(_stored(stored))
    if stored is None and generate:
        async with engine.begin() as conn:
            made = await conn.execute(
                text("INSERT INTO app_meta (key, value) VALUES (:key, :value) ON CONFLICT (key) DO NOTHING"),
                {"key": STORED_KEY, "value": f"{STORED_KEY_ID}:{new_key()}"},
            )
            stored = await conn.scalar(select_stored, {"key": STORED_KEY})
        if made.rowcount:
            # Said once, by the process that made it: fine for a demo, not for people's casework notes.
            log.warning(
                "%s is not set: a sealing key was generated and kept in the database, so a dump of the database "
                "opens sealed text; set %s in production (README: Encrypted fields and key rotation)",
                SETTING,
                SETTING,
            )
    found = _stored(stored)
    if found is None:
        raise SealingKeysError(f"{SETTING} is not set and no key is kept in the database")
    return Keyring((found,))


def _engine_of(session: Any) -> AsyncEngine:
    from sqlalchemy.ext.asyncio import AsyncEngine

    bind = session.bind
    if isinstance(bind, AsyncEngine):
        return bind
    sync = session.sync_session.get_bind()
    return AsyncEngine(getattr(sync, "engine", sync))


async def keyring(ctx: ServiceContext) -> Keyring:
    """The keyring of the database `ctx` works on (cached per engine). For many values at once, take it
    once and call its `seal` / `open` (no await per value)."""
    engine = _engine_of(ctx.session)
    spec = configured_spec()
    per_engine = _cache.setdefault(engine.sync_engine, {})
    found = per_engine.get(spec)
    if found is None:
        found = per_engine[spec] = await load_keyring(engine, spec)
    return found


# -- what plugins call -------------------------------------------------------------------------------------


async def seal(
    ctx: ServiceContext, value: str | None, *, table: str, column: str, row_id: int | str | uuid.UUID
) -> bytes | None:
    """`value` sealed for the row `row_id` of `table`, to store in `column` (None stays None). The row id
    must be the one the row has (or will have): take it first (`next_id`) or insert, then seal."""
    if value is None:
        return None
    return (await keyring(ctx)).seal(value, table=table, column=column, row_id=row_id)


async def unseal(
    ctx: ServiceContext, sealed: bytes | None, *, table: str, column: str, row_id: int | str | uuid.UUID
) -> str | None:
    """The text of a sealed value read from (table, column) of row `row_id` (None stays None). Raises
    SealedValueError (malformed, unknown key, moved or tampered with): a plugin shows it as unreadable,
    logs it, and keeps serving the rest."""
    if sealed is None:
        return None
    return (await keyring(ctx)).open(sealed, table=table, column=column, row_id=row_id)


async def next_id(ctx: ServiceContext, table: str, id_column: str = "id") -> int:
    """The next value of the row id's sequence (identity or serial), to seal with before the INSERT that
    uses it explicitly: one INSERT, and the sealed column can be NOT NULL."""
    _check_name("table", table)
    _check_name("column", id_column)
    value = await ctx.session.scalar(
        text("SELECT nextval(pg_get_serial_sequence(:table, :column))"), {"table": table, "column": id_column}
    )
    if value is None:
        raise ValueError(f"{table}.{id_column} has no sequence (use a uuid, or insert then seal)")
    return int(value)


def sealed_column(*, nullable: bool = True, **kwargs: Any) -> MappedColumn[Any]:
    """A model column for a sealed value (`bytea`); `nullable=False` when the id is taken before the insert
    (`next_id`). Its migration: `sa.Column(name, sa.LargeBinary(), nullable=…)`."""
    info = {**kwargs.pop("info", {}), "sealed": True}
    return mapped_column(LargeBinary, nullable=nullable, info=info, **kwargs)


def sealed_check(column: str) -> CheckConstraint:
    """A CHECK that `column` holds a sealed value (or NULL): plain bytes written by mistake are refused by
    the database itself. In a migration: `sa.CheckConstraint(sealed_check_sql(column), name=…)`."""
    return CheckConstraint(sealed_check_sql(column), name=f"{column}_sealed")


def sealed_check_sql(column: str) -> str:
    _check_name("column", column)
    return f"{column} IS NULL OR substring({column} FROM 1 FOR 3) = '\\x{(MAGIC + bytes([VERSION])).hex()}'::bytea"


# -- the registry, and resealing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SealedColumn:
    """A sealed column, as a plugin registers it (hook `register_sealed_columns`) for `reseal`: values are
    bound to (table, column, the row's `id_column`)."""

    table: str
    column: str
    id_column: str = "id"

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


# Core's own sealed columns (none yet); plugins add theirs through the hook.
# The organisations' webhook signing secrets (core/delivery/webhooks.py): `reseal` re-encrypts them too.
CORE_SEALED_COLUMNS: tuple[SealedColumn, ...] = (SealedColumn("webhook_endpoints", "secret"),)


def sealed_columns(host: Any) -> list[SealedColumn]:
    """Every registered sealed column: core's, then the loaded plugins', validated. Raises PluginLoadError
    (one line naming the plugin)."""
    from core.plugins import PluginLoadError

    out = list(CORE_SEALED_COLUMNS)
    seen = {c.name for c in out}
    for plugin, value in host.call_each("register_sealed_columns") if host is not None else []:
        if not isinstance(value, (list, tuple)) or not all(isinstance(c, SealedColumn) for c in value):
            raise PluginLoadError(
                f"plugin {plugin.name!r}: register_sealed_columns must return a list of core.SealedColumn"
            )
        for column in value:
            for kind, name in (("table", column.table), ("column", column.column), ("id column", column.id_column)):
                if not IDENTIFIER.match(name):
                    raise PluginLoadError(f"plugin {plugin.name!r}: sealed {kind} {name!r} is not an identifier")
            if not column.table.startswith(f"{plugin.name}_"):
                raise PluginLoadError(
                    f"plugin {plugin.name!r}: sealed column {column.name!r} is not in a '{plugin.name}_' table"
                )
            if column.name in seen:
                raise PluginLoadError(f"plugin {plugin.name!r}: sealed column {column.name!r} is registered twice")
            seen.add(column.name)
            out.append(column)
    return out


@dataclass
class ResealReport:
    """Per column: values rewritten under the current key, values that did not open (left as they are:
    `(row id, reason)`), and values still not under the current key after the run."""

    column: SealedColumn
    resealed: int = 0
    unreadable: list[tuple[Any, str]] = field(default_factory=list)
    remaining: int = 0


async def reseal(
    engine: AsyncEngine,
    columns: Sequence[SealedColumn],
    ring: Keyring,
    *,
    batch_size: int = 500,
) -> list[ResealReport]:
    """Rewrite every value of `columns` not sealed under `ring`'s current key, under it. Idempotent.

    Runs on the app role's `engine`, for each organisation in turn as the system caller of that
    organisation (row-level security shows it that organisation's rows, as for scheduled jobs; a table
    whose policies hide rows from the system caller must allow it). Each batch is a transaction of its own
    that locks the rows it rewrites (FOR UPDATE): a running service may keep writing; a value it rewrites
    meanwhile is already under the current key and is skipped. A value that does not open is left alone
    and reported, never fatal."""
    from sqlalchemy import select

    from core.database import create_sessionmaker
    from core.models import Organization
    from core.services.context import SYSTEM, ServiceContext

    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    sessions = create_sessionmaker(engine)
    async with sessions() as session:
        org_ids = list((await session.scalars(select(Organization.id).order_by(Organization.id))).all())
    prefix = header_for(ring.current_id)
    reports = []
    for column in columns:
        report = ResealReport(column)
        for check in (column.table, column.column, column.id_column):
            _check_name("name", check)
        stale = f"{column.column} IS NOT NULL AND substring({column.column} FROM 1 FOR {len(prefix)}) <> :prefix"
        # Keyset batches: the first from the start, the next ones after the last id seen.
        picks = [
            text(
                f"SELECT {column.id_column}, {column.column} FROM {column.table} WHERE {stale}{after} "
                f"ORDER BY {column.id_column} LIMIT :limit FOR UPDATE"
            )
            for after in ("", f" AND {column.id_column} > :after")
        ]
        write = text(f"UPDATE {column.table} SET {column.column} = :value WHERE {column.id_column} = :id")
        declare = text(f"SELECT set_config('{RESEALING_SETTING}', :name, true)")
        count = text(f"SELECT count(*) FROM {column.table} WHERE {stale}")
        for org_id in org_ids:
            viewer = replace(SYSTEM, organization_id=org_id)
            after: Any = None
            while True:
                async with sessions() as session, session.begin():
                    ctx = ServiceContext(session=session, viewer=viewer)
                    params = {"prefix": prefix, "limit": batch_size}
                    if after is not None:
                        params["after"] = after
                    rows = (await ctx.session.execute(picks[after is not None], params)).all()
                    updates = []
                    for row_id, sealed in rows:
                        try:
                            plain = ring.open(sealed, table=column.table, column=column.column, row_id=row_id)
                        except SealedValueError as exc:
                            report.unreadable.append((row_id, exc.reason))
                            continue
                        value = ring.seal(plain, table=column.table, column=column.column, row_id=row_id)
                        updates.append({"id": row_id, "value": value})
                    if updates:
                        await ctx.session.execute(declare, {"name": column.name})
                        await ctx.session.execute(write, updates)
                    report.resealed += len(updates)
                if len(rows) < batch_size:
                    break
                after = rows[-1][0]
            async with sessions() as session, session.begin():
                ctx = ServiceContext(session=session, viewer=viewer)
                report.remaining += int(await ctx.session.scalar(count, {"prefix": prefix}) or 0)
        reports.append(report)
    return reports


async def count_sealed_under(engine: AsyncEngine, columns: Sequence[SealedColumn], key_id: str) -> int:
    """How many values of `columns` are sealed under `key_id`, counted exactly: every organisation's rows
    (the platform administrator's view under row-level security), every column in one statement (one
    snapshot: a row moving between two columns' counts cannot be missed or counted twice)."""
    async with engine.begin() as conn:
        return await _count_under(conn, columns, key_id)


async def _count_under(conn: Any, columns: Sequence[SealedColumn], key_id: str) -> int:
    if not columns:
        return 0
    await conn.execute(
        text("SELECT set_config('app.role', 'platform_admin', true), set_config('app.org_id', '', true)")
    )
    prefix = header_for(key_id)
    parts = []
    for column in columns:
        for name in (column.table, column.column):
            _check_name("name", name)
        parts.append(
            f"(SELECT count(*) FROM {column.table} WHERE {column.column} IS NOT NULL "
            f"AND substring({column.column} FROM 1 FOR {len(prefix)}) = :prefix)"
        )
    return int((await conn.execute(text("SELECT " + " + ".join(parts)), {"prefix": prefix})).scalar_one())


async def forget_stored_key_if_unused(engine: AsyncEngine, columns: Sequence[SealedColumn]) -> tuple[bool, int]:
    """Delete the stored key only if no value of `columns` is still sealed under it: counted exactly
    (`count_sealed_under`) in the transaction that deletes it, with the key row locked first so that a
    service generating or reading it waits. Returns (deleted, values still under the stored key)."""
    async with engine.begin() as conn:
        stored = (
            await conn.execute(text("SELECT value FROM app_meta WHERE key = :key FOR UPDATE"), {"key": STORED_KEY})
        ).scalar_one_or_none()
        if stored is None:
            return False, 0
        left = await _count_under(conn, columns, STORED_KEY_ID)
        if left:
            return False, left
        await conn.execute(text("DELETE FROM app_meta WHERE key = :key"), {"key": STORED_KEY})
    forget_cached_keys()
    return True, 0


async def forget_stored_key(engine: AsyncEngine) -> bool:
    """Delete the generated key from `app_meta` (after `reseal` left nothing under it). True if there was one."""
    async with engine.begin() as conn:
        result = await conn.execute(text("DELETE FROM app_meta WHERE key = :key"), {"key": STORED_KEY})
    forget_cached_keys()
    return bool(result.rowcount)
