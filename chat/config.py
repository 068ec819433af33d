"""The configuration file: users, access numbers, callback numbers, connectors.

Rules: the file is validated whole and every problem is reported with its file:line and key;
cross-references (a number's user, a connector's numbers, an agent's callback numbers) are
checked here, so nothing downstream meets a dangling name. Secrets may be `${ENV}` references.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, IPvAnyNetwork, SecretStr, model_validator

from gateway.numbers import InvalidNumber, normalize_number
from gateway.providers import PROVIDERS
from gateway.providers.base import E164, HttpUrl, Name, Settings, Strict
from scenarios import Document, Problem, SourceError, load

__all__ = ["E164", "HttpUrl", "Name", "Strict"]


class UserConfig(Strict):
    name: Name
    display_name: str | None = None
    role: Literal["agent", "supervisor", "admin"] = Field(default="agent", description="supervisors and admins see the board")
    password: SecretStr | None = Field(default=None, min_length=8, description="initial password")
    password_hash: SecretStr | None = None
    may_present: tuple[str, ...] = Field(default=(), description="callback number names or numbers")
    default_number: str | None = Field(default=None, description="callback name or number")
    capacity: int | None = Field(default=None, ge=1, le=1000,
                                 description="most open conversations at once from team queues (default: the teams')")
    hide_personal: bool = Field(default=False, description="never present this user's personal number: customers see "
                                                           "the default number")
    select: tuple[SelectionRule, ...] | None = Field(default=None, description="this user's own selection rules")
    disabled: bool = Field(default=False, description="may not log in; their open conversations go where their numbers "
                                                      "route new ones, as a removed user's do")


class AwayTarget(Strict):
    user: Name | None = None
    team: Name | None = None

    @model_validator(mode="after")
    def _one(self) -> AwayTarget:
        if (self.user is None) == (self.team is None):
            raise ValueError("give either user or team")
        return self


class AwayAction(Strict):
    action: Literal["hold", "forward", "auto_reply"] = Field(
        description="hold: it waits for the agent; forward: it goes to `to` at once, and the agent is told; "
                    "auto_reply: the customer gets `text`, at most once per conversation every `every_seconds`")
    to: AwayTarget | None = None
    text: str | None = Field(default=None, min_length=1, max_length=1600)
    every_seconds: float = Field(default=3600, gt=0)
    escalate_after_seconds: float | None = Field(
        default=None, gt=0, description="hold: if the agent is still away this long after the text, it goes to `to`")

    @model_validator(mode="after")
    def _complete(self) -> AwayAction:
        if self.action == "forward" and self.to is None:
            raise ValueError("forward needs `to`: {user: NAME} or {team: NAME}")
        if self.escalate_after_seconds is not None and (self.action != "hold" or self.to is None):
            raise ValueError("escalate_after_seconds is for hold, with `to`: whom it escalates to")
        if self.action == "auto_reply" and not self.text:
            raise ValueError("auto_reply needs `text`")
        return self


class AwayConfig(Strict):
    """What happens to a conversation on this number whose agent is away when the customer texts
    (new conversations and those under way): `offline` (not logged in) and `not_ready` apart."""

    offline: AwayAction | None = None
    not_ready: AwayAction | None = None
    reassign_after_seconds: float | None = Field(
        default=None, gt=0, description="a customer's text with no agent reply this long: the conversation goes to reassign_to")
    reassign_to: AwayTarget | None = None

    @model_validator(mode="after")
    def _reassign(self) -> AwayConfig:
        if (self.reassign_after_seconds is None) != (self.reassign_to is None):
            raise ValueError("give reassign_after_seconds and reassign_to together")
        return self


class AccessNumberConfig(Strict):
    number: E164
    sms: bool = True
    voice: bool = True
    user: Name | None = Field(default=None, description="DID target: a user")
    extension: str | None = Field(default=None, description="DID target: an extension (voice only)")
    team: Name | None = Field(default=None, description="new conversations go to this team's queue (a key of teams)")
    connector: Name | None = Field(default=None, description="the connector it is sent and received on (default: the "
                                                             "connector whose numbers list it)")
    scenario: str = Field(default="default", description="a system scenario's name or a file in scenarios.directory")
    scenario_params: dict[str, Any] = Field(default_factory=dict, description="the scenario's params for this number")
    away: AwayConfig | None = Field(default=None, description="away policies: offline and not_ready")
    retention_days: float | None = Field(
        default=None, gt=0, le=36500, description="delete its closed conversations' messages this long after they were "
                                                  "sent or received; none: keep them")
    inactivity_close_seconds: float | None = Field(
        default=None, gt=0, le=366 * 86400,
        description="close its open conversations after this long without a message (outcome 'inactive'); none: never")

    @model_validator(mode="after")
    def _one_target(self) -> AccessNumberConfig:
        if self.user and self.extension:
            raise ValueError("give either user or extension as the DID target, not both")
        if self.user and self.team:
            raise ValueError("give either user or team as the route for new conversations, not both")
        return self


class TeamConfig(Strict):
    members: tuple[Name, ...] = ()
    distribution: Literal["round_robin", "least_busy", "offer_all"] = Field(
        default="least_busy", description="who takes a new conversation: each ready member in turn, the one with "
                                          "the fewest open, or all are offered it and the first to claim takes it")
    capacity: int | None = Field(default=None, ge=1, le=1000, description="most open conversations a member takes at once")
    select: tuple[SelectionRule, ...] | None = Field(
        default=None, description="the members' selection rules (a member's own rules come first)")


def _team(value: Any) -> Any:
    """`support: [alice, bob]` is short for `support: {members: [alice, bob]}`."""
    return {"members": value} if isinstance(value, list | tuple) else value


Team = Annotated[TeamConfig, BeforeValidator(_team)]


Outcome = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]


class ConversationsConfig(Strict):
    outcomes: tuple[Outcome, ...] = Field(default=(), max_length=100,
                                          description="what an agent may pick when closing a conversation, e.g. Resolved")
    require_outcome: bool = Field(default=False, description="closing needs one of outcomes")
    on_number_reassign: Literal["move", "keep"] = Field(
        default="move", description="when a number's owner changes: its open conversations move to the new owner "
                                    "(or its team), or stay with the old one until closed")

    @model_validator(mode="after")
    def _distinct(self) -> ConversationsConfig:
        twice = sorted({o for o in self.outcomes if self.outcomes.count(o) > 1})
        if twice:
            raise ValueError(f"outcome {twice[0]!r} is listed twice")
        if self.require_outcome and not self.outcomes:
            raise ValueError("require_outcome needs outcomes to pick from")
        return self


class CallbackNumber(Strict):
    number: E164
    display_name: str | None = Field(default=None, min_length=1, max_length=64, description="shown in the picker: free text")
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", description="e.g. en, fr-CA")
    category: str | None = Field(default=None, min_length=1, max_length=64, description="e.g. sales, support")


def _callback(value: Any) -> Any:
    """`main: "+1..."` is short for `main: {number: "+1..."}`."""
    return {"number": value} if isinstance(value, str) else value


class SelectionRule(Strict):
    """How a new conversation's number is chosen when the agent does not pick one: the first rule that
    gives a number the agent may present."""

    prefix: str | None = Field(default=None, pattern=r"^\+[0-9]{1,15}$", description="the customer's number starts with it")
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$",
                                description="the customer's number is of this country (ISO 3166 code, e.g. GB)")
    tag: str | None = Field(default=None, min_length=1, max_length=64,
                            description="the customer carries this tag (their latest conversation's, or their contact "
                                        "fields' `tags`)")
    number: str | None = Field(default=None, description="then present this callback name or number")
    last_used: bool = Field(default=False, description="the number last presented to this customer, if any")

    @model_validator(mode="after")
    def _what(self) -> SelectionRule:
        if self.last_used == (self.number is not None):
            raise ValueError("give either number (with prefix, country or tag, or alone) or last_used: true")
        if self.last_used and (self.prefix is not None or self.tag is not None or self.country is not None):
            raise ValueError("last_used takes no prefix, country or tag")
        return self


class CallbackNumbersConfig(Strict):
    default: str | None = Field(default=None, description="the account default (principal number): a name or number")
    named: dict[Name, Annotated[CallbackNumber, BeforeValidator(_callback)]] = Field(default_factory=dict)
    select: tuple[SelectionRule, ...] = Field(default=(), description="automatic selection for new conversations")


class SmppConnector(Settings):
    """A bind to an SMSC as an ESME (SMPP 3.4)."""

    type: Literal["smpp"]
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(ge=1, le=65535)
    system_id: str = Field(max_length=15)
    password: SecretStr = Field(max_length=8)
    system_type: str = Field(default="", max_length=12)
    address_range: str = ""
    bind: Literal["transceiver", "transmitter_receiver"] = "transceiver"
    window: int = Field(default=10, ge=1, le=1000)
    enquire_link_seconds: float = Field(default=30, gt=0)
    response_timeout: float = Field(default=10, gt=0)
    reconnect_min: float = Field(default=1, gt=0)
    reconnect_max: float = Field(default=60, gt=0)
    rate_limit: float = Field(default=0, ge=0, description="submit_sm per second (segments); 0 = no limit")
    throttle_pause: float = Field(default=1, gt=0)
    throttle_max_pause: float = Field(default=1.5, gt=0, description="cap of the growing pause after ESME_RTHROTTLED (20 in a row pass in ~30 s)")
    submit_retries: int = Field(default=5, ge=0)
    default_alphabet: Literal["gsm", "latin1", "ascii"] = Field(default="gsm", description="what data_coding 0 means")
    country: str | None = Field(default=None, description="ISO region for national (TON 2) numbers, e.g. US")
    concat: Literal["udh", "sar", "payload"] = "udh"
    max_parts: int = Field(default=10, ge=1, le=255)
    submit_id_base: Literal["hex", "dec", "str"] = "str"
    receipt_id_base: Literal["hex", "dec", "str"] = "str"
    concat_timeout: float = Field(default=300, gt=0, description="seconds to wait for the missing parts of a long SMS")
    dedupe_window: float = Field(default=600, ge=0, description="seconds in which an identical deliver_sm is a resend")


# Every provider's settings (gateway.providers.PROVIDERS) and SMPP's, told apart by `type`.
CONNECTOR_MODELS: tuple[type[Settings], ...] = (*(p.settings for p in PROVIDERS.values()), SmppConnector)
if TYPE_CHECKING:
    Connector = Settings
else:
    Connector = Annotated[Union[CONNECTOR_MODELS], Field(discriminator="type")]  # noqa: UP007


class ScenariosConfig(Strict):
    directory: str = Field(default="scenarios", description="where NAME.yaml scenario files live")
    optout: dict[str, Any] = Field(default_factory=dict, description="params of the opt-out compliance scenario")
    reload_seconds: float = Field(default=1.0, gt=0, description="how often files are checked for changes")


class OutboxConfig(Strict):
    max_attempts: int = Field(default=12, ge=1)
    backoff_seconds: float = Field(default=1.0, gt=0)
    backoff_max_seconds: float = Field(default=300.0, gt=0)
    concurrency: int = Field(default=16, ge=1)


class LoginConfig(Strict):
    """Throttling of wrong passwords, and the bound on password-hashing work."""

    user_failures: int = Field(default=5, ge=1, description="wrong passwords for one user before logins are delayed")
    address_failures: int = Field(default=20, ge=1, description="wrong passwords from one address before it is delayed")
    window_seconds: float = Field(default=900, gt=0, description="how long a wrong password counts")
    delay_seconds: float = Field(default=1, gt=0, description="the first delay; it doubles with each further failure")
    max_delay_seconds: float = Field(default=300, gt=0)
    hash_concurrency: int = Field(default=1, ge=1, description="password hashes computed at once (argon2 takes a core)")
    hash_queue: int = Field(default=16, ge=0, description="logins that may wait for a hash; more are answered 503 at once")
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list, description="reverse proxies whose X-Forwarded-For names the client (e.g. 10.0.0.0/8)")


class RetentionConfig(Strict):
    """How long the audit log is kept, and how often expired records and messages are deleted."""

    audit_days: float = Field(default=365, gt=0, le=36500, description="audit records older than this are deleted")
    check_seconds: float = Field(default=3600, gt=0, description="how often expired messages and records are deleted")


class ClusterConfig(Strict):
    """Several nodes on one PostgreSQL database and one Redis (README, "Running several nodes")."""

    node_name: str | None = Field(default=None, max_length=64, description="this node's name in logs, leases and claims; default host-pid")
    heartbeat_seconds: float = Field(default=2, gt=0, description="how often a node renews its presence, claims and leases")
    presence_ttl_seconds: float = Field(default=8, gt=0, description="a dead node's agents are offline after this long")
    claim_seconds: float = Field(default=30, gt=0, description="a row of work claimed by a node that died is free again after this long")
    lease_seconds: float = Field(default=6, gt=0, description="a node cut off from PostgreSQL loses its SMPP binds after about "
                                 "this long (a dead process's at once); keep heartbeat_seconds at a third of it or less")
    redis_prefix: str = Field(default="didchat", pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
                              description="prefix of every Redis key and channel: clusters that share a Redis keep apart")


class Managed(Strict):
    """What administrators change while didchat runs (the admin API, `didchat config apply`): the running
    configuration, stored in the database with a revision and the same on every node (chat.domain.running);
    connectors' secrets sealed (chat.domain.secrets)."""

    users: tuple[UserConfig, ...] = ()
    access_numbers: tuple[AccessNumberConfig, ...] = ()
    callback_numbers: CallbackNumbersConfig = CallbackNumbersConfig()
    teams: dict[Name, Team] = Field(default_factory=dict, description="team queues: name -> members (or members, distribution, capacity)")
    conversations: ConversationsConfig = ConversationsConfig()
    opt_out_scope: Literal["number", "account"] = Field(
        default="number", description="a STOP stops the number it was sent to (number), or every number (account)")
    connectors: tuple[Connector, ...] = Field(default=(), description="the SMSCs and SMS APIs: their secrets are sealed in "
                                              "the database, or ${NAME} references each node reads from its environment")

    def team_members(self) -> dict[str, tuple[str, ...]]:
        """Each team's member names."""
        return {name: team.members for name, team in self.teams.items()}


