from django.urls import path

from evals import api

urlpatterns = [
    path("eval-runs", api.eval_runs_collection, name="api_eval_runs"),
    path("eval-runs/<str:eval_run_id>", api.eval_runs_detail, name="api_eval_runs_detail"),
]
