// The list of files a person picked (or dropped) before they are encrypted and uploaded:
// one row each with its name, size, a progress bar and a Remove button. Shared by the
// send page, the envelope submitter's page and the reply form.
import { formatSize, randomId } from "./transfer.js";

/**
 * Wire a file input (and optionally a drop zone) to a list of rows cloned from `template`.
 * Returns the live array of entries {file, ref, row, progress}; `busy()` true blocks removal.
 */
export function pickFiles({ input, list, template, removeLabel, busy = () => false, dropZone = null }) {
  const entries = [];
  const add = (files) => {
    for (const file of files) {
      const row = template.content.firstElementChild.cloneNode(true);
      const entry = { file, ref: randomId(), row, progress: row.querySelector("progress") };
      row.querySelector(".file-name").textContent = file.name;
      row.querySelector(".file-size").textContent = formatSize(file.size);
      entry.progress?.setAttribute("aria-label", file.name);
      const remove = row.querySelector(".remove-file");
      remove.textContent = `${removeLabel} ${file.name}`;
      remove.addEventListener("click", () => {
        if (busy()) return;
        entries.splice(entries.indexOf(entry), 1);
        row.remove();
        input.focus();
      });
      entries.push(entry);
      list.append(row);
    }
  };
  input.addEventListener("change", () => { add(input.files); input.value = ""; });
  // Files chosen before this script ran (a fast hand, or the browser restoring the form).
  if (input.files?.length) {
    add(input.files);
    input.value = "";
  }
  if (dropZone) {
    dropZone.addEventListener("dragover", (event) => { event.preventDefault(); dropZone.classList.add("dragging"); });
    dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
    dropZone.addEventListener("drop", (event) => {
      event.preventDefault();
      dropZone.classList.remove("dragging");
      add(event.dataTransfer.files);
    });
  }
  return entries;
}
