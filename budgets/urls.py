from django.urls import path

from budgets import views

app_name = "budgets"

urlpatterns = [
    path("", views.spend, name="spend"),
    path("export.csv", views.export, name="export"),
    path("caps/", views.caps, name="caps"),
    path("estimates/", views.estimates, name="estimates"),
]
