"""Envelopes and replies in French (the catalogue is the .po), used for the envelope's
language (emails) and the visitor's language (pages)."""

import pytest
from django.test import Client

from tests.envelopes.conftest import emails_to

pytestmark = pytest.mark.django_db


def test_invitation_email_and_submitter_page_in_french(make_envelope):
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
