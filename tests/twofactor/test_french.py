"""The French of this app's strings (fr_translations.json, merged into the catalogue by
makemessages) keeps every placeholder, and the pages switch to it."""

import json
import re

import pytest

from tests.twofactor.conftest import FR_TRANSLATIONS

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def entries():
    for msgid, value in json.loads(FR_TRANSLATIONS.read_text()).items():
        if isinstance(value, str):
            yield msgid, value
        else:
            yield msgid, value["fr"][0]
            yield value["plural"], value["fr"][1]


@pytest.mark.parametrize(("english", "french"), list(entries()))
def test_every_translation_keeps_its_placeholders(english, french):
    assert french.strip()
    assert sorted(PLACEHOLDER.findall(english)) == sorted(PLACEHOLDER.findall(french))


@pytest.mark.django_db
def test_the_verify_page_in_french(client, user, sms_outbox, clock, french):
    from tests.twofactor.conftest import enable_sms, password_step

    enable_sms(user)
    client.cookies["sealbox_language"] = "fr"
    password_step(client, user)
    page = client.get("/login/verify/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Vérification en deux étapes" in page
    assert "Saisissez le code à 6 chiffres envoyé par SMS au •••• 0100." in page
    assert "Envoyer un nouveau code" in page
    assert "Utiliser une autre méthode" in page
