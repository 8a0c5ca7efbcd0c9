from django.urls import path

from agentops.evals import views

app_name = "evals"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("runs/", views.runs_list, name="runs"),
    path("runs/<str:eval_run_id>/", views.run, name="run"),
    path("compare/", views.compare, name="compare"),
    path("suites/<str:suite_id>/", views.suite, name="suite"),
    path("suites/<str:suite_id>/export.jsonl", views.suite_export, name="export"),
    path("cases/<str:case_id>/", views.case, name="case"),
    path("add-run/<str:run_id>/", views.add_run, name="add_run"),
    path("alerts/<str:alert_id>/ack/", views.alert_ack, name="alert_ack"),
]
