"""Operator views (Django admin). Code hashes are never shown."""

from django.contrib import admin

from sealbox.twofactor.models import FactorLock, PendingLogin, RecoveryCodeDevice, SMSDevice


@admin.register(SMSDevice)
class SMSDeviceAdmin(admin.ModelAdmin):
    list_display = ("user", "number", "confirmed", "last_used_at")
    list_filter = ("confirmed",)
    search_fields = ("user__email",)
    fields = ("user", "name", "number", "confirmed")
    raw_id_fields = ("user",)


@admin.register(RecoveryCodeDevice)
class RecoveryCodeDeviceAdmin(admin.ModelAdmin):
    list_display = ("user", "created_at", "remaining")
    search_fields = ("user__email",)
    fields = ("user", "name", "created_at")
    readonly_fields = ("user", "name", "created_at")


@admin.register(FactorLock)
class FactorLockAdmin(admin.ModelAdmin):
    list_display = ("user", "factor", "failures", "locked_at", "last_used_at")
    list_filter = ("factor",)
    search_fields = ("user__email",)
    raw_id_fields = ("user",)


@admin.register(PendingLogin)
class PendingLoginAdmin(admin.ModelAdmin):
    list_display = ("user", "created_at", "expires_at", "completed_at", "method", "ip")
    search_fields = ("user__email",)
    fields = ("user", "created_at", "expires_at", "completed_at", "method", "ip", "failures")
    readonly_fields = fields
