"""Everything Slack: what comes in, what users read, and what goes out.

- ``transport``: how Slack's requests arrive (HTTP with its signature and replay checks,
  or Socket Mode) and who the bot is; it knows nothing of the listeners;
- ``listeners``: one module per Slack surface, each with ``register(app, bridge)``, and
  ``deps.Bridge``, what every listener receives;
- ``render``: the text and Block Kit users read, one module per feature;
- ``bolt_app``: the one module that builds the Bolt app and registers every listener;
- beside them, what every part shares: ``ids`` and ``payloads`` (Slack's untrusted JSON
  parsed once), and the Web API callers ``reporter`` (with its edit ``pace``),
  ``directory`` and ``user_names``.
"""
