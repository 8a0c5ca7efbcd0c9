from django.urls import path

from agentops.memory import views

app_name = "memory"

urlpatterns = [
    path("", views.fact_list, name="list"),
    path("erase/", views.subject_erase, name="erase"),
    path("facts/<str:fact_id>/", views.fact_detail, name="detail"),
    path("facts/<str:fact_id>/delete/", views.fact_delete, name="delete"),
]
