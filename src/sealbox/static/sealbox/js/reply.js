// The Reply form of the recipient's page: the reply (a message and, if the sender allows
// it, files) is encrypted on this device for the original sender, who opens it logged in.
import { apiFetch, ApiError, formatSize } from "./transfer.js";
import { fileEntry, sealForOwner } from "./envelope-upload.js";

export function showReplyForm(reply, root, csrf) {
  const form = document.getElementById("reply-form");
  const strings = document.getElementById("reply-strings").dataset;
  const errors = document.getElementById("open-errors");
  const status = document.getElementById("reply-status");
  const fileInput = document.getElementById("reply-files");
  const fileList = document.getElementById("reply-file-list");
  const files = [];
  let busy = false;
  document.getElementById("reply-files-field").hidden = !reply.files;
  form.hidden = false;

  const showError = (text) => {
    errors.textContent = text;
    errors.hidden = !text;
    if (text) errors.focus();
  };

  fileInput.addEventListener("change", () => {
    for (const file of fileInput.files) {
      const row = document.getElementById("reply-file-row").content.firstElementChild.cloneNode(true);
      const entry = fileEntry(file, row);
      row.querySelector(".file-name").textContent = file.name;
      row.querySelector(".file-size").textContent = formatSize(file.size);
      entry.progress.setAttribute("aria-label", file.name);
      const remove = row.querySelector(".remove-file");
      remove.textContent = `${strings.remove} ${file.name}`;
      remove.addEventListener("click", () => {
        if (busy) return;
        files.splice(files.indexOf(entry), 1);
        row.remove();
        fileInput.focus();
      });
      files.push(entry);
      fileList.append(row);
    }
    fileInput.value = "";
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    const body = form.elements.body.value;
    if (!body.trim() && !files.length) {
      showError(strings.needContent);
      form.elements.body.focus();
      return;
    }
    showError("");
    busy = true;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    status.textContent = strings.encrypting;
    try {
      await sealForOwner({
        body,
        files,
        baseUrl: root.dataset.baseUrl,
        csrf,
        create: (sealed) => apiFetch("/api/v1/replies", {
          method: "POST", csrf, json: { authorisation: reply.authorisation, ...sealed },
        }),
        finaliseUrl: (id) => `/api/v1/replies/${id}/finalise`,
      });
      form.hidden = true;
      document.getElementById("reply-sent").hidden = false;
      document.getElementById("reply-sent-heading").focus();
    } catch (error) {
      showError(`${strings.failed} ${error instanceof ApiError ? error.message : strings.network}`);
      files.forEach((f) => { f.progress.value = 0; });
    } finally {
      busy = false;
      button.disabled = false;
      status.textContent = "";
    }
  });
}
