from django.urls import path

from runs import mcp_views, views

app_name = "runs"

urlpatterns = [
    path("runs/", views.run_list, name="list"),
    path("runs/new/", views.run_new, name="new"),
    path("runs/<str:run_id>/", views.run_detail, name="detail"),
    path("runs/<str:run_id>/live/", views.run_detail, {"live": True}, name="detail_live"),
    path("runs/<str:run_id>/log/", views.run_log_earlier, name="log_earlier"),
    path("runs/<str:run_id>/cancel/", views.run_cancel, name="cancel"),
    path("runs/<str:run_id>/pause/", views.run_pause, name="pause"),
    path("runs/<str:run_id>/resume/", views.run_resume, name="resume"),
    path("agents/", views.agent_list, name="agents"),
    path("agents/new/", views.agent_new, name="agent_new"),
    path("agents/kill-switch/", views.tenant_killswitch, name="tenant_killswitch"),
    path("agents/<str:agent_id>/", views.agent_edit, name="agent_edit"),
    path("agents/<str:agent_id>/kill-switch/", views.agent_killswitch, name="agent_killswitch"),
    path("grants/", views.grant_list, name="grants"),
    path("grants/<str:grant_id>/revoke/", views.grant_revoke, name="grant_revoke"),
    path("mcp/", mcp_views.server_list, name="mcp_servers"),
    path("mcp/<str:server_id>/", mcp_views.server_detail, name="mcp_server"),
    path("mcp/<str:server_id>/refresh/", mcp_views.server_refresh, name="mcp_server_refresh"),
    path("mcp/<str:server_id>/enable/", mcp_views.server_enable, name="mcp_server_enable"),
    path("mcp/<str:server_id>/tools/<str:tool_id>/", mcp_views.tool_update, name="mcp_tool_update"),
]
