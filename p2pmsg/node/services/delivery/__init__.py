"""Delivery: store first, send in order, acknowledge only what is stored, never show twice.

The delivery promises (README, "Chatting from scripts") and where each is kept:

* *A message is written to the store before it is sent.* `submit` resolves only
  after the store committed it; bytes go to a session afterwards.
* *The receipt marks it delivered.* Receipts arrive in batches
  (`Receipt(ids=[...])`) and become one `mark_delivered_many` per batch.
* *Queued messages go out in order when the peer appears.* When a session
  becomes ready, the peer's outbox (queued and sent-but-unacknowledged) is read
  back in `seq` order and sent before any newer message to that peer.
* *The receiver de-duplicates by id, and acknowledges only what it stored.* A
  delivery receipt is sent after the incoming chats committed, for new and
  duplicate ids alike (a duplicate means our earlier receipt was lost). A kill -9
  at any moment therefore causes at most a resend, which the id absorbs.
* *Nothing stored goes unshown.* A kill -9 after a message is stored and before it
  is shown (or its receipt left) makes the sender resend it; a resend of an unread
  message stored before this run started is published again, once per run, as
  `MessageReceived(replayed=True)` with the same id (at most `MAX_REPLAYS` per run).
  So a reader such as `listen` sees every message at least once; a second time
  only after a crash, same id.

Two writes are bookkeeping, not promises, and wait to ride along with other
work: the "sent" mark (a display state between "queued" and "delivered", both
of which are resent after a restart) and a delivery receipt for ids in flight
on the live session (announced at once; a crash before the write means a
resend that the peer de-duplicates and acknowledges again).

The parts, sans-I/O in the middle as in `protocol/connection.py`:

    core.py         DeliveryCore: inputs in (with `now`), store work and actions out
    pending.py      inputs waiting for the next batch, and how a batch is cut from them
    table.py        MessageTable: one record per outgoing message this run tracks
    work.py         plain data to and from the store thread (StoreWork, StoreResult)
    transaction.py  apply(): one StoreWork as one transaction, run on the store thread
    actions.py      what the core asks its driver to do (send, publish, answer, ...)
    views.py        MessageView, Chat and Receipt from records (pure)
    driver.py       Delivery: the asyncio driver (task, timers, futures, back-pressure)

Only driver.py imports asyncio and only transaction.py touches the store;
the other modules are checked to import neither (pyproject.toml contracts,
tests/test_layering.py), so the core runs in tests on a fake clock with no
event loop.
"""
