"""p2pmsg.store: the profile's encrypted SQLite database (the only code touching sqlite3).

Open it once per profile: `Store.open(profile_dir / DB_FILENAME, data_key)`
(synchronous, for commands and threads) or `await AsyncStore.open(...)` (the
node: every call runs on one dedicated worker thread, in submission order;
`await astore.run(Store.method, *args)` is type-checked against `Store`).

Conventions: peers are named by fingerprint, lowercase hex (raw 32 bytes or
the spaced display form are accepted too); message and transfer ids are 16
raw bytes; `now` is always passed in (seconds since the epoch), so tests
control time. Bad arguments raise `ValueError`; an unknown peer
`UnknownPeerError`; database failures `StoreError` and its subclasses
(`StoreKeyError` wrong data key, `StoreSchemaError` newer database,
`StoreCorruptError` a sealed value failed authentication). Each method is one
transaction: when it returns, its writes are committed and survive kill -9
(WAL, synchronous=NORMAL; power loss needs `durable=True`, see base.py).
Encrypted at rest (AES-256-GCM, bound to table/column/row): message bodies,
display names, file names and paths. In the clear: fingerprints, addresses,
times, sizes, statuses, events, alerts, settings.

Opening and housekeeping (`Store`)
  open(path, data_key, *, durable=False, max_events=200_000, max_alerts=10_000) -> Store
  close() / context manager; checkpoint() folds the WAL in; schema_version

Peers (peers.py) and trust decisions (trust.py)
  record_handshake(identity_key, name, now, address=None) -> HandshakeOutcome
      after an authenticated handshake: verdict "new" (pinned now, trust on first
      use), "known", "name_clash" (its claimed name reads like the contact
      `clash_with`'s: the key is flagged, the contact untouched) or "refused"
      (blocked or retired: end the session)
  upsert_discovered(fp, name, host, port, now) -> PeerRecord   an mDNS hint: never
      renames a named peer or takes an address another peer proved (the node calls
      it for known keys and for advertised keys the user acts on, never per advert)
  forget_unproven() -> int   drop rows only adverts made (nothing proven, written,
      named or given by the user)
  set_local_name(fp, name | None) -> PeerRecord   the user's petname (refused when it
      reads like another contact's name)
  change_key(contact_fp, new_fp, now) -> PeerRecord   the user's explicit key change:
      the contact (history, petname, settings) moves to the new key, unverified; the
      old key stays as a retired row, refused from then on
  keep_apart(fp, local_name) -> PeerRecord   "someone else": a flagged key becomes a
      contact under its own petname
  block(fp, now) / unblock(fp) -> PeerRecord
  set_verified(fp, verified)             safety number compared or paired (pinned keys)
  trust_generation() -> int              moves with every decision above (the node polls
      it to apply `p2pmsg trust/rename/block` made while it runs)
  set_disappearing_ttl(fp, ttl | None)   the conversation's timer, seconds; math.inf =
      never (off here, whatever a default says), None = no timer of its own
  add_manual_address(host, port, now) -> Address   host:port to dial, owner unknown yet
  remove_address(host, port) -> bool
  get_peer(fp) -> PeerRecord | None;  list_peers() -> list[PeerRecord] (addresses, unread)
  resolve_peer(query) -> PeerRecord      petnames, then proven names, then >= 4-hex-digit
      fingerprint prefixes, then unproven advert names (see peers.resolve_among);
      raises UnknownPeerError / AmbiguousPeerError(candidates)
  peer_at_address(host, port) -> PeerRecord | None
  dial_candidates() -> list[(fp | None, Address)]

Messages (messages.py)
  enqueue_outgoing(fp, text, now, ttl=None) -> MessageRecord        status "queued"
  enqueue_outgoing_many(fp, texts, now, ttl=None) -> list[MessageRecord]   one transaction;
      ttl None = the conversation's timer
  enqueue_outgoing_batch(...) -> EnqueuedBatch   the same, ids and seqs only (hot path)
  mark_sent_many(fp, ids, now) -> changed ids                        queued -> sent
  mark_delivered_many(fp, ids, now) -> changed ids                   delivery receipt
  mark_read_many(fp, ids, now) -> changed ids    read receipt; starts disappearing deadline
  mark_failed_many(fp, ids) -> changed ids       give up on unacknowledged messages
      (receipts only touch our outgoing messages to that same peer; status never regresses)
  outbox(fp) -> list[MessageRecord]      queued + sent-unacknowledged, in sending order
  peers_with_outbox() -> list[fp]        whom to dial first
  insert_incoming_many(fp, [IncomingMessage], now) -> list[MessageRecord]   only the new
      ones (dedup by id across reconnects); acknowledge every id anyway
  insert_incoming_positions(fp, [IncomingMessage], now) -> [(position, seq)]   the same,
      without records (hot path)
  insert_incoming(fp, IncomingMessage, now) -> MessageRecord | None
  mark_conversation_read(fp, now) -> ids  unread incoming -> read; their read receipts
      are owed from now on (kept across restarts)
  read_receipts_due(fp) -> ids           owed read receipts, oldest first
  read_receipts_told(fp, ids)            handed to a live session: no longer owed
  conversation(fp, limit=200, before_seq=None) -> list[MessageRecord]  a page, oldest first
  get_message(id) -> MessageRecord | None;  unread_counts() -> {fp: n}
  purge_expired(now) -> {fp: [ids]}      delete bodies past their deadline (rows stay for dedup)
  next_expiry() -> float | None          when to call purge_expired next

Strangers (strangers.py): keys the user has not acted on (not named, verified, or written to)
  admit_incoming(fp, [IncomingMessage], now) -> IncomingAdmission   which may be stored:
      a stranger's within StrangerQuota (per key and all together); refused ones get no
      receipt, so the sender keeps them
  forget_strangers(now, *, connected=()) -> int   forget strangers that never said anything,
      idle a day, or the longest unseen beyond 1000

Security events and alerts (monitoring.py; the records: p2pmsg.security_events)
  append_events([SecurityEvent]) / append_event(e)   bounded: pruned by value (routine first)
  recent_events(limit=500, *, event=None, peer=None, since=None) -> list (oldest first)
  count_events(event=None, since=None) -> int
  add_alert(Alert) -> Alert (with id, "unread");  list_alerts(limit=100, *,
      unacknowledged_only=False, states=None)  (a stored alert outside the schema:
      StoreCorruptError);  get_alerts(ids) -> list[Alert]
  set_alert_state(ids | None, state, now) -> AlertStateChange   the user's lifecycle:
      unread -> acknowledged -> dismissed, false_alarm from any; forward only, all or
      nothing (an unknown id: UnknownAlertError); moves the alert generation
  acknowledge_alerts(ids | None, now) -> int;  alert_counts() -> {state: n}
  false_alarms(since) -> list[Alert]     marks the monitor's quieting policy needs
  alert_generation() -> int;  alerts_changed_since(generation) -> list[Alert]   (the
      node polls these to pick up `p2pmsg alerts --ack` made while it runs)

Transfers (transfers.py)
  create_transfer(fp, **NewTransfer) -> TransferRecord;  insert_transfer(fp, **NewTransfer)
      (the same without reading it back); NewTransfer: transfer_id, direction, name, size,
      chunk_size, now, and optionally sha256, state="offered", source_path, bundle_id,
      partial_path, bytes_done
  update_transfer(id, now, *, state=None, bytes_done=None, partial_path=..., error=...)
  finish_transfer(id, state, now, *, final_path=None, error=None, sha256=None)   final
      state; erases source/partial paths, keeps the record (and the digest, known at the end)
  get_transfer(id); list_transfers(fp=None, limit=100); incomplete_transfers() (to resume)
  remove_transfer(id) -> bool;  list_transfers(..., entries=False) leaves out the files of
      folder offers;  bundle_transfers(bundle_id) lists them

Folder offers (bundles.py, schema v9)
  create_bundle(fp, *, bundle_id, direction, name, entries, now, state="offered", error=None)
  update_bundle(id, now, *, state=None, folder=None, files_done=None, error=None)
  get_bundle(id); list_bundles(fp=None, limit=100, *, manifests=True); incomplete_bundles()
  ended_bundles(limit): the latest ended offers, without manifests (as manifests=False)

Groups (groups.py, schema v10)
  save_group_items(group_id, creator_fp, [StoredGroupItem], now) -> new rows   makes the
      group's row on first use; items as their authors signed them (bodies sealed);
      GroupStoreFullError past MAX_GROUPS groups or MAX_POSTS_PER_GROUP posts
  group_ids() -> list[bytes];  load_group(id) -> StoredGroup | None (create + items, for
      GroupReplica.restore);  delete_group(id) -> bool
  (v12) a post's text apart from its body (None: a stub); disappearing posts:
      start_group_deadlines(id, [(author, seq)], now) -> {post: deadline} (shown: +ttl);
      purge_group_texts(now) -> {group: [(author, seq)]} deletes texts, keeps bodies;
      next_group_expiry() -> float | None;  set_group_ttl(id, ttl) / group_ttl(id): the
      group's own timer for new posts (math.inf: off), as set_disappearing_ttl for chats

Introductions (introductions.py, schema v11)
  add_introductions([Introduction]) -> new notes   "introduced by Bob in 'team'": one per
      (key, group), at most MAX_PER_PEER per key; PeerRecord.introductions carries them;
      introductions(fp) -> tuple[Introduction, ...]

Group receipts (group_receipts.py, schema v12)
  raise_group_marks(group_id, [GroupMark]) -> the marks that grew   (member, author) ->
      (delivered, read) post seqs, only ever raised;  group_marks(group_id) -> [GroupMark]

Settings (settings.py)
  load_settings() -> Settings (typed, defaults filled);  update_settings(**values) -> Settings
      (validated, all or nothing, ConfigError);  reset_setting(name) -> Settings

Benchmark: `python -m p2pmsg.store.bench` or `bench.measure_hot_path(dir)`.
"""

from __future__ import annotations

from p2pmsg.store.async_store import AsyncStore
from p2pmsg.store.group_receipts import GroupMark
from p2pmsg.store.groups import GroupStoreFullError, StoredGroup, StoredGroupItem
from p2pmsg.store.monitoring import AlertStateChange
from p2pmsg.store.records import (
    Address,
    BundleRecord,
    EnqueuedBatch,
    HandshakeOutcome,
    IncomingMessage,
    Introduction,
    MessageRecord,
    PeerRecord,
    TransferRecord,
)
from p2pmsg.store.settings import Settings
from p2pmsg.store.store import DB_FILENAME, Store
from p2pmsg.store.strangers import IncomingAdmission, StrangerQuota

__all__ = [
    "DB_FILENAME",
    "Address",
    "AlertStateChange",
    "AsyncStore",
    "BundleRecord",
    "EnqueuedBatch",
    "GroupMark",
    "GroupStoreFullError",
    "HandshakeOutcome",
    "IncomingAdmission",
    "IncomingMessage",
    "Introduction",
    "MessageRecord",
    "PeerRecord",
    "Settings",
    "Store",
    "StoredGroup",
    "StoredGroupItem",
    "StrangerQuota",
    "TransferRecord",
]
