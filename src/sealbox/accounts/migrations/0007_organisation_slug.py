"""Organisation names unique whatever their letter case, and a slug for each organisation.

Two organisations whose names differ only in case (OrgA, ORGA) let operator commands act
on the wrong one. This migration refuses to run while such names exist, naming them, so
the operator decides which one to rename; it then gives every organisation a slug.
"""

from django.core.management.base import CommandError
from django.db import migrations, models
from django.db.models import Count
from django.db.models.functions import Lower
from django.utils.text import slugify

SLUG_MAX_LENGTH = 60


def refuse_case_clashes(apps, schema_editor):
    Organisation = apps.get_model("accounts", "Organisation")
    clashing = (
        Organisation.objects.annotate(key=Lower("name"))
        .values("key")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("key", flat=True)
    )
    groups = []
    example = None
    for key in clashing:
        members = list(
            Organisation.objects.annotate(key=Lower("name"))
            .filter(key=key)
            .order_by("id")
            .values_list("id", "name")
        )
        groups.append(" and ".join(f"{name!r} (id {pk})" for pk, name in members))
        example = example or members[-1]
    if not groups:
        return
    pk, name = example
    raise CommandError(
        "Organisation names must differ by more than letter case, and these do not: "
        + "; ".join(groups)
        + ". Rename all but one of each group, then migrate again. For example: "
        + "sealbox manage shell -c \"from sealbox.accounts.models import Organisation; "
        + f"Organisation.objects.filter(pk={pk}).update(name={name + ' (2)'!r})\""
    )


def fill_slugs(apps, schema_editor):
    Organisation = apps.get_model("accounts", "Organisation")
    taken = set()
    for organisation in Organisation.objects.order_by("id").only("id", "name"):
        base = slugify(organisation.name)[: SLUG_MAX_LENGTH - 6].strip("-") or "organisation"
        if base.isdigit():
            base = f"org-{base}"
        slug, number = base, 1
        while slug in taken:
            number += 1
            slug = f"{base}-{number}"
        taken.add(slug)
        Organisation.objects.filter(pk=organisation.pk).update(slug=slug)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_organisation_manager"),
    ]

    operations = [
        migrations.RunPython(refuse_case_clashes, migrations.RunPython.noop),
        migrations.AddField(
            model_name="organisation",
            name="slug",
            field=models.SlugField(max_length=SLUG_MAX_LENGTH, null=True, editable=False),
        ),
        migrations.RunPython(fill_slugs, migrations.RunPython.noop),
    ]
