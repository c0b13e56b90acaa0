"""Everything a user reads in Slack, rendered from domain data, one module per feature.

- ``escaping``: ``untrusted``, the one escaping function for text the bridge did not write,
  and ``show_number`` / ``shown``, the one place a number is shown in full or masked;
- ``labels``: people, numbers, segments, times, errors, and long lists cut short;
- ``refusals``: ``describe_error``, the one place an exception becomes a user message, and
  refusals;
- ``outcomes``: the request message and its thread reply;
- ``approvals``, ``replies``, ``status``, ``usage``, ``board``, ``retry``: approvals, SMS
  replies and acks, ``/sms status``, ``/sms help``, the pager board, Retry buttons;
- ``blocks``: Block Kit pieces that split rather than cut, to stay within Slack's limits;
- ``presenter``: all of it as the send path's ``Presenter`` (``bot.sending.ports``).

Import from the feature module; this package re-exports nothing.
"""
