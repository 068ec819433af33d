"""Search and filters over the conversations an agent may see, newest first, page by page (the `search` call).

Rules:
- Who sees what: the rule of chat.domain.media and chat.domain.contacts. An agent's own conversations are those
  they are assigned or own (the owner of the number: one waiting for them, or taken by someone else while they
  were away); supervisors and admins may ask for every conversation (`everyone`), as their board shows them.
- `q` finds a conversation by its contact's name (the whole text, or each of its words, anywhere in the name, in
  any case), by its contact's number (the digits of a text that is only a phone number, MIN_DIGITS at least: any
  part of the number, in any form typed, also read as a national number of the countries of the agent's numbers),
  or by the text of one of its messages, notes included: each word as the start of a word (a word of one letter
  as a whole word). Its newest such message is the conversation's `match`.
- The user's text is never query syntax: words are runs of letters, digits and marks (anything else only
  separates them), each quoted for the index; MAX_WORDS of them count.
- Newest first by (updated_at, id); `before` is where the previous page ended, opaque. A conversation that
  changes while the client pages moves to the top: it is neither repeated nor lost (it is pushed live).
- SQLite's index lags the newest messages (migration 0023 indexes them in batches): a search with words first
  indexes what is queued (`index_queued`, a write unit), so it finds every message stored before it.
"""
from __future__ import annotations

import base64
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby

import phonenumbers
import sqlalchemy as sa
from phonenumbers import NumberParseException

from chat.domain.conversations import conversation_query
from chat.domain.directory import Agent
from chat.domain.history import UNREAD, listed
from chat.domain.media import SUPERVISING
from chat.domain.outbound import STORE_INT_MAX, Refused
from chat.store import as_utc
from chat.store.tables import contacts, conversations, messages
from gateway import country_of

MAX_QUERY = 200  # characters of `q`
MAX_WORDS = 8  # words of `q` searched for (each one more index lookup)
PAGE, MAX_PAGE = 50, 100  # conversations a page
MIN_DIGITS = 3  # a shorter number would match most contacts
EXCERPT = 120  # characters of a matching message shown, around the first word found
STATES = ("open", "waiting", "closed")
NUMBER_CHARS = frozenset(" +-()./")  # what people type in a phone number besides digits
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR = re.compile(r"(\d{1,18})\.(\d{1,10})")
BAD_CURSOR = "not a cursor a search gave; start again without it"
# SQLite's full-text index and its queue (migration 0023). Not in chat.store.tables' metadata: SQLite only.
FTS = sa.table("messages_fts", sa.column("rowid"), sa.column("text"))
QUEUED = sa.table("messages_unindexed", sa.column("id"))
ANY_QUEUED = sa.select(sa.exists().select_from(QUEUED))
SIMPLE: sa.ColumnElement[str] = sa.literal_column("'simple'")  # PostgreSQL's configuration, as 0023 indexes


@dataclass(frozen=True)
class Search:
    """What the agent asks for (the `search` call's payload)."""

    q: str | None = None
    state: str | None = None  # open | waiting | closed
    unread: bool = False
    before: str | None = None  # the `next` of the previous page
    limit: int = PAGE
    everyone: bool = False  # supervisors and admins: every conversation, not only theirs


@dataclass(frozen=True)
class Asked:
    """The user's text, understood: the text cleaned, its words, and the digit strings a number may hold."""

    text: str
    words: tuple[str, ...]
    numbers: tuple[str, ...]


async def search_conversations(conn, agent: Agent, wanted: Search) -> dict:
    """A page of the agent's conversations that match `wanted`, newest first, and the cursor of the next page."""
    asked = understood(wanted.q, _regions(agent)) if wanted.q else None
    dialect = conn.dialect.name
    query = conversation_query().where(*_conditions(agent, wanted, asked, dialect))
    order = (conversations.c.updated_at.desc(), conversations.c.id.desc())
    rows = (await conn.execute(query.order_by(*order).limit(wanted.limit + 1))).all()
    page = rows[:wanted.limit]
    hits = await _matches(conn, [r.id for r in page], asked.words, dialect) if asked and asked.words else {}
    found = [item | {"state": row.state} | ({"match": hits[row.id]} if row.id in hits else {})
             for row, item in zip(page, await listed(conn, page), strict=True)]
    return {"conversations": found, "next": cursor(page[-1]) if len(rows) > wanted.limit else None}


