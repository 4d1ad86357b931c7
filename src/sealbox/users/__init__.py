"""User administration: administrators add, import, edit, disable and delete the users of
their organisation, and set its policies. Rules live in services.py."""
