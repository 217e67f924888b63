"""The append-only ledger: entries, their places in the Merkle tree, and signed checkpoints.

All three tables are append-only, enforced by database triggers (migration
0002_ledger_append_only_triggers). An entry is never changed once written; sealing assigns it a
leaf by inserting a `LedgerLeaf` row, so the assignment is append-only too. docs/ledger.md
describes the leaf form, the tree and the checkpoint note.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone


class LedgerEntry(models.Model):
    """One recorded action. Holds ids, pseudonyms, scopes and counts only, never personal content."""

    class Kind(models.TextChoices):
        GRANT_CREATED = "grant.created"
        GRANT_AMENDED = "grant.amended"
        GRANT_REVOKED = "grant.revoked"
        GRANT_EXPIRED = "grant.expired"
        TOKEN_ISSUED = "token.issued"  # noqa: S105 (an event name)
        TOKEN_REFRESHED = "token.refreshed"  # noqa: S105 (an event name)
        TOKEN_REVOKED = "token.revoked"  # noqa: S105 (an event name)
        TOKEN_REUSE_DETECTED = "token.reuse_detected"  # noqa: S105 (an event name)
        TOKEN_CODE_REPLAYED = "token.code_replayed"  # noqa: S105 (an event name)
        ACCESS_READ = "access.read"
        ACCESS_WRITE = "access.write"
        ACCESS_CHECK = "access.check"
        ACCESS_DENIED = "access.denied"
        PERSON_IMPORT = "person.import"
        PERSON_EXPORT = "person.export"
        PERSON_ERASED = "person.erased"
        # A reset without the recovery code: the store set aside, brought back, or destroyed.
        PERSON_STORE_RESTARTED = "person.store_restarted"
        PERSON_STORE_RESTORED = "person.store_restored"
        PERSON_STORE_DESTROYED = "person.store_destroyed"
        # Two-step sign-in turned on or off, or new backup codes (accounts/twofactor.py).
        PERSON_TWO_FACTOR_ON = "person.two_factor_on"
        PERSON_TWO_FACTOR_OFF = "person.two_factor_off"
        PERSON_BACKUP_CODES_NEW = "person.backup_codes_new"
        KEY_ROTATED = "key.rotated"
        RECALL_PUBLISHED = "recall.published"
        RECALL_MATCHED = "recall.matched"
        # What an operator does to a person's account (docs/security.md, "The operator").
        OPERATOR_DEACTIVATED = "operator.deactivated"
        OPERATOR_REACTIVATED = "operator.reactivated"
        OPERATOR_PASSWORD_RESET = "operator.password_reset"  # noqa: S105 (an event name)
        OPERATOR_EMAIL_CHANGED = "operator.email_changed"
        OPERATOR_TWO_FACTOR_REMOVED = "operator.two_factor_removed"
        # Vendor lifecycle events that change who can act on people's data.
        APP_REGISTERED = "vendor.app_registered"
        APP_SECRET_RESET = "vendor.app_secret_reset"  # noqa: S105 (an event name)
        ORG_VERIFIED = "vendor.org_verified"
        ORG_UNVERIFIED = "vendor.org_unverified"
        ORG_SUSPENDED = "vendor.org_suspended"
        ORG_RESUMED = "vendor.org_resumed"
        ORG_ENDED = "vendor.org_ended"
        VENDOR_REPORTED = "vendor.reported"
        CASE_OPENED = "audit.case_opened"
        CASE_CLOSED = "audit.case_closed"
        SIGNING_KEY_ROTATED = "key.signing_rotated"
        # MyTerms: the agreements a person proffers, and those an organisation accepts (settings),
        # and what came of them at each consent (consent.agreements).
        TERMS_CHOSEN = "terms.chosen"
        TERMS_DECLARED = "terms.declared"
        TERMS_PROFFERED = "terms.proffered"
        TERMS_ACCEPTED = "terms.accepted"
        TERMS_DECLINED = "terms.declined"
        TERMS_ACKNOWLEDGED = "terms.acknowledged"
        # Vendor messages (messages:send): ids, kinds and counts only, never their words.
        MESSAGE_SENT = "message.sent"
        MESSAGE_READ = "message.read"
        MESSAGE_ANSWERED = "message.answered"
        MESSAGE_REPORTED = "message.reported"
        MESSAGE_ALLOWANCE = "message.allowance"
        # Intentcasting (vendors/intents.py): ids and counts only, docs/vendors.md says which ids.
        INTENT_PUBLISHED = "intent.published"
        INTENT_UPDATED = "intent.updated"
        INTENT_WITHDRAWN = "intent.withdrawn"
        INTENT_EXPIRED = "intent.expired"
        INTENT_OFFERED = "intent.offered"
        INTENT_ACCEPTED = "intent.accepted"
        INTENT_DECLINED = "intent.declined"
        INTENT_FILTERS_SET = "intent.filters_set"
        # Witnesses (docs/ledger.md, "Witnesses"): an auditor registers or retires one; a
        # witness's report that the log was forked, rewritten or truncated raises an alarm.
        WITNESS_REGISTERED = "witness.registered"
        WITNESS_RETIRED = "witness.retired"
        LEDGER_ALARM = "ledger.alarm"

    class ActorType(models.TextChoices):
        PERSON = "person"
        VENDOR_ORG = "vendor_org"
        CLIENT = "client"
        AUDITOR = "auditor"
        OPERATOR = "operator"
        SYSTEM = "system"

    class Outcome(models.TextChoices):
        ALLOWED = "allowed"
        DENIED = "denied"

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=100)
    # The person's ledger pseudonym (personal_data.pseudonyms), never a user id or an e-mail.
    # Indexed by ledger_subject_newest and ledger_grant_oldest below, which lead with the column.
    subject = models.CharField(max_length=64, blank=True)
    grant_id = models.CharField(max_length=64, blank=True)
    scopes = models.JSONField(default=list)
    record_ids = models.JSONField(default=list)
    record_count = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.ALLOWED)
    reason = models.CharField(max_length=120, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name_plural = "ledger entries"
        indexes: ClassVar[list[models.Index]] = [
            # A person's activity, newest first, read by keyset position.
            models.Index(fields=["subject", "-created_at", "-id"], name="ledger_subject_newest"),
            # The auditor's filters, each read newest first by keyset position (docs/performance.md,
            # "Auditor pages at 10M entries"): one kind, one vendor's (or anyone's) actions, the
            # denied ones (a partial index: a few percent of entries).
            models.Index(fields=["kind", "-created_at", "-id"], name="ledger_kind_newest"),
            models.Index(fields=["actor_id", "-created_at", "-id"], name="ledger_actor_newest"),
            models.Index(
                fields=["-created_at", "-id"],
                condition=models.Q(outcome="denied"),
                name="ledger_denied_newest",
            ),
            # A grant's entries in order; also every lookup by grant id.
            models.Index(fields=["grant_id", "created_at", "id"], name="ledger_grant_oldest"),
            # A grant's history without its accesses (which can be millions): the grant page's
            # changes, and a grant's state in a few index-only reads.
            models.Index(
                fields=["grant_id", "created_at", "id"],
                include=["kind"],
                condition=~models.Q(
                    kind__in=["access.read", "access.write", "access.check", "access.denied"]
                ),
                name="ledger_grant_events",
            ),
            # The grant.* entries alone, by kind and time, with what the grant counts need: the
            # grants page walks grant.created newest first and counts grants per vendor and
            # status from this small index alone.
            models.Index(
                fields=["kind", "-created_at", "-id"],
                include=["grant_id", "actor_id", "actor_type", "subject"],
                condition=models.Q(
                    kind__in=["grant.created", "grant.amended", "grant.revoked", "grant.expired"]
                ),
                name="ledger_grant_kinds",
            ),
            # Who sent a grant's messages, for the auditor's message counts: the sender of each
            # answer or report in one index-only lookup, where the grant's history would be read.
            models.Index(
                fields=["grant_id"],
                include=["actor_id"],
                condition=models.Q(kind="message.sent"),
                name="ledger_message_sender",
            ),
        ]

    def __str__(self) -> str:
        return f"ledger entry {self.pk} {self.kind}"


class LedgerLeaf(models.Model):
    """The place of one entry in the Merkle tree, written once by the sealer."""

    leaf_index = models.BigIntegerField(primary_key=True)
    entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="leaf")
    leaf_hash = models.BinaryField(max_length=32)

    def __str__(self) -> str:
        return f"leaf {self.leaf_index} (entry {self.entry_id})"


class LedgerCheckpoint(models.Model):
    """A signed statement of the tree's size and root, in the C2SP signed-note checkpoint form."""

    tree_size = models.BigIntegerField(unique=True)
    root_hash = models.BinaryField(max_length=32)
    # The tree's perfect subtree roots (CompactRange.to_list) concatenated, largest first, so
    # the next seal continues from here without reading old leaves.
    compact_range = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)
    note = models.TextField()
    signature = models.BinaryField(max_length=64)
    # The 4-byte C2SP key id of the signing key, as in the note's signature line. NULL for
    # checkpoints sealed before migration 0004 (their note still names the key): adding a NOT NULL
    # column would make SQLite rebuild the table and drop its append-only triggers.
    key_id = models.BinaryField(max_length=4, null=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["tree_size"]

    def __str__(self) -> str:
        return f"checkpoint at tree size {self.tree_size}"


class LedgerPublicKey(models.Model):
    """A public key that signs, or once signed, checkpoints and consent receipts (never a private key).

    The history lets old checkpoints and receipts verify after a rotation. Each key after the
    first carries its handover: its predecessor's signature of a statement naming it, and its
    own signature proving possession. Only a key reachable from the first key by valid handovers
    is trusted (audit.selectors.signing_key_chain), so a row added here by hand, or by anyone who
    can only write to the database, is never trusted (docs/ledger.md, "Signing keys"). The table
    is append-only (migration 0005), except that retired_at may be set once.
    """

    public_key = models.BinaryField(max_length=32, unique=True)
    # RFC 7638 thumbprint: the `kid` of consent receipts' JWS header.
    kid = models.CharField(max_length=43, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)
    # NULL for the first key. Not unique: a forged row naming the current key as its predecessor
    # must not be able to block the real rotation that comes after it.
    predecessor = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="successors"
    )
    # Ed25519 signatures of core.crypto.handover_statement by the predecessor and of
    # core.crypto.possession_statement by this key; NULL for the first key.
    handover_signature = models.BinaryField(max_length=64, null=True)
    possession_signature = models.BinaryField(max_length=64, null=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["created_at", "id"]

    def __str__(self) -> str:
        return f"ledger public key {self.kid}"


class Witness(models.Model):
    """An independent witness an auditor registered: it cosigns checkpoints it saw extend the last.

    Its key is a C2SP cosignature/v1 Ed25519 key; `key_id` is audit.ledger.witness_key_id of its
    name and key. A retired witness's cosignatures stay evidence, but it can post no new ones.
    """

    name = models.CharField(max_length=100, unique=True)
    public_key = models.BinaryField(max_length=32, unique=True)
    key_id = models.BinaryField(max_length=4)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="witnesses_registered"
    )
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["created_at", "id"]
        verbose_name_plural = "witnesses"

    def __str__(self) -> str:
        return f"witness {self.name}"


