from django.urls import path

from tenants import views

urlpatterns = [
    path("", views.home, name="home"),
    path("members/", views.members, name="members"),
    path("members/<str:member_id>/role/", views.member_role, name="member_role"),
    path("members/<str:member_id>/remove/", views.member_remove, name="member_remove"),
    path("invitations/<str:invitation_id>/resend/", views.invitation_resend, name="invitation_resend"),
    path("invitations/<str:invitation_id>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path("api-keys/", views.api_keys, name="api_keys"),
    path("api-keys/<str:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("settings/webhooks/", views.webhooks, name="webhooks"),
    path("settings/webhooks/<str:endpoint_id>/rotate/", views.webhook_rotate, name="webhook_rotate"),
    path("settings/webhooks/<str:endpoint_id>/delete/", views.webhook_delete, name="webhook_delete"),
    path("audit/", views.audit_log, name="audit_log"),
    path("profile/", views.profile, name="profile"),
]
