// Passkeys (WebAuthn): add one on the security page, use one at login.
// The server sends options as JSON (base64url for binary fields) and expects the
// credential back in the same JSON form; this module converts between the two.

import { fromBase64url as decode, toBase64url as encode } from "./b64.js";

// WebAuthn takes and gives buffers; the one base64url of the pages (b64.js) works on bytes.
const fromBase64url = (value) => decode(value, { what: "passkey field" });
const toBase64url = (buffer) => encode(new Uint8Array(buffer));

function creationOptions(json) {
  const options = { ...json };
  options.challenge = fromBase64url(json.challenge);
  options.user = { ...json.user, id: fromBase64url(json.user.id) };
  options.excludeCredentials = (json.excludeCredentials || []).map((c) => ({
    ...c,
    id: fromBase64url(c.id),
  }));
  return options;
}

function requestOptions(json) {
  const options = { ...json };
  options.challenge = fromBase64url(json.challenge);
  options.allowCredentials = (json.allowCredentials || []).map((c) => ({
    ...c,
    id: fromBase64url(c.id),
  }));
  return options;
}

function credentialJSON(credential) {
  const response = credential.response;
  const json = {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment || undefined,
    clientExtensionResults: credential.getClientExtensionResults(),
    response: { clientDataJSON: toBase64url(response.clientDataJSON) },
  };
  if (response.attestationObject) {
    json.response.attestationObject = toBase64url(response.attestationObject);
    if (response.getTransports) {
      json.response.transports = response.getTransports();
    }
  } else {
    json.response.authenticatorData = toBase64url(response.authenticatorData);
    json.response.signature = toBase64url(response.signature);
    if (response.userHandle) {
      json.response.userHandle = toBase64url(response.userHandle);
    }
  }
  return json;
}

async function postJSON(url, csrfToken, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json",
      "X-CSRFToken": csrfToken,
    },
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try {
    data = await response.json();
  } catch (error) {
    data = {};
  }
  return { ok: response.ok, data };
}

function setup(container, run) {
  const status = container.querySelector("[data-passkey-status]");
  const csrf = container.querySelector("input[name=csrfmiddlewaretoken]");
  const say = (text) => {
    if (status) {
      status.textContent = text || "";
    }
  };
  const handle = async (event) => {
    if (event) {
      event.preventDefault();
    }
    say("");
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say(container.dataset.errorUnsupported);
      return;
    }
    try {
      await run(csrf ? csrf.value : "", say);
    } catch (error) {
      say(container.dataset.errorCancelled);
    }
  };
  return handle;
}

async function follow(result, say) {
  if (result.data.redirect_url) {
    window.location.assign(result.data.redirect_url);
    return true;
  }
  say(result.data.detail || "");
  return false;
}

function initRegistration(form) {
  const handler = setup(form, async (csrf, say) => {
    const begin = await postJSON(form.dataset.beginUrl, csrf);
    if (!begin.ok) {
      if (!(await follow(begin, say)) && begin.data.reauth_url) {
        window.location.assign(begin.data.reauth_url);
      }
      return;
    }
    const credential = await navigator.credentials.create({
      publicKey: creationOptions(begin.data),
    });
    const nameField = form.querySelector("input[name=name]");
    const result = await postJSON(form.dataset.completeUrl, csrf, {
      name: nameField ? nameField.value : "",
      credential: credentialJSON(credential),
    });
    await follow(result, say);
  });
  form.addEventListener("submit", handler);
}

function initLogin(container) {
  const button = container.querySelector("[data-passkey-start]");
  const handler = setup(container, async (csrf, say) => {
    const begin = await postJSON(container.dataset.beginUrl, csrf);
    if (!begin.ok) {
      await follow(begin, say);
      return;
    }
    const credential = await navigator.credentials.get({
      publicKey: requestOptions(begin.data),
    });
    const result = await postJSON(container.dataset.completeUrl, csrf, credentialJSON(credential));
    await follow(result, say);
  });
  if (button) {
    button.addEventListener("click", handler);
  }
}

for (const form of document.querySelectorAll("[data-passkey-register]")) {
  initRegistration(form);
}
for (const container of document.querySelectorAll("[data-passkey-login]")) {
  initLogin(container);
}