class LedgerCosignature(models.Model):
    """A witness's cosignature of a checkpoint body: evidence that outlives the checkpoint row.

    No foreign key to the checkpoint: the note body it signed is stored whole, so deleting or
    rewriting a checkpoint leaves the witness's word behind. Append-only (migration 0014).
    """

    witness = models.ForeignKey(Witness, on_delete=models.PROTECT, related_name="cosignatures")
    tree_size = models.BigIntegerField()
    root_hash = models.BinaryField(max_length=32)
    # The checkpoint note body (origin, size, root lines) the witness signed, byte for byte.
    note_body = models.TextField()
    # POSIX seconds, as in the cosignature line.
    timestamp = models.BigIntegerField()
    signature = models.BinaryField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar[list[str]] = ["tree_size", "id"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["witness", "tree_size"], name="ledger_cosignature_once"),
        ]

    def __str__(self) -> str:
        return f"cosignature of tree size {self.tree_size} by witness {self.witness_id}"


class LedgerAlarm(models.Model):
    """Evidence that the log misbehaved: checkpoints it signed that the ledger cannot stand behind.

    Raised when a log-signed checkpoint (mostly posted by a witness) disagrees with the ledger.
    Append-only (migration 0014); `dedupe` keeps one alarm per kind and evidence.
    """

    class Kind(models.TextChoices):
        # Two different log-signed checkpoints of the same size.
        FORK = "fork"
        # A log-signed checkpoint whose root differs from the ledger's tree at that size.
        INCONSISTENT = "inconsistent"
        # A log-signed checkpoint larger than the ledger's tree.
        TRUNCATED = "truncated"
        # A log-signed checkpoint that matches the tree but whose checkpoint row is gone.
        CHECKPOINT_MISSING = "checkpoint_missing"

    kind = models.CharField(max_length=24, choices=Kind.choices)
    tree_size = models.BigIntegerField()
    detail = models.TextField()
    # The log-signed note(s), as text: what anyone can check with the log's public key.
    evidence = models.TextField()
    reported_by = models.ForeignKey(
        Witness, null=True, blank=True, on_delete=models.PROTECT, related_name="alarms"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Hex SHA-256 of kind and evidence: the same report twice is one alarm.
    dedupe = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} alarm at tree size {self.tree_size}"


