// The recipient's page: reads the link secret from the URL fragment (never sent to the
// server), proves who the recipient is, then decrypts the message and its files here.
import { decrypt, decryptStream } from "./ece.js";
import { derivePasswordKey, passwordVerifier, unwrapGrant } from "./grants.js";
import { decodeLinkSecret } from "./links.js";
import { fromBase64url, toBase64url } from "./b64.js";
import { apiFetch, ApiError, formatSize } from "./transfer.js";
import { showReplyForm } from "./reply.js";

// Above this size a file is decrypted by a service worker while it streams to disk
// (or written through the File System Access API), never assembled in memory.
const IN_MEMORY_LIMIT = Number(document.getElementById("open").dataset.inMemoryLimit || 67108864);
const WORKER_URL = "/static/sealbox/js/download-sw.js";
const WORKER_SCOPE = "/static/sealbox/js/download/";

const root = document.getElementById("open");
const strings = document.getElementById("open-strings").dataset;
const errors = document.getElementById("open-errors");
const form = document.getElementById("unlock-form");
const proof = document.getElementById("proof");
const status = document.getElementById("unlock-status");
const token = root.dataset.token;
const verification = root.dataset.verification;
const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;

let linkSecret = null;
try {
  linkSecret = decodeLinkSecret(window.location.hash);
} catch {
  document.getElementById("missing-secret").hidden = false;
  form.hidden = true;
}

// Switching the language reloads this page with ?lang=…: the #fragment (the link secret)
// stays in the address bar and is never sent, unlike a form post to the server.
document.querySelector(".language-switch")?.addEventListener("submit", (event) => {
  event.preventDefault();
  const url = new URL(window.location.href);
  url.searchParams.set("lang", event.submitter.value);
  window.location.replace(url);
});

function showError(text) {
  errors.textContent = text;
  errors.hidden = !text;
  if (text) errors.focus();
}

const sendCode = document.getElementById("send-code");
if (sendCode) {
  sendCode.addEventListener("click", async () => {
    showError("");
    sendCode.disabled = true;
    const sent = document.getElementById("code-sent");
    sent.textContent = strings.sending;
    try {
      const result = await apiFetch(root.dataset.codeUrl, { method: "POST", csrf });
      sent.textContent = `${strings.codeSent} ${result.sent_to}.`;
      proof.focus();
      setTimeout(() => { sendCode.disabled = false; }, result.retry_after * 1000);
    } catch (error) {
      sent.textContent = "";
      showError(error instanceof ApiError ? error.message : strings.network);
      setTimeout(() => { sendCode.disabled = false; }, (error.retryAfter || 5) * 1000);
    }
  });
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const value = proof ? proof.value.trim() : "";
  if (proof && !value) {
    showError(strings.needProof);
    proof.focus();
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  status.textContent = strings.opening;
  try {
    let passwordKey = null;
    const body = {};
    if (verification === "password") {
      passwordKey = await derivePasswordKey(proof.value, token);
      body.password_verifier = toBase64url(await passwordVerifier(passwordKey, token));
    } else {
      body.code = value;
    }
    const unlocked = await apiFetch(root.dataset.unlockUrl, { method: "POST", json: body, csrf });
    let contentKey;
    try {
      contentKey = await unwrapGrant(token, linkSecret, fromBase64url(unlocked.server_secret),
        fromBase64url(unlocked.wrapped_key), { passwordKey });
    } catch {
      throw new Error(strings.badKey);
    }
    await showMessage(unlocked, contentKey);
    form.hidden = true;
  } catch (error) {
    showError(error instanceof ApiError || error instanceof Error ? error.message : strings.network);
  } finally {
    button.disabled = false;
    status.textContent = "";
  }
});

