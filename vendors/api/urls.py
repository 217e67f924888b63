from django.urls import path

from vendors.api import intents as intents_api
from vendors.api import messages as messages_api
from vendors.api import recalls as recalls_api
from vendors.api import views as api

urlpatterns = [
    path("me", api.MeView.as_view(), name="api-me"),
    path("receipts", api.ReceiptsView.as_view(), name="api-receipts"),
    path("agreement", api.AgreementView.as_view(), name="api-agreement"),
    path("agreement/accept", api.AgreementAcceptView.as_view(), name="api-agreement-accept"),
    path("purchases", api.PurchaseList.as_view(), name="api-purchases"),
    path("purchases/owns", api.PurchasesOwnsView.as_view(), name="api-purchases-owns"),
    path("purchases/<str:record_id>", api.PurchaseDetail.as_view(), name="api-purchase"),
    path("closet", api.ClosetList.as_view(), name="api-closet"),
    path("closet/<str:record_id>", api.ClosetDetail.as_view(), name="api-closet-item"),
    path("appliances", api.ApplianceList.as_view(), name="api-appliances"),
    path("appliances/<str:record_id>", api.ApplianceDetail.as_view(), name="api-appliance"),
    path("prescriptions", api.PrescriptionList.as_view(), name="api-prescriptions"),
    path("prescriptions/<str:record_id>", api.PrescriptionDetail.as_view(), name="api-prescription"),
    path("preferences", api.PreferencesView.as_view(), name="api-preferences"),
    path("messages", messages_api.MessageCreate.as_view(), name="api-messages"),
    path("messages/<str:message_id>", messages_api.MessageDetail.as_view(), name="api-message"),
    path("recalls", recalls_api.RecallCreate.as_view(), name="api-recalls"),
    path("recalls/<str:recall_id>", recalls_api.RecallDetail.as_view(), name="api-recall"),
    path("intents", intents_api.IntentList.as_view(), name="api-intents"),
    path("intents/<str:intent_id>", intents_api.IntentDetail.as_view(), name="api-intent"),
    path("intents/<str:intent_id>/offers", intents_api.OfferCreate.as_view(), name="api-intent-offers"),
    path(
        "intents/<str:intent_id>/offers/<str:offer_id>",
        intents_api.OfferDetail.as_view(),
        name="api-intent-offer",
    ),
]
