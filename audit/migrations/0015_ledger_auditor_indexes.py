"""Indexes for the auditor's filters at millions of entries; drop the single-column ones they cover.

`subject` and `grant_id` lose `db_index=True`: ledger_subject_newest and ledger_grant_oldest lead
with those columns, so they answer every lookup the single-column indexes (and PostgreSQL's
`_like` twins, which no query uses) did, and every append maintains four indexes fewer. The
indexes are dropped by name rather than by AlterField, which on SQLite would rebuild the table
and lose its append-only triggers. docs/performance.md, "Auditor pages at 10M entries", says
what each new index serves.
"""

from django.db import migrations, models

ACCESS_KINDS = ["access.read", "access.write", "access.check", "access.denied"]
GRANT_KINDS = ["grant.created", "grant.amended", "grant.revoked", "grant.expired"]
# The names Django gave the single-column indexes (and, on PostgreSQL, their LIKE twins).
OLD_INDEXES = {
    "subject": "audit_ledgerentry_subject_9d9f35e7",
    "grant_id": "audit_ledgerentry_grant_id_325f83c1",
}


def drop_single_column_indexes(apps, schema_editor):
    for name in OLD_INDEXES.values():
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}_like")


def create_single_column_indexes(apps, schema_editor):
    for column, name in OLD_INDEXES.items():
        schema_editor.execute(f"CREATE INDEX {name} ON audit_ledgerentry ({column})")
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(
                f"CREATE INDEX {name}_like ON audit_ledgerentry ({column} varchar_pattern_ops)"
            )


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0014_witnesses"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="ledgerentry",
                    name="grant_id",
                    field=models.CharField(blank=True, max_length=64),
                ),
                migrations.AlterField(
                    model_name="ledgerentry",
                    name="subject",
                    field=models.CharField(blank=True, max_length=64),
                ),
            ],
            database_operations=[
                migrations.RunPython(drop_single_column_indexes, create_single_column_indexes),
            ],
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(fields=["kind", "-created_at", "-id"], name="ledger_kind_newest"),
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(fields=["actor_id", "-created_at", "-id"], name="ledger_actor_newest"),
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(
                condition=models.Q(("outcome", "denied")),
                fields=["-created_at", "-id"],
                name="ledger_denied_newest",
            ),
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(fields=["grant_id", "created_at", "id"], name="ledger_grant_oldest"),
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(
                condition=models.Q(("kind__in", ACCESS_KINDS), _negated=True),
                fields=["grant_id", "created_at", "id"],
                include=("kind",),
                name="ledger_grant_events",
            ),
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(
                condition=models.Q(("kind__in", GRANT_KINDS)),
                fields=["kind", "-created_at", "-id"],
                include=("grant_id", "actor_id", "actor_type", "subject"),
                name="ledger_grant_kinds",
            ),
        ),
    ]
