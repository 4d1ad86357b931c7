from django.contrib import admin

from sealbox.audit.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "chain", "seq", "action", "actor_label", "ip")
    list_filter = ("action",)
    search_fields = ("actor_label", "action", "target_id")

    # The log is append-only: the admin may read it, never change it.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
