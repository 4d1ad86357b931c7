// The send page: encrypts the message and its files on this device, then uploads the
// ciphertext through the API. The server never sees the body, file names, contents or
// (with "Create links") the link secrets.
import { createGrant } from "./grants.js";
import { buildLink, newGrantToken } from "./links.js";
import { toBase64url } from "./b64.js";
import { pickFiles, sizeRefusal } from "./filelist.js";
import { apiFetch, ApiError, manifestPlaintext, manifestTooLong } from "./transfer.js";
import { uploadDraft, UploadCancelled } from "./upload.js";

const form = document.getElementById("send-form");
const strings = document.getElementById("send-strings").dataset;
const errors = document.getElementById("send-errors");
const recipients = document.getElementById("recipients");
const fileInput = document.getElementById("files");
let delivery = "email";
let busy = false;
let upload = null;
// The plan's limit, from the server ("" = none): a file that would pass it is refused
// the moment it is picked, with the limit named.
const sendLimit = form.dataset.maxSendBytes === "" ? null : Number(form.dataset.maxSendBytes);
const files = pickFiles({
  refuse: (file, picked) => sizeRefusal(file, picked, sendLimit, {
    none: strings.noAttachments, tooLarge: strings.refusedTooLarge, limit: strings.limitText,
  }),
  onRefused: (messages) => showErrors(messages),
  input: fileInput,
  list: document.getElementById("file-list"),
  template: document.getElementById("file-row-template"),
  removeLabel: strings.remove,
  busy: () => busy,
  dropZone: document.getElementById("drop-zone"),
});

// --- Recipients -----------------------------------------------------------------------

function wireRecipient(item) {
  const select = item.querySelector("select[name=verification]");
  const passwordField = item.querySelector(".password-field");
  const sync = () => { passwordField.hidden = select.value !== "password"; };
  select.addEventListener("change", sync);
  sync();
}

function addRecipient() {
  const number = recipients.children.length + 1;
  const html = document.getElementById("recipient-template").innerHTML.replaceAll("__n__", number);
  const item = document.createElement("li");
  item.className = "recipient";
  item.innerHTML = html;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "link-button";
  remove.textContent = `${strings.removeRecipient} ${number}`;
  remove.addEventListener("click", () => item.remove());
  item.append(remove);
  recipients.append(item);
  wireRecipient(item);
  item.querySelector("input[name=email]").focus();
}

recipients.querySelectorAll(".recipient").forEach(wireRecipient);

// The date field matters only for "On a date".
const expiryDateField = form.elements.expiry_date.closest(".field");
const syncExpiry = () => { expiryDateField.hidden = form.elements.expires.value !== "date"; };
form.elements.expires.addEventListener("change", syncExpiry);
syncExpiry();
document.getElementById("add-recipient").addEventListener("click", addRecipient);

// --- Validation (the server checks everything again) -----------------------------------

function readRecipients() {
  return [...recipients.querySelectorAll(".recipient")].map((item) => ({
    email: item.querySelector("input[name=email]").value.trim(),
    phone: item.querySelector("input[name=phone]").value.trim(),
    verification: item.querySelector("select[name=verification]").value,
    password: item.querySelector("input[name=password]").value,
    item,
  }));
}

function expiryDate() {
  const choice = form.elements.expires.value;
  if (choice === "date") {
    const value = form.elements.expiry_date.value;
    if (!value) return null;
    return new Date(`${value}T23:59:00`);
  }
  return new Date(Date.now() + Number(choice) * 24 * 3600 * 1000);
}

function validate(list) {
  const problems = [];
  if (!form.elements.subject.value.trim()) problems.push([strings.needSubject, form.elements.subject]);
  for (const r of list) {
    const emailInput = r.item.querySelector("input[name=email]");
    if (!r.email || !emailInput.checkValidity()) problems.push([strings.needEmail, emailInput]);
    if (r.verification === "sms_code" && !r.phone) problems.push([strings.needPhone, r.item.querySelector("input[name=phone]")]);
    if (r.verification === "password" && r.password.length < 8) problems.push([strings.needPassword, r.item.querySelector("input[name=password]")]);
  }
  const expires = expiryDate();
  const maxDays = Number(form.dataset.maxRetentionDays);
  if (!expires || expires <= new Date()) problems.push([strings.needDate, form.elements.expiry_date]);
  else if (expires - Date.now() > maxDays * 24 * 3600 * 1000 + 60000) problems.push([strings.tooFar, form.elements.expires]);
  const limit = form.dataset.maxSendBytes;
  const total = files.reduce((sum, f) => sum + f.file.size, 0);
  if (limit !== "" && files.length && Number(limit) === 0) problems.push([strings.noAttachments, fileInput]);
  else if (limit !== "" && total > Number(limit)) problems.push([strings.tooLarge, fileInput]);
  if (manifestTooLong(manifestPlaintext(form.elements.body.value, files), Number(strings.maxManifestBytes))) {
    problems.push([strings.tooLong, form.elements.body]);
  }
  return problems;
}

function showErrors(messages) {
  if (messages.length) showNotice("");
  errors.replaceChildren(...messages.map((text) => {
    const p = document.createElement("p");
    p.textContent = text;
    return p;
  }));
  errors.hidden = messages.length === 0;
  if (messages.length) errors.focus();
}

// --- Sending --------------------------------------------------------------------------

const csrf = () => form.elements.csrfmiddlewaretoken.value;

