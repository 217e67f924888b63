from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import views
from accounts.forms import LoginForm

urlpatterns = [
    path("confirm/", views.reauth, name="reauth"),
    path(
        "login/",
        auth_views.LoginView.as_view(authentication_form=LoginForm, redirect_authenticated_user=True),
        name="login",
    ),
    # Before Django's own, which it replaces: the old password is counted (accounts/limits.py).
    path("password_change/", views.PasswordChangeView.as_view(), name="password_change"),
    # The site's page, not the admin's that Django's view renders by default.
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="registration/account_password_change_done.html"
        ),
        name="password_change_done",
    ),
    path("", include("django.contrib.auth.urls")),
]
