"""The pages switch to French for a French-speaking user (the catalogue is the .po)."""

import pytest


@pytest.mark.django_db
def test_the_verify_page_in_french(client, user, sms_outbox, clock):
    from tests.twofactor.conftest import enable_sms, password_step

    enable_sms(user)
    client.cookies["sealbox_language"] = "fr"
    password_step(client, user)
    page = client.get("/login/verify/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Vérification en deux étapes" in page
    assert "Saisissez le code à 6 chiffres envoyé par SMS au •••• 0100." in page
    assert "Envoyer un nouveau code" in page
    assert "Utiliser une autre méthode" in page
