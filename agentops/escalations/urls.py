from django.urls import path

from agentops.escalations import views as views

app_name = "escalations"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("history/", views.history, name="history"),
    path("bulk-reject/", views.bulk_reject, name="bulk_reject"),
    path("<str:escalation_id>/", views.detail, name="detail"),
    path("<str:escalation_id>/decide/", views.decide, name="decide"),
    path("<str:escalation_id>/run/", views.run_progress, name="run_progress"),
    path("<str:escalation_id>/expire/", views.expire_now, name="expire"),
]
