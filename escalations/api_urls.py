from django.urls import path

from escalations import api as api

urlpatterns = [
    path("escalations", api.escalations_list, name="api_escalations_list"),
    path("escalations/<str:escalation_id>", api.escalations_detail, name="api_escalations_detail"),
    path("escalations/<str:escalation_id>/decide", api.escalations_decide, name="api_escalations_decide"),
]
