import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from personal_data.selectors import key_status


class Command(BaseCommand):
    help = (
        "Report who holds which key: how many people hold their own key and how many are still "
        "wrapped by a master key (they move at their next sign-in), how many grant keys are live, "
        "per master key, how many records wait for their person to sign in, and how many stores are "
        "set aside after a reset. Reads no content."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print the figures as one JSON object"
        )

    def handle(self, *args: Any, as_json: bool = False, **options: Any) -> None:
        status = key_status()
        if as_json:
            self.stdout.write(json.dumps(status, indent=2, sort_keys=True))
            return
        self.stdout.write(
            f"People: {status['people']}; {status['people_holding_their_key']} hold their own key, "
            f"{status['people_wrapped_by_master_key']} still wrapped by a master key "
            f"(moved at their next sign-in), {status['people_without_key']} without a key."
        )
        self.stdout.write(
            f"Grant keys live: {status['grant_keys_live']} "
            f"({status['grant_keys_unfilled']} waiting for their person to sign in to be filled)."
        )
        self.stdout.write(
            f"Records awaiting rewrap: {status['records_awaiting_rewrap']} "
            f"(of {status['people_with_records_awaiting_rewrap']} people), sealed to their person's "
            "public key until they sign in."
        )
        if status["stores_set_aside"]:
            self.stdout.write(
                f"Stores set aside after a reset without the recovery code: {status['stores_set_aside']} "
                f"({status['records_set_aside']} records, locked); the next is destroyed at "
                f"{status['next_destruction']} by destroy_retired_stores."
            )
        for key_id, entry in status["master_keys"].items():
            flags = (("newest", entry["newest"]), ("NOT IN THE KEY RING", not entry["in_ring"]))
            notes = ", ".join(name for name, on in flags if on)
            self.stdout.write(
                f"Master key {key_id}{f' ({notes})' if notes else ''}: {entry['grant_keys']} grant keys, "
                f"{entry['people']} people's keys."
            )
