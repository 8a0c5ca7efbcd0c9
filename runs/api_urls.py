from django.urls import path

from budgets import api as budgets_api
from runs import api

urlpatterns = [
    path("spend", budgets_api.spend, name="api_spend"),
    path("runs", api.runs_collection, name="api_runs"),
    path("runs/<str:run_id>", api.runs_detail, name="api_runs_detail"),
    path("runs/<str:run_id>/cancel", api.runs_cancel, name="api_runs_cancel"),
    path("runs/<str:run_id>/pause", api.runs_pause, name="api_runs_pause"),
    path("runs/<str:run_id>/resume", api.runs_resume, name="api_runs_resume"),
    path("runs/<str:run_id>/events", api.runs_events, name="api_runs_events"),
    path("runs/<str:run_id>/messages", api.runs_messages, name="api_runs_messages"),
]
