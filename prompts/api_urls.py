from django.urls import path

from prompts import api

urlpatterns = [
    path("prompts", api.prompts_list, name="api_prompts_list"),
    path("prompts/<str:prompt_name>", api.prompts_get, name="api_prompts_get"),
    path("prompts/<str:prompt_name>/versions", api.prompts_version_create, name="api_prompts_versions"),
    path("prompts/<str:prompt_name>/labels/<str:label>", api.prompts_label_move, name="api_prompts_label"),
]
