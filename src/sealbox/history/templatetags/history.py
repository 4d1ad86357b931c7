from django import template

from sealbox.history.services import activity_label

register = template.Library()


@register.filter
def activity(action: str) -> str:
    return activity_label(action)
