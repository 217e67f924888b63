from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views

admin.site.site_header = "vrm operations"
admin.site.site_title = "vrm operations"

urlpatterns = [
    path("", account_views.home, name="home"),
    path("accounts/", include("accounts.urls")),
    path("", include("personal_data.urls")),
    path("vendor/", include("vendors.urls")),
    path("audit/", include("audit.urls")),
    path("admin/", admin.site.urls),
]