class LedgerTile(models.Model):
    """One C2SP tile of the Merkle tree above the leaves (level >= 1): up to 256 hashes, 8 KiB.

    Written by the sealer in the transaction that writes the leaves and the checkpoint. A tile
    only grows from the right until it is full (migration 0012's trigger refuses any other
    change), so the partial tile a checkpoint needs is a prefix of what is stored. Level 0 is the
    leaf hashes of LedgerLeaf. docs/ledger.md, "Tiles".
    """

    level = models.PositiveSmallIntegerField()
    tile_index = models.BigIntegerField()
    hashes = models.BinaryField(max_length=8192)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["level", "tile_index"], name="ledger_tile_position"),
        ]

    def __str__(self) -> str:
        return f"tile {self.level}/{self.tile_index} ({len(self.hashes) // 32} hashes)"


# --- summaries the auditor's pages read (docs/ledger.md, "Summaries") -----------------------------
#
# Derived from the entries, never a source of truth: verify_ledger recomputes all three and names
# any difference, and `seal_ledger --rebuild-summaries` recomputes them. Unlike the entries they
# are updated in place, so they carry no append-only trigger.


class LedgerGrant(models.Model):
    """One grant as the ledger tells it, kept by ledger_append in the transaction of each grant.* entry.

    Its grant.created entry gives the vendor (the entry's actor when a vendor's; a person creates
    a grant, so otherwise the first vendor's client that took a token under it, else empty), the
    person's pseudonym and the start; the newest grant.created or grant.amended entry the scopes;
    the newest grant.* entry `last_at`; a grant.revoked entry makes it revoked, else a
    grant.expired entry expired, and the first of them is `ended_entry` at `ended_at`. Only
    entries after the first grant.created count.
    """

    class End(models.TextChoices):
        REVOKED = "grant.revoked"
        EXPIRED = "grant.expired"

    grant_id = models.CharField(max_length=64, unique=True)
    created_entry = models.BigIntegerField(unique=True)
    vendor = models.CharField(max_length=100, blank=True)
    subject = models.CharField(max_length=64, blank=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField()
    last_at = models.DateTimeField()
    end_kind = models.CharField(max_length=32, choices=End.choices, blank=True)
    # The grant's first end entry (lowest id after its grant.created) and its time.
    ended_entry = models.BigIntegerField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            # The grants page: newest first by keyset position, alone or by vendor or status.
            models.Index(fields=["-created_at", "-created_entry"], name="ledger_grant_newest"),
            models.Index(fields=["vendor", "-created_at", "-created_entry"], name="ledger_grant_vendor"),
            models.Index(fields=["end_kind", "-created_at", "-created_entry"], name="ledger_grant_status"),
        ]

    def __str__(self) -> str:
        return f"grant {self.grant_id} ({self.end_kind or 'active'})"


