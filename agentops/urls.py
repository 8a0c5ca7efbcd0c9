from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from agentops import health, staff
from agentops.api import api
from tenants import views as tenant_views

tenant_patterns = [
    path("", include("tenants.urls")),
    path("", include("runs.urls")),
    path("escalations/", include("agentops.escalations.urls")),
    path("spend/", include("budgets.urls")),
    path("prompts/", include("agentops.prompts.urls")),
    path("evals/", include("agentops.evals.urls")),
    path("memory/journal/", include("agentops.memory.journal_urls")),
    path("memory/", include("agentops.memory.urls")),
]

urlpatterns = [
    path("", tenant_views.index, name="index"),
    path("login/", auth_views.LoginView.as_view(template_name="registration/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("invite/accept/", tenant_views.invitation_accept, name="invitation_accept"),
    path("invite/<str:token>/", tenant_views.invitation_open, name="invitation_open"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("staff/", staff.home, name="staff_home"),
    path("staff/budgets/", include("budgets.staff_urls")),
    path("t/<slug:slug>/", include(tenant_patterns)),
    # The JSON API on django-ninja (agentops/api.py), with its public openapi.json and docs page.
    path("api/v1/", api.urls),
]

# Outages anywhere in the middleware stack answer 503 (JSON on the API); see agentops/outage.py.
handler500 = "agentops.outage.server_error"
# The console's 400/403/404 pages in its layout (JSON under /api/); see agentops/errors.py.
handler400 = "agentops.errors.bad_request"
handler403 = "agentops.errors.permission_denied"
handler404 = "agentops.errors.page_not_found"
