// The submitter's page of a secure envelope: proves who they are if the envelope asks,
// then encrypts their message and files on this device for the envelope's owner.
import { apiFetch, ApiError, manifestPlaintext, manifestTooLong } from "./transfer.js";
import { fileProblems, sealForOwner } from "./envelope-upload.js";
import { fillIn, pickFiles, sizeRefusal } from "./filelist.js";
import { extensionOf } from "./upload-plan.js";
import { UploadCancelled } from "./upload.js";

const root = document.getElementById("envelope");
const strings = document.getElementById("envelope-strings").dataset;
const errors = document.getElementById("envelope-errors");
const verifyForm = document.getElementById("verify-form");
const submitForm = document.getElementById("submit-form");
const fileInput = document.getElementById("envelope-files");
const fileList = document.getElementById("envelope-file-list");
const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
const rules = {
  mode: root.dataset.filesMode,
  extensions: root.dataset.extensions.split(" ").filter(Boolean),
  maxTotal: root.dataset.maxTotalBytes === "" ? null : Number(root.dataset.maxTotalBytes),
};
let submitToken = null;
let busy = false;
let upload = null;
// The envelope's rules, from the server: a file of a type it refuses, or that would pass
// its limit, is refused the moment it is picked, with the rule named.
const refuse = (file, picked) => {
  if (rules.extensions.length && !rules.extensions.includes(extensionOf(file.name))) {
    return fillIn(strings.refusedType, { name: file.name, types: rules.extensions.join(", ") });
  }
  return sizeRefusal(file, picked, rules.maxTotal, {
    none: strings.noFiles, tooLarge: strings.refusedTooLarge, limit: strings.limitText,
  });
};
const files = fileInput
  ? pickFiles({
    refuse,
    onRefused: (messages) => showErrors(messages),
    input: fileInput,
    list: fileList,
    template: document.getElementById("envelope-file-row"),
    removeLabel: strings.remove,
    busy: () => busy,
  })
  : [];

function showErrors(messages) {
  errors.replaceChildren(...messages.map((text) => {
    const p = document.createElement("p");
    p.textContent = text;
    return p;
  }));
  errors.hidden = messages.length === 0;
  if (messages.length) errors.focus();
}

const message = (error) => (error instanceof ApiError ? error.message : strings.network);

async function start(body) {
  const result = await apiFetch(root.dataset.startUrl, { method: "POST", json: body, csrf });
  submitToken = result.submit_token;
  if (verifyForm) verifyForm.hidden = true;
  submitForm.hidden = false;
  document.getElementById("submitter-name").focus();
}

// --- Verification ---------------------------------------------------------------------

const sendCode = document.getElementById("send-code");
sendCode?.addEventListener("click", async () => {
  showErrors([]);
  sendCode.disabled = true;
  const sent = document.getElementById("code-sent");
  sent.textContent = strings.sending;
  try {
    const result = await apiFetch(root.dataset.codeUrl, { method: "POST", csrf });
    sent.textContent = `${strings.codeSent} ${result.sent_to}.`;
    document.getElementById("proof").focus();
    setTimeout(() => { sendCode.disabled = false; }, result.retry_after * 1000);
  } catch (error) {
    sent.textContent = "";
    showErrors([message(error)]);
    setTimeout(() => { sendCode.disabled = false; }, (error.retryAfter || 5) * 1000);
  }
});

verifyForm?.addEventListener("submit", async (event) => {
  event.preventDefault();
  showErrors([]);
  const proof = document.getElementById("proof");
  if (!proof.value.trim()) {
    showErrors([strings.needProof]);
    proof.focus();
    return;
  }
  const body = root.dataset.verification === "password" ? { password: proof.value } : { code: proof.value.trim() };
  try {
    await start(body);
  } catch (error) {
    showErrors([message(error)]);
  }
});

if (!verifyForm) {
  start({}).catch((error) => showErrors([message(error)]));
}

// --- Files ----------------------------------------------------------------------------



// --- Sending --------------------------------------------------------------------------

function problems() {
  const found = [];
  const name = submitForm.elements.name;
  const email = submitForm.elements.email;
  if (!name.value.trim()) found.push([strings.needName, name]);
  if (!email.value.trim() || !email.checkValidity()) found.push([strings.needEmail, email]);
  if (!submitForm.elements.message.value.trim() && !files.length && rules.mode !== "mandatory") {
    found.push([strings.needContent, submitForm.elements.message]);
  }
  if (manifestTooLong(manifestPlaintext(submitForm.elements.message.value, files), Number(strings.maxManifestBytes))) {
    found.push([strings.tooLong, submitForm.elements.message]);
  }
  for (const [kind, detail] of fileProblems(files, rules)) {
    if (kind === "badType") found.push([`${strings.badType} ${detail}. ${strings.allowed} ${rules.extensions.join(", ")}.`, fileInput]);
    else if (kind === "needFiles") found.push([strings.needFiles, fileInput]);
    else if (kind === "noFiles") found.push([strings.noFiles, fileInput]);
    else found.push([strings.tooLarge, fileInput]);
  }
  return found;
}

submitForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (busy) return;
  const found = problems();
  if (found.length) {
    showErrors(found.map(([text]) => text));
    return;
  }
  showErrors([]);
  busy = true;
  const button = submitForm.querySelector("button[type=submit]");
  const cancel = document.getElementById("submit-cancel");
  button.disabled = true;
  cancel.hidden = false;
  const status = document.getElementById("submit-status");
  status.textContent = strings.encrypting;
  try {
    upload = sealForOwner({
      body: submitForm.elements.message.value,
      files,
      baseUrl: root.dataset.baseUrl,
      csrf,
      onWaiting: (delay) => { status.textContent = strings.retrying.replace("{seconds}", Math.ceil(delay / 1000)); },
      onFinalising: () => { cancel.hidden = true; },
      create: (sealed) => apiFetch(root.dataset.createUrl, {
        method: "POST",
        csrf,
        json: {
          submit_token: submitToken,
          name: submitForm.elements.name.value.trim(),
          email: submitForm.elements.email.value.trim(),
          ...sealed,
        },
      }),
      finaliseUrl: (id) => `/api/v1/envelope-submissions/${id}/finalise`,
    });
    await upload.finished;
    window.location.assign(root.dataset.sentUrl);
  } catch (error) {
    files.forEach((f) => { f.progress.value = 0; });
    if (error instanceof UploadCancelled) {
      status.textContent = strings.cancelled;
    } else {
      status.textContent = "";
      showErrors([`${strings.failed} ${message(error)}`]);
    }
    busy = false;
    upload = null;
    button.disabled = false;
    cancel.hidden = true;
  }
});

document.getElementById("submit-cancel").addEventListener("click", () => {
  if (upload?.cancel()) document.getElementById("submit-status").textContent = strings.cancelling;
});
