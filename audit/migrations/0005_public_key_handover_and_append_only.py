"""Store each signing key's handover signatures, and make the key history append-only.

A key after the first is trusted only through signatures (its predecessor's handover and its
own proof of possession), so rows need no protection to be verified; the triggers make the
history itself append-only, like the ledger tables (0002): no DELETE, no TRUNCATE of a table
that holds rows, and no UPDATE except setting retired_at once, leaving every other column as it
was (the rotation retires the old key that way). A superuser or the table's owner can still
switch the triggers off; verification does not depend on them (docs/ledger.md, "Signing keys").

The columns are added before the triggers: on SQLite a later change that rebuilds this table
drops its triggers, so such a migration must create them again.
"""

import django.db.models.deletion
from django.db import migrations, models

TABLE = "audit_ledgerpublickey"

# to_jsonb(row) - 'retired_at' compares every other column, including any added later.
PG_CREATE = f"""
CREATE FUNCTION audit_ledgerpublickey_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.retired_at IS NULL AND NEW.retired_at IS NOT NULL
            AND to_jsonb(NEW) - 'retired_at' = to_jsonb(OLD) - 'retired_at' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the key history is append-only: % on % refused (only setting retired_at once is allowed)',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER {TABLE}_no_change BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION audit_ledgerpublickey_refuse_change();
CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_ledger_refuse_truncate();
"""

PG_DROP = f"""
DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE};
DROP FUNCTION IF EXISTS audit_ledgerpublickey_refuse_change() CASCADE;
"""

SQLITE_CREATE = [
    f"""
CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE}
WHEN NOT (
    OLD.retired_at IS NULL AND NEW.retired_at IS NOT NULL
    AND NEW.id IS OLD.id AND NEW.public_key IS OLD.public_key AND NEW.kid IS OLD.kid
    AND NEW.created_at IS OLD.created_at AND NEW.predecessor_id IS OLD.predecessor_id
    AND NEW.handover_signature IS OLD.handover_signature
    AND NEW.possession_signature IS OLD.possession_signature
)
BEGIN SELECT RAISE(ABORT, 'the key history is append-only: UPDATE on {TABLE} refused (only setting retired_at once is allowed)'); END;
""",
    f"""
CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'the key history is append-only: DELETE on {TABLE} refused'); END;
""",
]

SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {TABLE}_no_update", f"DROP TRIGGER IF EXISTS {TABLE}_no_delete"]


def _run(schema_editor, statements):
    # params=None: the SQL holds '%' (RAISE) that must not be read as placeholders.
    for statement in statements:
        schema_editor.execute(statement.strip(), params=None)


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, [PG_CREATE])
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE_CREATE)
    else:
        raise NotImplementedError(f"no append-only triggers for database vendor {vendor!r}")


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, [PG_DROP])
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE_DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0004_checkpoint_key_id_and_public_key_history"),
    ]

    operations = [
        migrations.AddField(
            model_name="ledgerpublickey",
            name="handover_signature",
            field=models.BinaryField(max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="ledgerpublickey",
            name="possession_signature",
            field=models.BinaryField(max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="ledgerpublickey",
            name="predecessor",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="successors",
                to="audit.ledgerpublickey",
            ),
        ),
        migrations.RunPython(create_triggers, drop_triggers, elidable=False),
    ]
