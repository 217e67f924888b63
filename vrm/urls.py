from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import views as account_views
from audit import api as ledger_api
from consent import oauth_views
from portal import keyviews
from portal import views as portal_views
from vrm import docs

admin.site.site_header = "vrm operations"
admin.site.site_title = "vrm operations"

urlpatterns = [
    path("", account_views.home, name="home"),
    path("accounts/signup/", portal_views.signup, name="signup"),
    path("accounts/signup/sent/", portal_views.signup_sent, name="signup-sent"),
    path("accounts/signup/confirm/<str:token>/", portal_views.signup_confirm, name="signup-confirm"),
    # A person's sign-in also opens their store (portal/keyviews.py).
    path("accounts/login/", keyviews.PersonLoginView.as_view(), name="login"),
    path("accounts/login/code/", keyviews.sign_in_code, name="login-code"),
    path("accounts/password_change/", keyviews.PersonPasswordChangeView.as_view(), name="password_change"),
    # A person's reset also asks for the recovery code, without which the store stays locked.
    path(
        "accounts/reset/<uidb64>/<token>/",
        keyviews.PersonPasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("accounts/", include("accounts.urls")),
    path("", include("portal.urls")),
    path("vendor/", include("vendors.urls")),
    path("audit/", include("auditor.urls")),
    path("grants/", include("portal.grant_urls")),
    # OAuth 2 (INTERFACES.md §4). DOT's own management pages and registration are not mounted.
    path("o/authorize/", oauth_views.AuthorizeView.as_view(), name="oauth-authorize"),
    path("o/token/", oauth_views.RateLimitedTokenView.as_view(), name="oauth-token"),
    path("o/revoke_token/", oauth_views.AtomicRevokeTokenView.as_view(), name="oauth-revoke"),
    path("o/introspect/", oauth_views.IntrospectView.as_view(), name="oauth-introspect"),
    path("api/v1/", include("vendors.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        csp_update({"style-src": ["'unsafe-inline'"], "img-src": ["data:"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
    # docs/*.md, readable on the site (vrm/docs.py).
    path("docs/", docs.docs_index, name="docs"),
    path("docs/<slug:name>/", docs.docs_page, name="docs-page"),
    path(".well-known/oauth-authorization-server", oauth_views.server_metadata, name="oauth-metadata"),
    # Before the admin's own, which it replaces: the old password is counted (accounts/limits.py).
    path(
        "admin/password_change/",
        admin.site.admin_view(account_views.admin_password_change),
        name="admin-password-change",
    ),
    # The admin signs in through the site's own login, so an operator's two-step sign-in, the
    # login limits and lockouts hold there too (the admin's LoginView knows none of them).
    path("admin/login/", keyviews.PersonLoginView.as_view(), name="admin-login"),
    path("admin/", admin.site.urls),
    # The public ledger endpoints (audit/api.py): no authentication, hashes only.
    path("api/v1/ledger/checkpoint", ledger_api.CheckpointView.as_view(), name="ledger-checkpoint"),
    path(
        "api/v1/ledger/proof/inclusion/<int:entry_id>",
        ledger_api.InclusionProofView.as_view(),
        name="ledger-proof-inclusion",
    ),
    path("api/v1/ledger/cosignatures", ledger_api.CosignaturesView.as_view(), name="ledger-cosignatures"),
    # C2SP tlog-tiles: the log prefix is VRM_ISSUER + "/ledger", its checkpoint is plain text.
    path("ledger/checkpoint", ledger_api.CheckpointTextView.as_view(), name="ledger-checkpoint-text"),
    path(
        "api/v1/ledger/proof/consistency",
        ledger_api.ConsistencyProofView.as_view(),
        name="ledger-proof-consistency",
    ),
]

handler404 = "core.problems.not_found"
handler500 = "core.problems.server_error"
