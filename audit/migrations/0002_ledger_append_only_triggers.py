"""Make the ledger tables append-only in the database itself.

PostgreSQL: row triggers refuse UPDATE and DELETE; a statement trigger refuses TRUNCATE of a
table that holds rows (truncating an empty table changes nothing, and Django's test flush
truncates every table after each transactional test). SQLite: triggers refuse UPDATE and DELETE.
A superuser or the tables' owner can still disable the triggers; the signed Merkle checkpoints
are what make such edits detectable (docs/ledger.md).
"""

from django.db import migrations

TABLES = ("audit_ledgerentry", "audit_ledgerleaf", "audit_ledgercheckpoint")

PG_FUNCTIONS = """
CREATE FUNCTION audit_ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE FUNCTION audit_ledger_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    has_rows boolean;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I)', TG_TABLE_SCHEMA, TG_TABLE_NAME)
        INTO has_rows;
    IF has_rows THEN
        RAISE EXCEPTION 'the ledger is append-only: TRUNCATE on % refused', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;
"""

PG_TABLE = """
CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION audit_ledger_refuse_change();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_ledger_refuse_truncate();
"""

PG_DROP = """
DROP FUNCTION IF EXISTS audit_ledger_refuse_change() CASCADE;
DROP FUNCTION IF EXISTS audit_ledger_refuse_truncate() CASCADE;
"""

SQLITE_TABLE = """
CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: UPDATE on {table} refused'); END;
CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: DELETE on {table} refused'); END;
"""

SQLITE_DROP = """
DROP TRIGGER IF EXISTS {table}_no_update;
DROP TRIGGER IF EXISTS {table}_no_delete;
"""


def _run(schema_editor, statements):
    # params=None: the SQL holds '%' (format(), RAISE) that must not be read as placeholders.
    for statement in statements:
        schema_editor.execute(statement, params=None)


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, [PG_FUNCTIONS, *(PG_TABLE.format(table=t) for t in TABLES)])
    elif vendor == "sqlite":
        # The sqlite3 module runs one statement per execute(); the trigger bodies hold a ';'.
        for table in TABLES:
            for statement in SQLITE_TABLE.format(table=table).strip().split("END;"):
                if statement.strip():
                    _run(schema_editor, [statement.strip() + " END;"])
    else:
        raise NotImplementedError(f"no append-only triggers for database vendor {vendor!r}")


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, [PG_DROP])
    elif vendor == "sqlite":
        for table in TABLES:
            _run(schema_editor, SQLITE_DROP.format(table=table).strip().splitlines())


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_ledger"),
    ]

    operations = [
        migrations.RunPython(create_triggers, drop_triggers, elidable=False),
    ]
