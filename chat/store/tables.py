"""The schema. Alembic migrations in chat/migrations create it; keep the two in step."""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
Time = sa.DateTime(timezone=True)

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200)),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("presence", sa.String(16), nullable=False, server_default="ready"),
    sa.Column("chosen_number", sa.String(32)),  # the default number the agent chose (among those they may present)
    sa.Column("created_at", Time, nullable=False),
)

access_numbers = sa.Table(
    "access_numbers", metadata,
    sa.Column("number", sa.String(32), primary_key=True),
    sa.Column("sms", sa.Boolean, nullable=False),
    sa.Column("voice", sa.Boolean, nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("extension", sa.String(32)),
    sa.Column("connector", sa.String(64)),
    sa.Column("team", sa.String(64)),  # the route of new conversations, when not user
)

contacts = sa.Table(
    "contacts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.String(32), nullable=False, unique=True),
    sa.Column("name", sa.String(200)),
    sa.Column("opted_out", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("fields", sa.JSON),  # kept from CRM lookups
    sa.Column("created_at", Time, nullable=False),
)

conversations = sa.Table(
    "conversations", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=False),
    sa.Column("access_number", sa.String(32), nullable=False),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("assigned_id", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("state", sa.String(16), nullable=False),  # waiting | open | closed
    sa.Column("presented_number", sa.String(32), nullable=False),
    sa.Column("last_seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("read_seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("team", sa.String(64)),  # routed to a team queue
    sa.Column("tags", sa.JSON),
    sa.Column("reply_due_at", Time, index=True),  # the scenario's no_agent_reply deadline
    sa.Column("outcome", sa.String(64)),  # how it was closed: one of conversations.outcomes, "inactive", or none
    sa.Column("closed_at", Time),
    sa.Column("closed_by", sa.Integer, sa.ForeignKey("users.id")),  # the agent who closed it (none: a scenario, inactivity)
    sa.Column("snoozed_until", Time),  # out of the agent's list until then, or until the customer texts
    sa.Column("away_replied_at", Time),  # the last away auto-reply (one per conversation per period)
    sa.Column("away_due_at", Time),  # an away policy's deadline: escalate a hold, or reassign for want of a reply
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    # Invariant 3: one active conversation per (contact number, access number).
    sa.Index(
        "uq_conversations_active", "contact_id", "access_number", unique=True,
        sqlite_where=sa.text("state != 'closed'"), postgresql_where=sa.text("state != 'closed'"),
    ),
    # Every message updates last_seq and updated_at: neither is indexed, so on PostgreSQL the
    # update is HOT (migration 0008, which also sets this table's fillfactor).
    sa.Index("ix_conversations_assigned_id", "assigned_id"),
    sa.Index("ix_conversations_state", "state", "owner_id"),
    # `team` is the queue a conversation waits in: a team, a shared number's presenters, or "@admins".
    sa.Index("ix_conversations_queue", "state", "team"),
    # Only snoozed conversations are in it: a message's update (snoozed_until NULL, unchanged) stays HOT.
    sa.Index("ix_conversations_away_due", "away_due_at",
             sqlite_where=sa.text("away_due_at IS NOT NULL"), postgresql_where=sa.text("away_due_at IS NOT NULL")),
    sa.Index("ix_conversations_snoozed", "snoozed_until",
             sqlite_where=sa.text("snoozed_until IS NOT NULL"), postgresql_where=sa.text("snoozed_until IS NOT NULL")),
)

# Who opted out of SMS from which of our numbers ("*": all of them, the account-wide scope).
# contacts.opted_out says whether any row exists (a summary; decisions read this table).
opt_outs = sa.Table(
    "opt_outs", metadata,
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), primary_key=True),
    sa.Column("number", sa.String(32), primary_key=True),
    sa.Column("created_at", Time, nullable=False),
)

# A team's round robin: the member who took its last conversation. Its row is locked while the team's
# queue is dealt, so two nodes never deal one team's conversations at once.
team_cursors = sa.Table(
    "team_cursors", metadata,
    sa.Column("team", sa.String(64), primary_key=True),
    sa.Column("last_user_id", sa.Integer),
    sa.Column("updated_at", Time, nullable=False),
)

messages = sa.Table(
    "messages", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("direction", sa.String(8), nullable=False),  # in | out | note
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("sender", sa.String(32), nullable=False),
    sa.Column("recipient", sa.String(32), nullable=False),
    sa.Column("connector", sa.String(64), nullable=False),
    sa.Column("provider_id", sa.String(128)),  # inbound: the provider's id, for idempotent ingest
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")),  # outbound: who sent it
    sa.Column("client_id", sa.String(64)),  # outbound: the agent client's id, for idempotent sends
    sa.Column("segments", sa.Integer, nullable=False, server_default="1"),
    sa.Column("encoding", sa.String(8), nullable=False, server_default="GSM-7"),
    sa.Column("media", sa.JSON),
    # SMPP has no message id on deliver_sm: a resend is recognised by its content within a window.
    sa.Column("fingerprint", sa.String(64)),
    sa.Column("incomplete", sa.Boolean, nullable=False, server_default=sa.false()),
    # An opt-out/opt-in confirmation: the one message an opted-out contact still gets.
    sa.Column("compliance", sa.Boolean, nullable=False, server_default=sa.false()),
    # Inbound whose text had to change to be storable (U+FFFD for U+0000, lone surrogates or bytes
    # that were not UTF-8): base64 of the payload as received (gateway InboundSms.original).
    sa.Column("original", sa.Text),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    sa.UniqueConstraint("conversation_id", "seq"),
    sa.UniqueConstraint("connector", "provider_id"),
    sa.UniqueConstraint("user_id", "client_id"),
    sa.Index("ix_messages_updated", "conversation_id", "updated_at"),
    sa.Index("ix_messages_fingerprint", "fingerprint", "connector", "created_at"),  # fingerprint first: migration 0010
)

smpp_parts = sa.Table(
    "smpp_parts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("connector", sa.String(64), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("ref", sa.Integer),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("data_coding", sa.Integer, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("sender", sa.String(32), nullable=False),
    sa.Column("recipient", sa.String(32), nullable=False),
    sa.Column("done", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("received_at", Time, nullable=False),
    sa.UniqueConstraint("connector", "key", "seq"),
    sa.Index("ix_smpp_parts_age", "done", "received_at"),
)

# Pacing of sends (chat.domain.pacing): per sender number and per connector, the moment its next send may
# start (unix microseconds: an integer, which the store's planned statements read as they are), for every node.
send_pace = sa.Table(
    "send_pace", metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("next_us", sa.BigInteger, nullable=False),
)

provider_refs = sa.Table(
    "provider_refs", metadata,
    sa.Column("connector", sa.String(64), primary_key=True),
    sa.Column("provider_id", sa.String(128), primary_key=True),
    sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id"), nullable=False, index=True),
    sa.Column("part", sa.Integer, nullable=False, server_default="1"),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
)

pending_reports = sa.Table(
    "pending_reports", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("connector", sa.String(64), nullable=False),
    sa.Column("provider_id", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("received_at", Time, nullable=False),
    sa.Index("ix_pending_reports_ref", "connector", "provider_id"),
    sa.Index("ix_pending_reports_received_at", "received_at"),  # the expiry sweep (chat.connectors.receipts)
)


def claim_columns() -> list[sa.Column]:
    """A row of work claimed by one node (chat.domain.claims, migration 0009): who, until when, its fencing token."""
    return [sa.Column("claimed_by", sa.String(64)), sa.Column("claimed_until", Time), sa.Column("claim_token", sa.String(64))]


outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id"), nullable=False, unique=True),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("connector", sa.String(64), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Time, nullable=False, index=True),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", Time, nullable=False),
    *claim_columns(),
    sa.Index("ix_outbox_conversation_id", "conversation_id", "id"),  # a conversation's rows in order: migration 0011
)

scenario_runs = sa.Table(
    "scenario_runs", metadata,
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), primary_key=True),
    sa.Column("scenario", sa.String(200), nullable=False),
    sa.Column("run", sa.JSON, nullable=False),
    sa.Column("wake_at", Time, index=True),
    sa.Column("updated_at", Time, nullable=False),
)

