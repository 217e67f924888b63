"""Let a ledger tile only grow: no DELETE, no TRUNCATE of a table with rows, and an UPDATE only
when the new hashes start with the old ones (the sealer extends the right-edge tile).

As with migration 0002, a superuser or the table's owner can switch the triggers off; the tiles
are checked against the leaves by verify_ledger and every proof from them against a signed root.
"""

from django.db import migrations

PG_UP = """
CREATE FUNCTION audit_ledger_tile_grow_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.id <> OLD.id OR NEW.level <> OLD.level
            OR NEW.tile_index <> OLD.tile_index
            OR length(NEW.hashes) < length(OLD.hashes)
            OR substring(NEW.hashes FROM 1 FOR length(OLD.hashes)) <> OLD.hashes THEN
        RAISE EXCEPTION 'the ledger is append-only: % on % refused (a tile may only grow)',
            TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER audit_ledgertile_grow_only BEFORE UPDATE OR DELETE ON audit_ledgertile
    FOR EACH ROW EXECUTE FUNCTION audit_ledger_tile_grow_only();
CREATE TRIGGER audit_ledgertile_no_truncate BEFORE TRUNCATE ON audit_ledgertile
    FOR EACH STATEMENT EXECUTE FUNCTION audit_ledger_refuse_truncate();
"""

PG_DOWN = """
DROP TRIGGER IF EXISTS audit_ledgertile_grow_only ON audit_ledgertile;
DROP TRIGGER IF EXISTS audit_ledgertile_no_truncate ON audit_ledgertile;
DROP FUNCTION IF EXISTS audit_ledger_tile_grow_only();
"""

SQLITE_UP = (
    """CREATE TRIGGER audit_ledgertile_no_delete BEFORE DELETE ON audit_ledgertile
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: DELETE on audit_ledgertile refused'); END;""",
    """CREATE TRIGGER audit_ledgertile_grow_only BEFORE UPDATE ON audit_ledgertile
WHEN NEW.id <> OLD.id OR NEW.level <> OLD.level OR NEW.tile_index <> OLD.tile_index
    OR length(NEW.hashes) < length(OLD.hashes)
    OR substr(NEW.hashes, 1, length(OLD.hashes)) <> OLD.hashes
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: UPDATE on audit_ledgertile refused (a tile may only grow)'); END;""",
)

SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS audit_ledgertile_no_delete;",
    "DROP TRIGGER IF EXISTS audit_ledgertile_grow_only;",
)


def _run(schema_editor, statements):
    # params=None: the SQL holds '%' (RAISE) that must not be read as placeholders.
    for statement in statements:
        schema_editor.execute(statement, params=None)


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, [PG_UP])
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE_UP)
    else:
        raise NotImplementedError(f"no append-only triggers for database vendor {vendor!r}")


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, [PG_DOWN])
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE_DOWN)


class Migration(migrations.Migration):
    dependencies = [("audit", "0012_ledger_tiles")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