async function send() {
  const list = readRecipients();
  const problems = validate(list);
  if (problems.length) {
    showErrors(problems.map(([text]) => text));
    problems[0][1]?.focus();
    return;
  }
  showErrors([]);
  busy = true;
  form.querySelectorAll("button[type=submit]").forEach((b) => { b.disabled = true; });
  const status = document.getElementById("send-status");
  const cancel = document.getElementById("send-cancel");
  document.getElementById("send-progress").hidden = false;
  cancel.hidden = false;
  status.textContent = strings.encrypting;
  const grants = [];
  const links = [];
  try {
    upload = uploadDraft({
      body: form.elements.body.value,
      files,
      csrf: csrf(),
      onWaiting: (delay) => { status.textContent = strings.retrying.replace("{seconds}", Math.ceil(delay / 1000)); },
      onProgress: () => { status.textContent = strings.encrypting; },
      onFinalising: () => { cancel.hidden = true; status.textContent = strings.finishing; },
      create: async ({ contentKey, blobs }) => {
        const everyone = form.elements.keep_copy.checked
          ? [...list, { email: form.dataset.senderEmail, phone: "", verification: "account", password: "", copy: true }]
          : list;
        for (const r of everyone) {
          const token = newGrantToken();
          const grant = await createGrant(contentKey, token, { password: r.verification === "password" ? r.password : null });
          grants.push({ r, token, grant });
        }
        return apiFetch(form.dataset.api, { method: "POST", csrf: csrf(), json: {
          subject: form.elements.subject.value.trim(),
          expires_at: expiryDate().toISOString(),
          max_opens: Number(form.elements.max_opens.value || 1),
          notify_on_open: form.elements.notify_on_open.checked,
          show_subject: form.elements.show_subject.checked,
          keep_copy: form.elements.keep_copy.checked,
          language: form.elements.language.value,
          reply_mode: form.elements.reply_mode.value,
          delivery,
          recipients: grants.map(({ r, token, grant }) => ({
            email: r.email,
            phone: r.phone,
            verification: r.verification,
            grant_token: token,
            server_secret: toBase64url(grant.serverSecret),
            wrapped_key: toBase64url(grant.wrappedKey),
            password_verifier: grant.passwordVerifier ? toBase64url(grant.passwordVerifier) : null,
          })),
          blobs,
          // Straight to the object store when the server allows it (S3); else through it.
          upload_mode: "direct",
        } });
      },
      paths: (created) => ({
        blobUrl: (blobId) => `/api/v1/messages/${created.id}/blobs/${blobId}`,
        stateUrl: `/api/v1/messages/${created.id}`,
      }),
      finalise: async (created) => {
        links.push(...grants.map(({ token, grant }) => ({
          grant_token: token,
          link: buildLink(form.dataset.baseUrl, token, grant.linkSecret),
        })));
        await apiFetch(`/api/v1/messages/${created.id}/finalise`, {
          method: "POST", csrf: csrf(), json: { links: delivery === "email" ? links : null },
        });
        return created;
      },
      // A cancelled draft is deleted: nothing of it stays, in History or in storage.
      discard: (created) => apiFetch(`/api/v1/messages/${created.id}`, { method: "DELETE", csrf: csrf() }),
    });
    const created = await upload.finished;
    done(created, grants, links);
  } catch (error) {
    document.getElementById("send-progress").hidden = true;
    files.forEach((f) => { f.progress.value = 0; });
    if (error instanceof UploadCancelled) {
      showNotice(strings.cancelled);
    } else {
      const text = error instanceof ApiError ? error.message : strings.network;
      showErrors([`${strings.failed} ${text}`]);
    }
  } finally {
    busy = false;
    upload = null;
    cancel.hidden = true;
    form.querySelectorAll("button[type=submit]").forEach((b) => { b.disabled = false; });
  }
}

document.getElementById("send-cancel").addEventListener("click", () => {
  if (upload?.cancel()) document.getElementById("send-status").textContent = strings.cancelling;
});

function showNotice(text) {
  const notice = document.getElementById("send-notice");
  notice.textContent = text;
  notice.hidden = !text;
  if (text) notice.focus();
}

function done(created, grants, links) {
  form.hidden = true;
  const section = document.getElementById("send-done");
  const heading = document.getElementById("send-done-heading");
  section.hidden = false;
  document.getElementById("send-done-message").href = `/messages/${created.id}/`;
  if (delivery === "email") {
    heading.textContent = strings.sent;
    document.getElementById("send-done-text").textContent = strings.sentText;
  } else {
    heading.textContent = strings.links;
    document.getElementById("send-done-text").textContent = strings.linksText;
    const list = document.getElementById("created-links");
    grants.forEach(({ r, token }, index) => {
      const item = document.createElement("li");
      const label = document.createElement("label");
      const id = `link-${index}`;
      label.htmlFor = id;
      label.textContent = r.copy ? strings.yourCopy : r.email;
      const input = document.createElement("input");
      input.id = id;
      input.readOnly = true;
      input.value = links[index].link;
      const copy = document.createElement("button");
      copy.type = "button";
      copy.textContent = `${strings.copy} ${r.email}`;
      copy.addEventListener("click", async () => {
        input.select();
        try { await navigator.clipboard.writeText(input.value); } catch { document.execCommand("copy"); }
        copy.textContent = strings.copied;
      });
      item.append(label, input, copy);
      const code = created.opening_codes[token];
      if (code) {
        const p = document.createElement("p");
        p.textContent = `${strings.openingCode}: `;
        const strong = document.createElement("strong");
        strong.className = "opening-code";
        strong.textContent = code;
        p.append(strong);
        item.append(p);
      }
      list.append(item);
    });
  }
  heading.focus();
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (busy) return;
  delivery = event.submitter?.value === "links" ? "links" : "email";
  send();
});
