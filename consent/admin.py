"""No credential in the admin: django-oauth-toolkit's token, code and id-token pages are removed.

DOT registers editable pages for them, from which an operator could mint an access token for
any grant and read a person's records through the API under the vendor's name. Operators see
token activity in the ledger instead (token.issued, token.refreshed, token.revoked).
"""

from django.contrib import admin
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

for credential in (
    get_access_token_model(),
    get_refresh_token_model(),
    get_grant_model(),
    get_id_token_model(),
):
    if admin.site.is_registered(credential):
        admin.site.unregister(credential)