scenario_timers = sa.Table(
    "scenario_timers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("at", Time, nullable=False, index=True),
)

crm_outbox = sa.Table(
    "crm_outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(200), nullable=False, unique=True),  # the activity's idempotency key
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("headers", sa.JSON),
    sa.Column("body", sa.JSON),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Time, nullable=False, index=True),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), index=True),  # whose (a deletion's)
    *claim_columns(),
)

# An agent's login: one row per refresh-token family, its token rotated on every use (chat.agents.sessions).
sessions = sa.Table(
    "sessions", metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # random; also the family of its refresh tokens
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False),  # SHA-256 of the current refresh token
    sa.Column("created_at", Time, nullable=False),
    sa.Column("last_used_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False),
    sa.Column("revoked_at", Time),
    sa.Column("revoked_reason", sa.String(32)),  # logout | reuse
)

# The running configuration (chat.config.Managed), one row per revision; the newest runs on every node
# (chat.domain.running). No passwords: those are hashed in users.
config_revisions = sa.Table(
    "config_revisions", metadata,
    sa.Column("revision", sa.Integer, primary_key=True, autoincrement=False),  # one more than the last: two at once clash
    sa.Column("document", sa.JSON, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # file | api | cli
    sa.Column("author", sa.String(64), nullable=False),  # who: a user's name, "file", or the CLI's user
    sa.Column("fingerprint", sa.String(64), nullable=False),  # of the file last applied (chat.domain.running)
    sa.Column("created_at", Time, nullable=False),
)

# Who did what, when and from where (chat.domain.audit): admin changes and sensitive actions; kept
# audit_keep_days. `details` never holds a secret or a customer's text.
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", Time, nullable=False, index=True),
    sa.Column("actor", sa.String(128), nullable=False),  # a user's name, token:NAME, cli, file, system
    sa.Column("action", sa.String(48), nullable=False, index=True),  # e.g. config.changed, login.failed, contact.deleted
    sa.Column("target", sa.String(200), nullable=False, server_default=""),
    sa.Column("address", sa.String(64), nullable=False, server_default=""),
    sa.Column("details", sa.JSON),
)