MANAGED = tuple(Managed.model_fields)


class Config(Managed):
    """A node's configuration file: its own settings, and the running configuration it starts from."""

    public_url: str = "http://127.0.0.1:8080"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: str = "data"
    database_url: str | None = None
    redis_url: SecretStr | None = Field(default=None, description="redis://host:6379/0: several nodes share pushes, presence and wake-ups")
    cluster: ClusterConfig = ClusterConfig()
    secret_key: SecretStr | None = Field(default=None, min_length=32)
    token_minutes: float = Field(default=15, gt=0)
    presence_grace_seconds: float = Field(default=10, ge=0)
    scenarios: ScenariosConfig = ScenariosConfig()
    outbox: OutboxConfig = OutboxConfig()
    login: LoginConfig = LoginConfig()
    retention: RetentionConfig = RetentionConfig()
    log_format: Literal["console", "json"] = Field(default="console", description="console for people, json for collectors")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    unknown_status_hours: float = Field(default=24, gt=0, description="how long a status callback for an unknown message id is kept")
    shutdown_seconds: float = Field(default=8, gt=0, description="how long in-flight work may take to settle on shutdown")
    media_max_bytes: int = Field(default=5_000_000, ge=1, description="the largest inbound media agents may fetch "
                                                                   "through didchat (MMS carriers cap at about 5 MB)")
    upload_max_bytes: int = Field(default=5_000_000, ge=1, le=2**31 - 1, description="the largest file an agent may "
                                  "attach to a reply (POST /api/uploads); Twilio takes 5 MB of media a message in all")

    def connector_of(self, number: str) -> Connector | None:
        """The connector that owns `number`."""
        return self.connectors_by_number().get(number)

    def connectors_by_number(self) -> dict[str, Connector]:
        """number -> the connector that owns it: the one an access number names, else the first that lists it."""
        by_name = {c.name: c for c in self.connectors}
        owners = {n: c for c in reversed(self.connectors) for n in c.numbers}
        return owners | {num.number: by_name[num.connector] for num in self.access_numbers
                         if num.connector and num.connector in by_name}

    def resolve_number(self, ref: str) -> str | None:
        """A callback name or a number, as E.164."""
        if ref in self.callback_numbers.named:
            return self.callback_numbers.named[ref].number
        try:
            return normalize_number(ref)
        except InvalidNumber:
            return None

    def database(self) -> str:
        """The database URL: environment, then file, then SQLite in the data folder."""
        url = os.environ.get("DIDCHAT_DATABASE_URL") or self.database_url
        return url or f"sqlite+aiosqlite:///{os.path.abspath(self.data_dir)}/didchat.db"

    def redis(self) -> str | None:
        """The Redis URL (environment, then file), or None for one node on its own."""
        url = os.environ.get("DIDCHAT_REDIS_URL") or (self.redis_url.get_secret_value() if self.redis_url else None)
        return url or None


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read, validate and cross-check a configuration file, or raise SourceError."""
    return read_config(path)[0]


def read_config(path: str | os.PathLike[str]) -> tuple[Config, Document]:
    """The checked configuration and the document it came from (to place further problems on its lines)."""
    doc = load(path)
    config = doc.validate(Config)
    problems = list(cross_check(config, doc))
    if problems:
        raise SourceError(problems)
    return config, doc


def cross_check(config: Config, doc: Document) -> Iterator[Problem]:
    """Problems that span several parts of the file."""
    yield from _check_users(config, doc)
    yield from _check_numbers(config, doc)
    yield from _check_connectors(config, doc)
    yield from _check_callbacks(config, doc)
    yield from _check_teams(config, doc)
    yield from _check_cluster(config, doc)


def _check_users(config: Config, doc: Document) -> Iterator[Problem]:
    seen: set[str] = set()
    for i, user in enumerate(config.users):
        if user.name in seen:
            yield doc.problem(("users", i, "name"), f"user {user.name!r} is declared twice")
        seen.add(user.name)
        for j, ref in enumerate(user.may_present):
            if config.resolve_number(ref) is None:
                yield doc.problem(("users", i, "may_present", j), f"{ref!r} is neither a callback name nor a number")
        if user.default_number and config.resolve_number(user.default_number) is None:
            yield doc.problem(("users", i, "default_number"), f"{user.default_number!r} is neither a callback name nor a number")


def _check_numbers(config: Config, doc: Document) -> Iterator[Problem]:
    users = {u.name for u in config.users}
    disabled = {u.name for u in config.users if u.disabled}
    owners = config.connectors_by_number()
    connectors = {c.name for c in config.connectors}
    seen: set[str] = set()
    for i, num in enumerate(config.access_numbers):
        if num.number in seen:
            yield doc.problem(("access_numbers", i, "number"), f"{num.number} is declared twice")
        seen.add(num.number)
        if num.user and num.user not in users:
            yield doc.problem(("access_numbers", i, "user"), f"no user named {num.user!r}")
        elif num.user in disabled:
            yield doc.problem(("access_numbers", i, "user"), f"user {num.user!r} is disabled: give the number "
                                                             "another owner or a team first")
        if num.team and num.team not in config.teams:
            yield doc.problem(("access_numbers", i, "team"), f"no team named {num.team!r} in teams")
        for state in ("offline", "not_ready"):
            target = getattr(getattr(num.away, state, None), "to", None)
            where: tuple = ("access_numbers", i, "away", state, "to")
            if target is not None and target.user and target.user not in users:
                yield doc.problem((*where, "user"), f"no user named {target.user!r}")
            if target is not None and target.team and target.team not in config.teams:
                yield doc.problem((*where, "team"), f"no team named {target.team!r} in teams")
        again = num.away.reassign_to if num.away else None
        if again is not None and again.user and again.user not in users:
            yield doc.problem(("access_numbers", i, "away", "reassign_to", "user"), f"no user named {again.user!r}")
        if again is not None and again.team and again.team not in config.teams:
            yield doc.problem(("access_numbers", i, "away", "reassign_to", "team"), f"no team named {again.team!r} in teams")
        if num.sms and num.extension:
            yield doc.problem(
                ("access_numbers", i, "extension"),
                f"{num.number} is SMS-enabled but its DID target is extension {num.extension}; "
                "an extension takes voice only: point it at a user, or set sms: false",
            )
        if num.connector and num.connector not in connectors:
            yield doc.problem(("access_numbers", i, "connector"), f"no connector named {num.connector!r}")
        elif num.sms and num.number not in owners:
            yield doc.problem(("access_numbers", i, "number"), f"{num.number} is SMS-enabled but no connector lists it "
                                                                  "(give it a connector)")


def _check_connectors(config: Config, doc: Document) -> Iterator[Problem]:
    owner: dict[str, str] = {}
    names: set[str] = set()
    for i, conn in enumerate(config.connectors):
        if conn.name in names:
            yield doc.problem(("connectors", i, "name"), f"connector {conn.name!r} is declared twice")
        names.add(conn.name)
        for j, number in enumerate(conn.numbers):
            if number in owner:
                yield doc.problem(("connectors", i, "numbers", j), f"{number} is already owned by connector {owner[number]!r}")
            owner.setdefault(number, conn.name)


def _check_callbacks(config: Config, doc: Document) -> Iterator[Problem]:
    cb = config.callback_numbers
    for name, entry in cb.named.items():
        number = entry.number
        if config.connector_of(number) is None:
            yield doc.problem(("callback_numbers", "named", name), f"{number} is not owned by any connector, so nothing could send from it")
    if cb.default and config.resolve_number(cb.default) is None:
        yield doc.problem(("callback_numbers", "default"), f"{cb.default!r} is neither a callback name nor a number")
    for where, rules in [(("callback_numbers", "select"), cb.select)] + [
            (("users", i, "select"), u.select or ()) for i, u in enumerate(config.users)] + [
            (("teams", name, "select"), team.select or ()) for name, team in config.teams.items()]:
        for j, rule in enumerate(rules):
            if rule.number is not None and config.resolve_number(rule.number) is None:
                yield doc.problem((*where, j, "number"), f"{rule.number!r} is neither a callback name nor a number")


def _check_teams(config: Config, doc: Document) -> Iterator[Problem]:
    users = {u.name for u in config.users}
    for team, members in config.team_members().items():
        for j, member in enumerate(members):
            if member not in users:
                short = not isinstance((doc.data.get("teams") or {}).get(team), dict)
                path = ("teams", team, j) if short else ("teams", team, "members", j)
                yield doc.problem(path, f"team {team!r}: no user named {member!r}")


def _check_cluster(config: Config, doc: Document) -> Iterator[Problem]:
    """Several nodes (Redis configured) need one explicit secret key: each would otherwise make its own
    and refuse the agents' tokens of every other node. A node's agents must outlive its heartbeats."""
    cluster = config.cluster
    if cluster.presence_ttl_seconds <= cluster.heartbeat_seconds:
        yield doc.problem(("cluster", "presence_ttl_seconds"),
                          f"presence_ttl_seconds ({cluster.presence_ttl_seconds:g}) must be longer than heartbeat_seconds "
                          f"({cluster.heartbeat_seconds:g}), or the agents of live nodes go offline between heartbeats; "
                          "three or four heartbeats is usual")
    if config.redis() is None or config.secret_key is not None:
        return
    source = "redis_url is set" if config.redis_url else "DIDCHAT_REDIS_URL is set"
    yield doc.problem(("redis_url",) if config.redis_url else ("secret_key",),
                      f"secret_key must be set when Redis is configured ({source}): every node must sign agents' "
                      "tokens with the same key; set secret_key (32 characters or more, e.g. \"${DIDCHAT_SECRET_KEY}\") "
                      "to the same value on every node")
