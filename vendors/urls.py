from django.urls import path

from vendors import views

app_name = "vendors"
urlpatterns = [
    path("", views.portal, name="portal"),
    path("signup/", views.signup, name="signup"),
    path("signup/sent/", views.signup_sent, name="signup_sent"),
    path("signup/confirm/<str:token>/", views.signup_confirm, name="signup_confirm"),
    path("organisation/new/", views.organisation_create, name="organisation_create"),
    path("terms/", views.terms_accept, name="terms"),
    path("apps/new/", views.application_create, name="application_create"),
    path("apps/<str:client_id>/", views.application_detail, name="application"),
    path("recalls/new/", views.recall_create, name="recall_create"),
    path("intents/", views.intent_settings, name="intents"),
    path("intents/webhooks/<str:client_id>/", views.intent_webhook, name="intent_webhook"),
    path("apps/<str:client_id>/secret/", views.application_secret_reset, name="application_secret_reset"),
    path("apps/<str:client_id>/secret/new/", views.application_secret, name="application_secret"),
]
