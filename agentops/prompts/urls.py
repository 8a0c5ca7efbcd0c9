from django.urls import path

from agentops.prompts import views

app_name = "prompts"

# Prompt names start with a letter or digit, so "_policy" never collides with one.
urlpatterns = [
    path("", views.prompt_list, name="list"),
    path("_policy/", views.policy_edit, name="policy"),
    # Runs and traces know a version by id only (runs never imports prompts): this finds its page.
    path("_version/<str:version_id>/", views.version_by_id, name="by_id"),
    path("<str:prompt_name>/", views.prompt_detail, name="detail"),
    path("<str:prompt_name>/check/", views.version_check, name="check"),
    path("<str:prompt_name>/diff/", views.version_diff, name="diff"),
    path("<str:prompt_name>/v/<str:number>/", views.version_detail, name="version"),
    path("<str:prompt_name>/v/<str:number>/new/", views.version_new, name="version_new"),
    path("<str:prompt_name>/v/<str:number>/try/", views.version_try, name="try"),
    path("<str:prompt_name>/labels/<str:label>/", views.label_detail, name="label"),
    path("<str:prompt_name>/labels/<str:label>/rollback/", views.label_rollback, name="rollback"),
]
