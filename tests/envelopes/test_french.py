"""Envelopes and replies in French: the strings of fr_translations.json, used for the
envelope's language (emails) and the visitor's language (pages)."""

import json
import re
from pathlib import Path

import pytest
from django.test import Client
from django.utils import translation

from tests.envelopes.conftest import emails_to

pytestmark = pytest.mark.django_db

FR_TRANSLATIONS = Path(__file__).resolve().parents[2] / "src/sealbox/envelopes/fr_translations.json"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


@pytest.fixture
def french():
    entries = json.loads(FR_TRANSLATIONS.read_text())
    extra = {}
    for msgid, value in entries.items():
        if isinstance(value, str):
            extra[msgid] = value
        else:
            for index, text in enumerate(value["fr"]):
                extra[(msgid, index)] = text
    catalog = translation.trans_real.translation("fr")._catalog
    catalog._catalogs.insert(0, extra)
    catalog._plurals.insert(0, lambda n: int(n > 1))
    yield entries
    catalog._catalogs.pop(0)
    catalog._plurals.pop(0)


def test_every_translation_keeps_its_placeholders():
    for msgid, value in json.loads(FR_TRANSLATIONS.read_text()).items():
        texts = [value] if isinstance(value, str) else value["fr"]
        for text in texts:
            assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(msgid)), msgid


def test_invitation_email_and_submitter_page_in_french(make_envelope, french):
    envelope = make_envelope(language="fr")
    [invitation] = emails_to("client@example.org")
    assert invitation.subject == "Enveloppe sécurisée : Your tax documents"
    assert "vous demande d’envoyer des documents en toute sécurité" in invitation.body
    page = Client().get(f"/e/{envelope.links.get().token}", HTTP_ACCEPT_LANGUAGE="fr")
    text = page.content.decode()
    assert "Envoyer en toute sécurité" in text and "Votre nom" in text


def test_a_closed_envelope_says_so_in_french(make_envelope, sender):
    from sealbox.envelopes import services

    envelope = make_envelope()
    services.close_envelope(sender, envelope)
    page = Client().get(f"/e/{envelope.links.get().token}", HTTP_ACCEPT_LANGUAGE="fr")
    assert page.status_code == 410
    assert "Cette enveloppe est fermée : elle n’accepte plus de documents." in page.content.decode()
