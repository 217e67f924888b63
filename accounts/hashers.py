"""The password hasher: Argon2id at the same cost as the key a person's password wraps.

A person's password is checked by this hash and, at the same sign-in, derives the key that opens
their store (personal_data.keys, Argon2id at VRM_KDF_MEMORY_KIB and VRM_KDF_ITERATIONS). Both sit
in the same database, so an offline guesser attacks whichever is cheaper: a costlier hash would
add sign-in time without adding protection. Both use one lane (the server answers many sign-ins
at once; lanes only split one computation across cores). Hashes made with Django's defaults
still verify, and are rehashed at this cost at the next sign-in.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher


class VrmArgon2PasswordHasher(Argon2PasswordHasher):
    algorithm = "argon2"  # Django's own prefix: existing hashes verify and are upgraded
    parallelism = 1

    def __init__(self) -> None:
        self.time_cost = int(settings.VRM_KDF_ITERATIONS)
        self.memory_cost = int(settings.VRM_KDF_MEMORY_KIB)
