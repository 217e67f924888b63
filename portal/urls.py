from django.urls import path

from portal import inboxviews, keyviews, twofactorviews, views

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("activity/", views.activity, name="activity"),
    path("activity/<int:entry_id>/proof/", views.activity_proof, name="activity-proof"),
    path("inbox/", inboxviews.inbox, name="inbox"),
    path("inbox/read-all/", inboxviews.inbox_read_all, name="inbox-read-all"),
    path("inbox/reminders/<str:reminder_id>/", inboxviews.inbox_reminder, name="inbox-reminder"),
    path("inbox/alerts/<str:alert_id>/", inboxviews.inbox_alert, name="inbox-alert"),
    path("alerts/", views.alerts, name="alerts"),
    path("alerts/<str:alert_id>/contact/", views.alert_contact, name="alert-contact"),
    path("data/preferences/", views.preferences, name="preferences"),
    path("data/import/", views.data_import, name="data-import"),
    path("data/import/<str:pending_id>/confirm/", views.data_import_confirm, name="data-import-confirm"),
    path("data/export/", views.data_export, name="data-export"),
    path("account/delete/", views.account_delete_view, name="account-delete"),
    path("account/two-factor/", twofactorviews.two_factor, name="two-factor"),
    path("account/two-factor/setup/", twofactorviews.two_factor_setup, name="two-factor-setup"),
    path(
        "account/two-factor/backup-codes/",
        twofactorviews.two_factor_backup_codes,
        name="two-factor-backup-codes",
    ),
    path("account/two-factor/turn-off/", twofactorviews.two_factor_disable_view, name="two-factor-disable"),
    path("account/unlock/", keyviews.store_unlock, name="store-unlock"),
    path("account/unlock/start-empty/", keyviews.store_start_empty, name="store-start-empty"),
    path("account/earlier-records/", keyviews.store_restore, name="store-restore"),
    path("data/<str:category>/", views.data_list, name="data-list"),
    path("data/<str:category>/add/", views.data_add, name="data-add"),
    path("data/<str:category>/<str:record_id>/edit/", views.data_edit, name="data-edit"),
    path("data/<str:category>/<str:record_id>/delete/", views.data_delete, name="data-delete"),
    path("data/<str:category>/<str:record_id>/toggle/<str:flag>/", views.data_toggle, name="data-toggle"),
]
