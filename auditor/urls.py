from django.urls import path

from auditor import views

app_name = "audit"

urlpatterns = [
    path("", views.portal, name="portal"),
    path("reports/<str:token>.jws", views.report_download, name="report"),
    path("grants/", views.grants, name="grants"),
    path("grants/export.csv", views.grants_export, {"fmt": "csv"}, name="grants-csv"),
    path("grants/export.json", views.grants_export, {"fmt": "json"}, name="grants-json"),
    # Grant ids are ledger ids, which may hold a '/'.
    path("grants/<path:grant_id>/", views.grant_detail, name="grant"),
    path("activity/", views.activity, name="activity"),
    path("activity/export.csv", views.activity_export, {"fmt": "csv"}, name="activity-csv"),
    path("activity/export.json", views.activity_export, {"fmt": "json"}, name="activity-json"),
    path("entries/", views.entries, name="entries"),
    path("intents/", views.intents, name="intents"),
    path("vendors/", views.vendors, name="vendors"),
    path("vendors/<str:organisation_id>/", views.vendor_detail, name="vendor"),
    path("vendors/<str:organisation_id>/cases/<str:case_id>/", views.vendor_case, name="vendor-case"),
    path("witnesses/", views.witnesses, name="witnesses"),
    path("witnesses/retire/", views.witness_retire_confirm, name="witness-retire"),
    path("alarms/", views.alarms, name="alarms"),
    path("entries/export.csv", views.entries_export, {"fmt": "csv"}, name="entries-csv"),
    path("entries/export.json", views.entries_export, {"fmt": "json"}, name="entries-json"),
]
