// The list of files a person picked (or dropped) before they are encrypted and uploaded:
// one row each with its name, size, a progress bar and a Remove button. Shared by the
// send page, the envelope submitter's page and the reply form.
import { formatSize, randomId } from "./transfer.js";

/** Fill "{name}"-style placeholders of a page's string. */
export function fillIn(text, values) {
  return text.replace(/\{(\w+)\}/g, (whole, key) => (key in values ? String(values[key]) : whole));
}

/**
 * Why `file` cannot join `picked` (the files already listed) under a limit of `limit`
 * bytes in total (null: none; 0: no files at all), or null. `texts`: the page's strings,
 * {none, tooLarge} with {name}, {size} and {limit} placeholders, and `limit`, the limit as
 * the server writes it.
 */
export function sizeRefusal(file, picked, limit, texts) {
  if (limit === null || limit === undefined || Number.isNaN(limit)) return null;
  if (limit === 0) return texts.none;
  const total = picked.reduce((sum, entry) => sum + entry.file.size, 0) + file.size;
  if (total <= limit) return null;
  return fillIn(texts.tooLarge, { name: file.name, size: formatSize(file.size), limit: texts.limit });
}

/**
 * Wire a file input (and optionally a drop zone) to a list of rows cloned from `template`.
 * Returns the live array of entries {file, ref, row, progress}; `busy()` true blocks removal.
 * `refuse(file, entries)` returns why a file may not be added (or null): a refused file is
 * not listed, and `onRefused(messages)` shows why, the moment it is picked.
 */
export function pickFiles({ input, list, template, removeLabel, busy = () => false, dropZone = null, refuse = () => null, onRefused = () => {} }) {
  const entries = [];
  const add = (files) => {
    const refused = [];
    for (const file of files) {
      const reason = refuse(file, entries);
      if (reason) {
        refused.push(reason);
        continue;
      }
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
    onRefused(refused);
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
