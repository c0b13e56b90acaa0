"""The durable send path: every request and send is recorded before anything is sent.

Exactly once comes from the store: a request moves state by one conditional update, and a
send is claimed ("sending") before 2Chat is called, so double clicks, Slack retries and
several processes can never send it twice. A send left in "sending" by a crash is reported
as outcome unknown, never re-sent on its own; the sends a crashed process never claimed are
sent by whichever process takes its request over. Heartbeats tell the two apart: a running
request's lease and a running send's claim are renewed, so only abandoned work is taken.

- ``workflow``: the entry points (submit, decide, retry, status) over the parts below;
- ``approvals``: approve-before-send, from the approval message to its expiry;
- ``sends``: claiming, fanning out and reporting a request's sends;
- ``sweeper``: crash recovery, run in every process;
- ``leases``: the heartbeats that keep live work from being taken for abandoned work;
- ``replies``: the reply poller: SMS replies into threads, acks by reply, STOP/START;
- ``roles``: the small things each part is given as it needs them: ``Db`` (store calls
  on the store's threads), ``Permissions`` (who may do what), ``Wording`` (a message's
  words, numbers masked as the policy says); ``from_records``: what stored records mean
  to policy and to the chat;
- ``ports``: what the send path needs of the chat (``Reporter``, ``Presenter``), owned
  here and implemented by ``bot.slack``;
- ``queries``: the reads the chat surfaces make, so they never call the store.
"""