async function showMessage(unlocked, contentKey) {
  const manifestDownload = unlocked.downloads.find((d) => d.kind === "manifest");
  const response = await fetch(manifestDownload.url, { credentials: "same-origin" });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const manifest = JSON.parse(new TextDecoder().decode(
    await decrypt(new Uint8Array(await response.arrayBuffer()), contentKey)));
  const article = document.getElementById("message");
  document.getElementById("message-body").textContent = manifest.body;
  const list = document.getElementById("files");
  const template = document.getElementById("download-template");
  for (const file of manifest.files) {
    const download = unlocked.downloads.find((d) => d.file_ref === file.id);
    if (!download) continue;
    const row = template.content.firstElementChild.cloneNode(true);
    row.querySelector(".file-name").textContent = file.name;
    row.querySelector(".file-size").textContent = formatSize(file.size);
    const button = row.querySelector(".download");
    button.textContent = `${strings.download} ${file.name}`;
    const progress = row.querySelector("progress");
    progress.setAttribute("aria-label", file.name);
    button.addEventListener("click", () => downloadFile(file, download, contentKey, button, progress));
    list.append(row);
  }
  document.getElementById("files-heading").hidden = manifest.files.length === 0;
  document.getElementById("opens-left").textContent = `${strings.opensLeft} ${unlocked.opens_left}`;
  article.hidden = false;
  document.getElementById("message-heading").focus();
  if (unlocked.reply) showReplyForm(unlocked.reply, root, csrf);
}

async function downloadFile(file, download, contentKey, button, progress) {
  showError("");
  button.disabled = true;
  progress.hidden = false;
  progress.value = 0;
  try {
    if (file.size > IN_MEMORY_LIMIT && "serviceWorker" in navigator) {
      await streamToDisk(file, download, contentKey, progress);
    } else {
      await downloadThroughPage(file, download, contentKey, progress);
    }
    progress.value = 100;
    button.textContent = `${strings.downloaded} ${file.name}`;
  } catch (error) {
    showError(error instanceof ApiError || error instanceof Error ? error.message : strings.network);
  } finally {
    button.disabled = false;
  }
}

async function downloadThroughPage(file, download, contentKey, progress) {
  const response = await fetch(download.url, { credentials: "same-origin" });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  let received = 0;
  const counted = response.body.pipeThrough(new TransformStream({
    transform(chunk, controller) {
      received += chunk.length;
      progress.value = Math.round((received / download.size) * 100);
      controller.enqueue(chunk);
    },
  }));
  const plaintext = counted.pipeThrough(decryptStream(contentKey));
  if (file.size > IN_MEMORY_LIMIT && window.showSaveFilePicker) {
    const handle = await window.showSaveFilePicker({ suggestedName: file.name });
    await plaintext.pipeTo(await handle.createWritable());
    return;
  }
  // The whole plaintext is checked (no truncation) before the file is offered.
  const blob = await new Response(plaintext).blob();
  const url = URL.createObjectURL(new Blob([blob], { type: file.type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = file.name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

async function downloadWorker() {
  const registration = await navigator.serviceWorker.register(WORKER_URL, { type: "module", scope: WORKER_SCOPE });
  const worker = registration.active || registration.waiting || registration.installing;
  if (worker.state !== "activated") {
    await new Promise((resolve) => {
      worker.addEventListener("statechange", () => { if (worker.state === "activated") resolve(); });
    });
  }
  return registration.active;
}

/** Let the service worker fetch, decrypt and save the file as a stream. */
async function streamToDisk(file, download, contentKey, progress) {
  const worker = await downloadWorker();
  const id = crypto.randomUUID();
  const channel = new MessageChannel();
  const finished = new Promise((resolve, reject) => {
    channel.port1.onmessage = ({ data }) => {
      if (data.progress) progress.value = Math.round((data.progress / file.size) * 100);
      if (data.done) resolve();
      if (data.error) reject(new Error(data.error));
    };
  });
  const ready = new Promise((resolve) => {
    const previous = channel.port1.onmessage;
    channel.port1.onmessage = (event) => {
      if (event.data.ready) resolve();
      else previous(event);
    };
  });
  worker.postMessage({ id, url: download.url, key: contentKey, name: file.name, size: file.size },
    [channel.port2]);
  await ready;
  const frame = document.createElement("iframe");
  frame.hidden = true;
  frame.src = `${WORKER_SCOPE}${id}`;
  document.body.append(frame);
  try {
    await finished;
  } finally {
    setTimeout(() => frame.remove(), 1000);
  }
}