# Tokens for automation (chat.domain.tokens): only the SHA-256 of the secret is kept.
api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", sa.String(16), primary_key=True),  # public: the token's first part, what revoke names
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time),
    sa.Column("revoked_at", Time),
    sa.Column("last_used_at", Time),
)

# Canned replies (chat.domain.canned): global (scope "global"), a team's ("team", team set) or an agent's own
# ("personal", user_id set); `shortcut` is what the agent types after "/". The text may hold {contact.name},
# {agent.name} and the like, filled in the client when inserted.
canned_replies = sa.Table(
    "canned_replies", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("scope", sa.String(16), nullable=False),  # global | team | personal
    sa.Column("team", sa.String(64)),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("shortcut", sa.String(32), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    sa.Index("ix_canned_replies_scope", "scope", "team", "user_id"),
)
# A shortcut once per scope (its team, its agent), whatever its case: two nodes saving the same one at once store one.
sa.Index("uq_canned_replies_shortcut", canned_replies.c.scope, sa.func.coalesce(canned_replies.c.team, ""),
         sa.func.coalesce(canned_replies.c.user_id, 0), sa.func.lower(canned_replies.c.shortcut), unique=True)

# Files an agent attached to a reply (chat.domain.uploads): kept in the store, so every node serves them, and
# fetched by the provider from didchat's public URL with the unguessable `token` (MMS providers fetch media).
uploads = sa.Table(
    "uploads", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("content_type", sa.String(128), nullable=False),
    sa.Column("filename", sa.String(200)),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("attached_at", Time),  # when a send attached it (to one message only); never: deleted after a day
    sa.Index("ix_uploads_unsent", "attached_at", "created_at"),  # the sweep of unsent ones reads no file's bytes
)
