from django.urls import path

from portal import grants as views
from portal import reportviews

app_name = "consent"
urlpatterns = [
    path("", views.grant_list, name="grants"),
    path("<str:grant_id>/", views.grant_detail, name="grant"),
    path("<str:grant_id>/revoke/", views.grant_revoke_view, name="revoke"),
    path("<str:grant_id>/agreement.json", views.agreement_download, name="agreement"),
    path("<str:grant_id>/messages/", views.grant_messages_view, name="messages"),
    path("<str:grant_id>/report/", reportviews.grant_report, name="report"),
    path("<str:grant_id>/receipts/<int:number>/", views.receipt_page, name="receipt-page"),
    path("<str:grant_id>/receipts/<int:number>.json", views.receipt_download, name="receipt"),
]
