"""The user model: e-mail as the login name, one role per account."""

from __future__ import annotations

import string
import unicodedata
import uuid
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def email_key(value: str) -> str:
    """The spelling an account is stored, looked up and counted under.

    NFKC (as Django's login form already applies to what is typed: `ſ` is `s`, the Kelvin sign
    `K`), trimmed, then ASCII letters lower-cased; other letters are never case-mapped.
    Accounts are found by exact match on this key, never by the database's case-insensitive
    match: PostgreSQL's UPPER() maps the dotless `ı` to `I`, so `alıce@…` reached alice under
    a spelling the lockout counted apart. Login lockout keys on this same function, so every
    spelling that reaches an account shares that account's count.
    """
    return unicodedata.normalize("NFKC", value).strip().translate(_ASCII_LOWER)


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=email_key(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True, role=User.Role.OPERATOR)
        return self._create(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email=email_key(username or ""))

    def with_email(self, email: str) -> models.QuerySet[User]:
        """The account (at most one) this address reaches, as a login would find it."""
        return self.filter(email=email_key(email))


class User(AbstractBaseUser, PermissionsMixin):
    """An account. People hold data; vendor staff, auditors and operators never do."""

    class Role(models.TextChoices):
        PERSON = "person", "Person"
        VENDOR_STAFF = "vendor_staff", "Vendor staff"
        AUDITOR = "auditor", "Auditor"
        OPERATOR = "operator", "Operator"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField("e-mail address", unique=True, max_length=254)
    display_name = models.CharField(max_length=100, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.PERSON)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering: ClassVar[list[str]] = ["email"]

    def __str__(self) -> str:
        return self.email

    @property
    def is_person(self) -> bool:
        return self.role == self.Role.PERSON

    @property
    def is_vendor_staff(self) -> bool:
        return self.role == self.Role.VENDOR_STAFF

    @property
    def is_auditor(self) -> bool:
        return self.role == self.Role.AUDITOR

    @property
    def is_operator(self) -> bool:
        return self.is_staff
