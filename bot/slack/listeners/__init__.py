"""One module per Slack surface, each with ``register(app, bridge)``: the ``/sms`` command,
the compose form, the paging mention and shortcut, approvals, the pager board and App Home.
``deps`` is what they all receive and ``forms`` what the forms share; neither registers.
"""
