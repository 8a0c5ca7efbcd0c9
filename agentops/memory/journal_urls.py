from django.urls import path

from agentops.memory import journal_views as views

app_name = "memory_journal"

urlpatterns = [
    path("", views.journal_index, name="index"),
    path("agents/<str:agent_id>/", views.journal_agent, name="agent"),
    path("entries/<str:failure_id>/clear/", views.journal_clear, name="clear"),
]