def _conditions(agent: Agent, wanted: Search, asked: Asked | None, dialect: str) -> list:
    """What a conversation must be to be listed: the agent's, in the state, unread, past the cursor, matching."""
    where = _visible(agent, wanted.everyone, (wanted.state,) if wanted.state else STATES)
    if wanted.unread:
        # last_seq > read_seq first: most conversations were read to their end, and need no look at their messages.
        where.append(sa.and_(conversations.c.last_seq > conversations.c.read_seq,
                             sa.exists().where(messages.c.conversation_id == conversations.c.id, UNREAD)))
    if wanted.before is not None:
        at, cid = parse_cursor(wanted.before)
        where.append(sa.or_(conversations.c.updated_at < at,
                            sa.and_(conversations.c.updated_at == at, conversations.c.id < cid)))
    if asked is not None:
        where.append(_matching(asked, dialect))
    return where


def _visible(agent: Agent, everyone: bool, states: tuple[str, ...]) -> list:
    """The conversations in these states that the agent may see (see Rules), as conditions."""
    state = conversations.c.state.in_(states)
    if everyone:
        if agent.role not in SUPERVISING:
            raise Refused("only supervisors and admins search every conversation; leave everyone out", "everyone")
        return [state]
    # One index for each half of the OR: assigned_id's, and (state, owner_id). SQLite has no statistics: given
    # `state = ?` anywhere it can, it reads every conversation in that state (every closed one, for "closed").
    # So the assigned half tests the state as text (`state || ''`), which no index serves.
    mine = conversations.c.assigned_id == agent.id
    if len(states) == 1:
        mine = sa.and_(mine, conversations.c.state.op("||")("") == states[0])
    return [sa.or_(mine, sa.and_(state, conversations.c.owner_id == agent.id))]


def _matching(asked: Asked, dialect: str):
    """The conversations the user's text finds: by name, by number, or by a message."""
    name = contacts.c.name
    found = [name.icontains(asked.text, autoescape=True)]
    if asked.words:
        found.append(sa.and_(*(name.icontains(w, autoescape=True) for w in asked.words)))
        said = sa.select(messages.c.conversation_id).where(_message_hits(asked.words, dialect))
        found.append(conversations.c.id.in_(said))
    found.extend(contacts.c.number.contains(digits) for digits in asked.numbers)
    return sa.or_(*found)


def _message_hits(words: tuple[str, ...], dialect: str):
    """Messages whose text has every word (as a prefix, if longer than a letter), by the database's index."""
    if dialect == "sqlite":
        terms = " ".join(f'"{w}"' + ("*" if len(w) > 1 else "") for w in words)  # words hold no '"' (see _words)
        indexed = sa.select(FTS.c.rowid).where(sa.literal_column("messages_fts").op("MATCH")(terms))
        return messages.c.id.in_(indexed)
    terms = " & ".join(f"'{w}'" + (":*" if len(w) > 1 else "") for w in words)  # nor "'" nor a backslash
    return sa.func.to_tsvector(SIMPLE, messages.c.text).op("@@")(sa.func.to_tsquery(SIMPLE, terms))


async def _matches(conn, ids: list[int], words: tuple[str, ...], dialect: str) -> dict[int, dict]:
    """The newest message with the words in each of these conversations, as `match`, by conversation."""
    if not ids:
        return {}
    newest = (sa.select(sa.func.max(messages.c.id))
              .where(messages.c.conversation_id.in_(ids), _message_hits(words, dialect))
              .group_by(messages.c.conversation_id))
    rows = await conn.execute(sa.select(messages.c.id, messages.c.conversation_id, messages.c.seq, messages.c.text)
                              .where(messages.c.id.in_(newest)))
    return {r.conversation_id: {"message_id": r.id, "seq": r.seq, "text": excerpt(r.text, words)} for r in rows}


