"""Limits on what a message may carry, which the server enforces and every client checks
before it uploads (the pages get them from their templates, the Python client imports
them). No Django here: the Python client runs without it."""

# The manifest carries the body and the file list; it is one encrypted payload like a
# file. A plan that allows no attachments would allow any file hidden in the body if the
# manifest had no cap of its own, so it has one on every plan (ciphertext bytes).
MAX_MANIFEST_BYTES = 256 * 1000