class LedgerVendorDay(models.Model):
    """A vendor's sealed accesses on one UTC day, counted by the sealer as it seals them.

    Counted as the activity page counts: an allowed access.read, .write or .check is a read,
    write or check (a read adds its records); an access.denied entry, or any entry of the vendor
    with outcome denied, is a refusal.
    """

    vendor = models.CharField(max_length=100)
    day = models.DateField()
    reads = models.BigIntegerField(default=0)
    writes = models.BigIntegerField(default=0)
    checks = models.BigIntegerField(default=0)
    records = models.BigIntegerField(default=0)
    denied = models.BigIntegerField(default=0)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["vendor", "day"], name="ledger_vendor_day_once"),
        ]
        indexes: ClassVar[list[models.Index]] = [models.Index(fields=["day"], name="ledger_vendor_day_day")]

    def __str__(self) -> str:
        return f"{self.vendor} on {self.day}"


class LedgerLateRead(models.Model):
    """Sealed reads under a grant after the grant ended, per grant, vendor and UTC day.

    A read is late when its grant's first end (LedgerGrant.ended_entry) has a lower leaf index and
    an earlier time: the sealer judges each read as it seals it, so a read that raced the
    revocation and committed first (and so was sealed first) is not late.
    """

    grant_id = models.CharField(max_length=64)
    vendor = models.CharField(max_length=100)
    day = models.DateField()
    reads = models.BigIntegerField(default=0)
    first_read_at = models.DateTimeField()

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["grant_id", "vendor", "day"], name="ledger_late_read_once"),
        ]
        indexes: ClassVar[list[models.Index]] = [models.Index(fields=["day"], name="ledger_late_read_day")]

    def __str__(self) -> str:
        return f"{self.reads} late reads under {self.grant_id} on {self.day}"


class LedgerSummaryRebuild(models.Model):
    """A request to rebuild the summaries from the entries, taken up by the next seal.

    Added by the migration that introduced the summaries on a ledger that already had entries,
    and by `seal_ledger --rebuild-summaries`; while one is pending the pages that read the
    summaries say so instead of showing partial counts.
    """

    requested_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=120)

    def __str__(self) -> str:
        return f"summary rebuild requested at {self.requested_at:%Y-%m-%d %H:%M}"
