"""The lower layer: helpers every app shares, importing no app.

Only Django, the standard library, third-party packages and `sealbox.crypto` may be
imported here, so that any app can use it without an import cycle.
"""
