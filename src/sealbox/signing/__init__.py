"""E-signature (SIGNING.md): the server seals digests, never documents.

Only the core for now (no models, not an installed app yet): `sealing` makes the CMS over
a digest computed in the signer's browser, `verify` checks every signature of a PDF.
The revisions themselves are built by `static/sealbox/js/pdf-revision.js`.
"""
