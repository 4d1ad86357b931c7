from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from sealbox.accounts.models import Organisation, Plan, User


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "max_send_bytes",
        "max_retention_days",
        "messages_per_month",
        "default_seats",
    )


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "plan", "seats", "renewal_date", "require_2fa")
    search_fields = ("name", "slug")


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("email",)
    list_display = ("email", "organisation", "role", "is_active", "last_login")
    list_filter = ("role", "is_active", "organisation")
    search_fields = ("email", "first_name", "last_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (
            "Profile",
            {
                "fields": (
                    "first_name",
                    "last_name",
                    "mobile_phone",
                    "sms_country",
                    "time_zone",
                    "language",
                    "date_format",
                )
            },
        ),
        ("Organisation", {"fields": ("organisation", "role", "is_active")}),
        ("Operator", {"fields": ("is_staff", "is_superuser")}),
    )
    add_fieldsets = ((None, {"fields": ("email", "organisation", "password1", "password2")}),)
