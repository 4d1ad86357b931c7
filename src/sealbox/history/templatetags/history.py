from django import template

from sealbox.history.services import activity_label, event_label

register = template.Library()


@register.filter
def activity(action: str) -> str:
    return activity_label(action)


@register.filter
def event_activity(event) -> str:
    """The event's activity, with the address of the email it is about (if any)."""
    return event_label(event)
