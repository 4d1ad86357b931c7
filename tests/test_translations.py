"""Every string has its French translation, and the compiled catalogue matches it."""

import gettext
import re
from pathlib import Path

import polib

import sealbox

LOCALE = Path(sealbox.__file__).parent / "locale"


def test_french_catalogue_is_complete():
    po = polib.pofile(str(LOCALE / "fr/LC_MESSAGES/django.po"))
    untranslated = [entry.msgid for entry in po.untranslated_entries()]
    fuzzy = [entry.msgid for entry in po.fuzzy_entries()]
    assert untranslated == []
    assert fuzzy == []


def test_compiled_catalogue_is_up_to_date():
    po = polib.pofile(str(LOCALE / "fr/LC_MESSAGES/django.po"))
    with open(LOCALE / "fr/LC_MESSAGES/django.mo", "rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for entry in po.translated_entries():
        if entry.msgid_plural:
            assert compiled.ngettext(entry.msgid, entry.msgid_plural, 1) == entry.msgstr_plural[0]
        else:
            assert compiled.gettext(entry.msgid) == entry.msgstr, entry.msgid


PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\{ *\w+ *\}\}")


def test_every_translation_keeps_its_placeholders():
    """A translation that drops or renames a placeholder breaks its page (KeyError) or
    loses a value: the one catalogue is checked entry by entry."""
    po = polib.pofile(str(LOCALE / "fr/LC_MESSAGES/django.po"))
    wrong = []
    for entry in po.translated_entries():
        pairs = [(entry.msgid, entry.msgstr)]
        if entry.msgid_plural:
            pairs = [
                (entry.msgid, entry.msgstr_plural[0]),
                (entry.msgid_plural, entry.msgstr_plural[1]),
            ]
        for english, french in pairs:
            if sorted(set(PLACEHOLDER.findall(english))) != sorted(
                set(PLACEHOLDER.findall(french))
            ):
                wrong.append(entry.msgid)
    assert wrong == []
