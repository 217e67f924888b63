from django.urls import path

from personal_data import views

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("activity/", views.activity, name="activity"),
]
