// The Reply form of the recipient's page: the reply (a message and, if the sender allows
// it, files) is encrypted on this device for the original sender, who opens it logged in.
import { apiFetch, ApiError, manifestPlaintext, manifestTooLong } from "./transfer.js";
import { sealForOwner } from "./envelope-upload.js";
import { UploadCancelled } from "./upload.js";
import { pickFiles } from "./filelist.js";

export function showReplyForm(reply, root, csrf) {
  const form = document.getElementById("reply-form");
  const strings = document.getElementById("reply-strings").dataset;
  const errors = document.getElementById("open-errors");
  const status = document.getElementById("reply-status");
  let busy = false;
  let upload = null;
  document.getElementById("reply-cancel").addEventListener("click", () => {
    if (upload?.cancel()) status.textContent = strings.cancelling;
  });
  const files = pickFiles({
    input: document.getElementById("reply-files"),
    list: document.getElementById("reply-file-list"),
    template: document.getElementById("reply-file-row"),
    removeLabel: strings.remove,
    busy: () => busy,
  });
  document.getElementById("reply-files-field").hidden = !reply.files;
  form.hidden = false;

  const showError = (text) => {
    errors.textContent = text;
    errors.hidden = !text;
    if (text) errors.focus();
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    const body = form.elements.body.value;
    if (!body.trim() && !files.length) {
      showError(strings.needContent);
      form.elements.body.focus();
      return;
    }
    if (manifestTooLong(manifestPlaintext(body, files), Number(strings.maxManifestBytes))) {
      showError(strings.tooLong);
      form.elements.body.focus();
      return;
    }
    showError("");
    busy = true;
    const button = form.querySelector("button[type=submit]");
    const cancel = document.getElementById("reply-cancel");
    button.disabled = true;
    cancel.hidden = false;
    status.textContent = strings.encrypting;
    try {
      upload = sealForOwner({
        body,
        files,
        baseUrl: root.dataset.baseUrl,
        csrf,
        onWaiting: (delay) => { status.textContent = strings.retrying.replace("{seconds}", Math.ceil(delay / 1000)); },
        onFinalising: () => { cancel.hidden = true; },
        create: (sealed) => apiFetch("/api/v1/replies", {
          method: "POST", csrf, json: { authorisation: reply.authorisation, ...sealed },
        }),
        finaliseUrl: (id) => `/api/v1/replies/${id}/finalise`,
      });
      await upload.finished;
      form.hidden = true;
      document.getElementById("reply-sent").hidden = false;
      document.getElementById("reply-sent-heading").focus();
      status.textContent = "";
    } catch (error) {
      files.forEach((f) => { f.progress.value = 0; });
      if (error instanceof UploadCancelled) {
        status.textContent = strings.cancelled;
      } else {
        status.textContent = "";
        showError(`${strings.failed} ${error instanceof ApiError ? error.message : strings.network}`);
      }
    } finally {
      busy = false;
      upload = null;
      button.disabled = false;
      cancel.hidden = true;
    }
  });
}