def understood(q: str, regions: tuple[str, ...] = ()) -> Asked | None:
    """The user's text as a search (None when it holds nothing but blanks): control characters, lone surrogates
    and NUL are blanks too, so no database sees them."""
    text = unicodedata.normalize("NFC", " ".join("".join(ch if ch.isprintable() else " " for ch in q).split()))
    if not text:
        return None
    return Asked(text, tuple(_words(text))[:MAX_WORDS], _numbers(text, regions))


def _words(text: str):
    """Runs of letters, digits and combining marks with a letter or digit in them, in lower case."""
    for in_word, chars in groupby(text, lambda ch: ch.isalnum() or unicodedata.category(ch)[0] == "M"):
        word = "".join(chars)
        if in_word and any(ch.isalnum() for ch in word):
            yield word.lower()


def _numbers(text: str, regions: tuple[str, ...]) -> tuple[str, ...]:
    """The digit strings a contact's number holds when `text` is (part of) a phone number; () when it is not one."""
    if not all(ch in NUMBER_CHARS or unicodedata.decimal(ch, None) is not None for ch in text):
        return ()
    digits = "".join(str(unicodedata.decimal(ch)) for ch in text if ch not in NUMBER_CHARS)
    found = {digits}
    if not text.startswith("+"):  # maybe national: "020 7946 0018" is +44 20 7946 0018 in GB
        found.update(_national(digits, region) for region in regions)
    return tuple(sorted(d for d in found if len(d) >= MIN_DIGITS))


def _national(digits: str, region: str) -> str:
    """The digits as a national number of `region` (its trunk prefix dropped), or ""."""
    try:
        return str(phonenumbers.parse(digits, region).national_number)
    except NumberParseException:
        return ""


def _regions(agent: Agent) -> tuple[str, ...]:
    """The countries of the agent's numbers: where a number typed without its country code is likely from."""
    return tuple(sorted({c for n in (*agent.personal_numbers, *agent.may_present) if (c := country_of(n))}))


def excerpt(text: str, words: tuple[str, ...]) -> str:
    """About EXCERPT characters of `text` on one line, from a little before the first of the words it holds."""
    starts = [m.start() for w in words if (m := re.search(r"(?<![^\W_])" + re.escape(w), text, re.IGNORECASE))]
    start = max(0, min(starts, default=0) - EXCERPT // 4)
    end = min(len(text), start + EXCERPT)
    return ("…" if start else "") + " ".join(text[start:end].split()) + ("…" if end < len(text) else "")


def cursor(row) -> str:
    """Where a page ended (after this row), as an opaque string."""
    micros = (as_utc(row.updated_at) - EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"{micros}.{row.id}".encode()).decode().rstrip("=")


def parse_cursor(text: str) -> tuple[datetime, int]:
    """The (updated_at, id) a cursor names, or Refused naming `before`."""
    try:
        plain = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True).decode("ascii")
        found = CURSOR.fullmatch(plain)
        if found is None or int(found[2]) > STORE_INT_MAX:
            raise ValueError(plain)
        return EPOCH + timedelta(microseconds=int(found[1])), int(found[2])
    except (ValueError, OverflowError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise Refused(BAD_CURSOR, "before") from None


async def index_behind(conn) -> bool:
    """Whether stored messages wait for SQLite's index (PostgreSQL's is always whole)."""
    return conn.dialect.name == "sqlite" and bool(await conn.scalar(ANY_QUEUED))


async def index_queued(conn) -> None:
    """Index the queued messages (SQLite), in one statement: FTS5 writes a segment per statement (migration 0023)."""
    # Built at each call: the store plans a statement it meets twice (chat.store.fast), and cannot plan an insert
    # into a table it has no metadata of. `id IN (the queue)`: SQLite planned the join as a scan of every message.
    queued = sa.select(messages.c.id, messages.c.text).where(messages.c.id.in_(sa.select(QUEUED.c.id)))
    await conn.execute(FTS.insert().from_select(["rowid", "text"], queued))
    await conn.execute(QUEUED.delete())
