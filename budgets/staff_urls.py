"""Platform-wide budget pages for staff (outside /t/<slug>/, guarded by staff_member_required)."""

from django.urls import path

from budgets import views

app_name = "budgets_staff"

urlpatterns = [
    path("spend/", views.staff_spend, name="spend"),
]
