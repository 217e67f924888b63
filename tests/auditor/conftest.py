"""The auditor's pages read the ledger: they share the ledger suite's fixtures."""

from tests.audit.conftest import committed_ledger, triggers_off  # noqa: F401
