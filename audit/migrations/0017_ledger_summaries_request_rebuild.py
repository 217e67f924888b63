"""Ask the next seal to build the summaries of a ledger that already has entries.

The summaries (LedgerGrant, LedgerVendorDay, LedgerLateRead) start empty; on a ledger with
entries they would be wrong until built. The sealer builds them from the entries at its next run,
under its lock, and until then the pages that read them say so. An empty ledger needs nothing:
ledger_append and the sealer keep the summaries from the first entry on.
"""

from django.db import migrations


def request_rebuild(apps, schema_editor):
    if apps.get_model("audit", "LedgerEntry").objects.exists():
        apps.get_model("audit", "LedgerSummaryRebuild").objects.create(reason="summaries introduced")


def forget_requests(apps, schema_editor):
    apps.get_model("audit", "LedgerSummaryRebuild").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("audit", "0016_ledger_summaries")]

    operations = [migrations.RunPython(request_rebuild, forget_requests)]
