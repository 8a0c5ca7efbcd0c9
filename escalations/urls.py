from django.urls import path

from escalations import views as views

app_name = "escalations"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("history/", views.history, name="history"),
    path("<str:escalation_id>/", views.detail, name="detail"),
    path("<str:escalation_id>/decide/", views.decide, name="decide"),
    path("<str:escalation_id>/run/", views.run_progress, name="run_progress"),
]
