/*
 * datastore: chand-guest's durable record store (SQLite, WAL mode).
 *
 * One SQLite file (by default CHAND_DBDIR/guest.db, /var/lib/chand/guest.db)
 * holds the records the host delivered and the channel position, written
 * together in one transaction: a frame's records and the advance of the
 * position commit or vanish together, so a crash (of the daemon or of the
 * VM) never loses a committed update and never applies one twice.  Many
 * frames can be applied in one transaction (group commit: one fsync for
 * the lot).  Only chand-guest writes the file; guest applications read it
 * with `sqlite3 -readonly`, `chanctl`, or chand-guest's local socket.
 *
 * Durability.  The file is in WAL mode.  DS_SYNC_FULL (the default,
 * PRAGMA synchronous=FULL) fsyncs the WAL at every commit: a committed
 * transaction survives power loss, so the guest may acknowledge a frame as
 * soon as datastore_commit() returns.  DS_SYNC_NORMAL fsyncs only at
 * checkpoints: much cheaper, still atomic and never corrupt, and a crash of
 * chand-guest alone loses nothing, but a power loss or kernel crash can
 * roll the store back by the last few transactions.  Records and position
 * always roll back together, so delivery stays exactly-once as seen by the
 * store, but the host will have seen acknowledgements for frames the guest
 * no longer has: use NORMAL only where the host resyncs from the position
 * the guest reports after every guest restart (chand's protocol does).
 *
 * Schema (version 5; apps may read it, never write it):
 *
 *   meta(id INTEGER PRIMARY KEY CHECK (id = 1),
 *        schema_version INTEGER NOT NULL,   -- 5
 *        created_at INTEGER NOT NULL,       -- unix ms
 *        created_by TEXT NOT NULL)          -- e.g. "chand 0.1.0"
 *
 *   records(key TEXT PRIMARY KEY NOT NULL,  -- UTF-8, 1..DS_KEY_MAX bytes
 *           value TEXT NOT NULL,            -- JSON text, as the host sent it
 *           version INTEGER NOT NULL,       -- host-assigned record version
 *           updated_at INTEGER NOT NULL,    -- unix ms of the last change
 *           apply_count INTEGER NOT NULL,   -- changes applied since created
 *           seen_gen INTEGER NOT NULL)      -- internal: snapshot marking
 *
 *   channel(id INTEGER PRIMARY KEY CHECK (id = 1),
 *           guest_epoch INTEGER NOT NULL,   -- random 1..2^32-1, per file
 *           host_epoch INTEGER NOT NULL,    -- 0 until the first snapshot
 *           position INTEGER NOT NULL,      -- last applied frame seq
 *           snapshot_state TEXT NOT NULL,   -- 'none' | 'active' | 'complete'
 *           snapshot_gen INTEGER NOT NULL,  -- bumped by each snapshot begin
 *           snapshot_end INTEGER NOT NULL,  -- last seq of the snapshot, 0 if
 *                                           -- not (yet) known
 *           frames_applied INTEGER NOT NULL,-- frames applied, ever
 *           ops_applied INTEGER NOT NULL,   -- record ops in those frames
 *           chan_id INTEGER NOT NULL,       -- the channel the file serves
 *                                           -- (0: not recorded yet)
 *           clones INTEGER NOT NULL,        -- clones detected, ever
 *           clone_of INTEGER NOT NULL)      -- parent's chan-id at the last
 *                                           -- clone detected (0: none)
 *
 *   published(key TEXT PRIMARY KEY NOT NULL,-- UTF-8, 1..DS_PUB_KEY_MAX bytes
 *             value TEXT,                 -- JSON text; NULL once withdrawn
 *             version INTEGER NOT NULL,   -- from publish_counter, >= 1
 *             deleted INTEGER NOT NULL,   -- 1: withdrawn (a tombstone)
 *             acked_version INTEGER NOT NULL, -- highest version the host
 *                                         -- acknowledged (0: none)
 *             updated_at INTEGER NOT NULL)-- unix ms of the last change
 *   (index published_by_version on version)
 *
 *   publish_counter(id INTEGER PRIMARY KEY CHECK (id = 1),
 *                   last_version INTEGER NOT NULL) -- the last version given
 *
 *   objects(path TEXT PRIMARY KEY,        -- absolute, normalized
 *           digest TEXT NOT NULL,         -- sha256, 64 lowercase hex
 *           size INTEGER NOT NULL,        -- bytes
 *           flags TEXT NOT NULL,          -- JSON array of strings, sorted
 *           params TEXT NOT NULL,         -- JSON object string -> string
 *           added_at INTEGER NOT NULL)    -- unix ms the path got the digest
 *   (index objects_by_digest on digest)
 *
 *   handled(key TEXT PRIMARY KEY NOT NULL,  -- a delivered record's key
 *           version INTEGER NOT NULL,       -- its version a handler ran for
 *           status TEXT NOT NULL,           -- 'ok' | 'failed'
 *           handled_at INTEGER NOT NULL)    -- unix ms
 *
 * e.g. `sqlite3 -readonly guest.db "SELECT value FROM records WHERE
 * key = 'net/dns'"`.  The file's PRAGMA application_id is 0x4348414e
 * ("CHAN").  Opening a file with a newer schema_version is refused
 * (ENOTSUP) without touching it; an older file is upgraded in place, in
 * one transaction, when it is opened: version 1 lacks the published and
 * publish_counter tables, version 2 the objects table, version 3 the
 * handled table, version 4 the channel's identity columns (an upgraded
 * file records its chan-id at the first datastore_claim_chan_id()).
 *
 * Semantics.
 *   - Exactly-once: datastore_apply() of a frame whose seq is <= the stored
 *     position (same host epoch) does nothing and says so.  Frames must be
 *     applied in order; gaps are allowed (a chunked frame is applied at its
 *     last chunk's seq).  A frame from another host epoch is refused
 *     (ESTALE): a new host epoch is adopted only by datastore_snapshot_begin()
 *     or datastore_rebase().  Within one host epoch the position never goes
 *     backwards.
 *   - Last writer by seq: a put replaces the stored value whatever the
 *     versions say (the host's sequence already orders updates, and a
 *     snapshot replaces everything); the version is stored as sent and
 *     reported back.  A put that carries the stored value and version
 *     changes nothing (no write, no notification, apply_count unchanged).
 *     A delete of an absent key is a no-op.  Every op of an applied frame
 *     counts in ops_applied, no-op or not.
 *   - Snapshot/reconcile: datastore_snapshot_begin() adopts a host epoch,
 *     resets the position and bumps snapshot_gen; every record put while the
 *     snapshot is active is marked with that generation;
 *     datastore_snapshot_finish() deletes every unmarked record and records
 *     completion in the same transaction.  Progress lives in the file, so a
 *     crash mid-snapshot reopens as 'active' (never 'complete'), and the
 *     snapshot can continue from the stored position or start over.
 *   - Change notifications go to the callback registered with
 *     datastore_set_change_cb(), after a successful commit only, one per
 *     change in the order applied (a key changed twice is reported twice).
 *     They concern the records table only, never published.
 *
 * Published records (doc/SESSION.md, "Upstream").  The published table
 * holds what guest applications publish for the host, independent of the
 * records the host delivers.  Each publication or withdrawal takes the next
 * number of publish_counter, a counter that only grows, as the key's
 * version, so that a key's versions grow across withdrawals and
 * re-publications and "version > V" names everything changed since V.  A
 * withdrawal leaves a tombstone (deleted = 1, value NULL) until the host
 * has acknowledged it (or a snapshot without it).  A record is pending
 * while acked_version < version, delivered otherwise.  Keys follow the
 * wire's record rules (1..DS_PUB_KEY_MAX bytes of UTF-8, no NUL) and may
 * not start with one of DS_PUB_RESERVED_PREFIXES ("from/": records
 * chand-host relays; "obj/": the object records below; "result/": the
 * handler results below and the responses to requests, call.h); values
 * are JSON
 * texts the wire
 * accepts (no duplicate member names, nesting at most DS_PUB_MAX_DEPTH,
 * integers within 64 bits), at most DS_PUB_VALUE_MAX bytes once rendered
 * compactly, which is the form stored.
 *
 * Objects (doc/objects.md).  An object is a file known by its sha256
 * digest.  The objects table maps each registered path to the digest,
 * size, flags and params of its content; several paths may share a
 * digest.  For every digest that has at least one path the published
 * table holds the record "obj/<digest>" with the value
 *
 *   {"size": N, "paths": [P...], "flags": [F...], "params": {K: V...}}
 *
 * (compact JSON, members in this order): the paths sorted bytewise, the
 * flags the sorted union of every path's flags, the params every path's
 * params merged (for a name two paths give different values, the value of
 * the path that sorts first).  datastore_object_add() and
 * datastore_object_remove() change the objects rows and that record in one
 * transaction, so the two never disagree, even after a crash; the record
 * of the digest's last path is withdrawn with it.  The record is
 * republished only if its value changes.  Object records count against
 * the publication limits like any other.
 *
 * Handled records (doc/objects.md, "Handlers").  chand-guest's handler
 * runner (handler.h) notes in the handled table which version of a
 * delivered record a handler ran for, and publishes the outcome as the
 * record "result/<key>" in the same transaction, so that the two agree
 * after a crash.  Forgetting a key deletes its row and withdraws its
 * result.  A handler may also add flags to the rows of one object
 * (datastore_object_add_flags()), which republishes its record.
 *
 * Clones (doc/objects.md, "Clones").  The channel row names the chan-id
 * the file serves.  A file opened for another chan-id was copied into a
 * new VM: datastore_claim_chan_id() then makes it forget, in one
 * transaction, what belongs to its parent's channel: it takes a new
 * random guest epoch and forgets the host epoch and position (the host
 * sends the new VM a full snapshot), forgets every acknowledgement of
 * the published table and drops its tombstones (the new VM's host holds
 * none of its records: all are sent again), empties the handled table
 * and drops the parent's result records (the clone runs its handlers and
 * reports on its own), and drops the parent's requests ("call/" records,
 * call.h: requests to the parent are never run in the clone; its host
 * sends the clone's own).  Other records, published records and objects
 * stay.
 *
 * Errors: functions that act return 0 or a positive errno and leave a
 * message for datastore_last_error():
 *   EINVAL   bad argument, invalid key/value, or call out of sequence
 *            (e.g. apply outside a transaction)
 *   ESTALE   frame from a host epoch other than the stored one
 *   ENOTSUP  file has a newer schema version, or WAL is unavailable
 *   EBADMSG  not an SQLite file, not a chand datastore, or corrupt
 *   EBUSY    another process holds the write lock
 *   ENOENT   (datastore_get) no such key; (open) missing directory;
 *            (datastore_unpublish) no such published record
 *   EPERM    a published key under a reserved prefix
 *   EDQUOT   a publication over a limit set with
 *            datastore_set_publish_limits(), or more than DS_OBJ_MAX_PATHS
 *            paths for one digest
 *   ENOSPC, EFBIG, EROFS, EACCES, ENOMEM, EIO and other I/O errnos.
 *
 * A struct datastore is not thread-safe: use it from one thread.
 */
#ifndef DATASTORE_H
#define DATASTORE_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct datastore;

/* Version of the schema described above. */
#define DS_SCHEMA_VERSION 5

/* PRAGMA application_id of a chand datastore: "CHAN". */
#define DS_APPLICATION_ID 0x4348414e

/* Longest key accepted, in bytes. */
#define DS_KEY_MAX 4096

/* Largest seq/position (SQLite integers are signed 64-bit). */
#define DS_SEQ_MAX INT64_MAX

/* Published records: the wire's key rules (chan-wire's record batches),
 * the reserved prefix of relayed records, the value limits. */
#define DS_PUB_KEY_MAX 256                  /* CHAN_WIRE_MAX_KEY_LEN. */
#define DS_PUB_RESERVED_PREFIXES \
    { "from/", DS_OBJ_KEY_PREFIX, DS_RESULT_KEY_PREFIX }
#define DS_PUB_MAX_DEPTH 32                 /* CHAN_WIRE_DEFAULT_MAX_DEPTH. */
#define DS_PUB_VALUE_MAX (1024 * 1024)      /* Bytes of compact JSON. */

/* Objects (see above). */
#define DS_OBJ_KEY_PREFIX "obj/"            /* + the digest: the record. */
#define DS_OBJ_DIGEST_LEN 64                /* sha256, lowercase hex. */
#define DS_OBJ_PATH_MAX 4096                /* Bytes of a path. */
#define DS_OBJ_MAX_PATHS 64                 /* Paths of one digest. */
#define DS_OBJ_MAX_FLAGS 16                 /* Flags of one path. */
#define DS_OBJ_MAX_PARAMS 16                /* Params of one path. */
#define DS_OBJ_NAME_MAX 32                  /* Bytes of a flag or a param
                                             * name: [a-z0-9_-]. */
#define DS_OBJ_PARAM_VALUE_MAX 256          /* Bytes of a param value. */

/* Handled records (see above). */
#define DS_RESULT_KEY_PREFIX "result/"      /* + the record's key. */
#define DS_CALL_KEY_PREFIX "call/"          /* Requests (call.h): a clone
                                             * drops its parent's. */

enum ds_sync {
    DS_SYNC_FULL,               /* fsync at every commit (default). */
    DS_SYNC_NORMAL,             /* fsync at checkpoints; see above. */
};

struct datastore_options {
    enum ds_sync sync;
    uint32_t guest_epoch;       /* The guest epoch a file created by this
                                 * open gets; 0: a random one.  An existing
                                 * file keeps its own.  (For replaying a
                                 * capture into a fresh store, whose SYNC
                                 * names the captured store's epoch.) */
};

enum ds_op {
    DS_PUT,
    DS_DELETE,
};

/* One record operation of a frame.  All pointers are borrowed for the
 * duration of the call. */
struct ds_record {
    enum ds_op op;
    const char *key;            /* UTF-8, 1..DS_KEY_MAX bytes. */
    const char *value;          /* DS_PUT: JSON text (UTF-8), non-NULL.
                                 * DS_DELETE: ignored. */
    int64_t version;            /* DS_PUT: host's version.  DS_DELETE:
                                 * ignored. */
};

enum ds_snapshot {
    DS_SNAPSHOT_NONE,           /* No snapshot ever began. */
    DS_SNAPSHOT_ACTIVE,         /* Begun, not finished: the records are a
                                 * mix of old and new state. */
    DS_SNAPSHOT_COMPLETE,       /* The last snapshot finished. */
};

/* "none", "active", "complete" (the snapshot_state column); "?" for an
 * invalid value. */
const char *ds_snapshot_to_string(enum ds_snapshot);

/* The channel row, as seen by the calling connection (inside a transaction:
 * including its uncommitted changes). */
struct ds_state {
    uint32_t guest_epoch;       /* Random, nonzero, fixed for this file. */
    uint32_t host_epoch;        /* 0 until a snapshot begins or a rebase. */
    uint64_t position;          /* Last applied frame seq in host_epoch. */
    enum ds_snapshot snapshot;
    uint64_t snapshot_gen;
    uint64_t snapshot_end;      /* Seq of the last frame of the latest
                                 * snapshot, as set by
                                 * datastore_set_snapshot_end(); 0 if not
                                 * known.  Reset to 0 by
                                 * datastore_snapshot_begin(), kept by
                                 * datastore_snapshot_finish(). */
    uint64_t frames_applied;    /* Frames applied over the file's life. */
    uint64_t ops_applied;       /* Record ops in those frames. */
    uint32_t chan_id;           /* The channel the file serves (0: not
                                 * recorded yet). */
    uint64_t clones;            /* Clones detected over the file's life. */
    uint32_t clone_of;          /* The chan-id of the parent, at the last
                                 * clone detected (0: none). */
};

/* One change, passed to the change callback. */
struct ds_change {
    const char *key;            /* Borrowed for the callback's duration. */
    enum ds_op op;              /* DS_PUT (created or changed) or DS_DELETE
                                 * (deleted by a frame or by reconcile). */
    int64_t version;            /* DS_PUT: the new version; else 0. */
};

/* Called by datastore_commit() for each change the commit made durable.
 * The callback may read the datastore and may even begin a new
 * transaction. */
typedef void datastore_change_cb(void *aux, const struct ds_change *);

/* Opening and closing. */

/* Opens the datastore at 'path', creating the file and the schema if the
 * file does not exist or is empty (with a fresh random guest_epoch).  The
 * parent directory must exist.  Refuses files that are not chand
 * datastores or have another schema version without modifying them.
 * On success stores a new handle in '*dsp' (the caller owns it and frees it
 * with datastore_close()) and returns 0; on failure stores NULL and
 * returns a positive errno (see above).  'path' is copied. */
int datastore_open(const char *path, struct datastore **dsp);

/* Same, with 'options' (NULL means defaults: all-zero options). */
int datastore_open_opts(const char *path,
                        const struct datastore_options *options,
                        struct datastore **dsp);

/* Rolls back any open transaction (without notifications) and frees 'ds'.
 * NULL is a no-op. */
void datastore_close(struct datastore *ds);

/* Message describing the most recent failure of a datastore function on
 * the calling thread ("" if none).  Owned by the module: valid until the
 * next datastore call on this thread. */
const char *datastore_last_error(void);

/* Registers 'cb' (NULL: none) to be called with 'aux' after each commit;
 * replaces any earlier callback.  Changes of a transaction that is open
 * when the callback is set are collected only from then on. */
void datastore_set_change_cb(struct datastore *ds, datastore_change_cb *cb,
                             void *aux);

/* Stores in the datastore that it serves channel 'chan_id' (nonzero).  If
 * it served another one, the file is a clone: resets what belongs to the
 * parent's channel (see "Clones" above), counts the clone and notes the
 * parent's chan-id, in the same transaction.  Stores in '*prevp' the
 * chan-id the file served before (0: none recorded; 'chan_id': the same
 * channel, nothing changed).  Must be called outside a transaction (it
 * commits one of its own).  Returns 0, EINVAL or an I/O error. */
int datastore_claim_chan_id(struct datastore *ds, uint32_t chan_id,
                            uint32_t *prevp);

/* Transactions.  Every function that writes must be called between
 * datastore_begin() and datastore_commit()/datastore_rollback(). */

/* Starts a write transaction (takes the file's write lock; EBUSY if another
 * process holds it for more than a second).  EINVAL if one is open. */
int datastore_begin(struct datastore *ds);

/* Makes the transaction durable (per the sync mode), then calls the change
 * callback for its changes.  On failure the transaction is rolled back and
 * no callback is called.  EINVAL if no transaction is open. */
int datastore_commit(struct datastore *ds);

/* Discards the open transaction, if any, and its pending notifications. */
void datastore_rollback(struct datastore *ds);

/* True if a transaction is open.  (An I/O error can make SQLite abort a
 * transaction by itself; the failing call then returns the error and this
 * becomes false.) */
bool datastore_in_transaction(const struct datastore *ds);

/* Applies the frame ('host_epoch', 'seq') carrying the 'n' operations in
 * 'recs' (borrowed; may be NULL if 'n' is 0) in order, and advances the
 * position to 'seq' (the channel row is written once per transaction, by
 * datastore_commit(), with the position and counters of all the frames
 * applied in it).  If 'seq' <= the stored position, does nothing:
 * *appliedp (if nonnull) says whether the frame was applied.  The frame is
 * atomic: on any error it has no effect.  Returns 0, EINVAL (no
 * transaction, seq > DS_SEQ_MAX, invalid record: empty, overlong or
 * non-UTF-8 key, NULL or non-UTF-8 value, unknown op), ESTALE
 * ('host_epoch' is not the stored host epoch, including before the first
 * snapshot), or an I/O error. */
int datastore_apply(struct datastore *ds, uint32_t host_epoch, uint64_t seq,
                    const struct ds_record *recs, size_t n, bool *appliedp);

/* Snapshot and reconcile (resync). */

/* Begins a snapshot in host epoch 'host_epoch' (nonzero): the position
 * becomes 'base_seq' (the snapshot's frames follow it; usually 0), the
 * state 'active', and snapshot_gen is bumped, so an interrupted earlier
 * snapshot starts over.  If 'host_epoch' is the stored epoch, 'base_seq'
 * may not be below the stored position (EINVAL).  Records are untouched
 * until datastore_snapshot_finish(). */
int datastore_snapshot_begin(struct datastore *ds, uint32_t host_epoch,
                             uint64_t base_seq);

/* Records in the channel row that the active snapshot ends with the frame
 * whose seq is 'snapshot_end' (so that a daemon that restarts in the middle
 * of a snapshot knows where it ends; the datastore itself does not act on
 * it).  EINVAL outside a transaction, if no snapshot is active, or if
 * 'snapshot_end' exceeds DS_SEQ_MAX. */
int datastore_set_snapshot_end(struct datastore *ds, uint64_t snapshot_end);

/* Deletes every record not put since the active snapshot began, and marks
 * the snapshot complete, in the current transaction.  Stores the number of
 * records deleted in '*n_deletedp' if nonnull.  EINVAL if no snapshot is
 * active. */
int datastore_snapshot_finish(struct datastore *ds, uint64_t *n_deletedp);

/* Adopts host epoch 'host_epoch' (nonzero) with position 'position'
 * without touching records, for a host that resumes from what the guest
 * reports instead of sending a snapshot.  The same rules as
 * datastore_snapshot_begin() apply; an active snapshot stays active. */
int datastore_rebase(struct datastore *ds, uint32_t host_epoch,
                     uint64_t position);

/* Reads.  These work inside or outside a transaction (inside, they see its
 * uncommitted changes). */

/* Copies the channel state into '*state'. */
void datastore_get_state(const struct datastore *ds, struct ds_state *state);

/* Looks up 'key'.  On success returns 0 and, for each nonnull output,
 * stores a newly allocated copy of the JSON text in '*valuep' (the caller
 * frees it with free()) and the version in '*versionp'.  Returns ENOENT if
 * there is no such record (outputs untouched), EINVAL for an invalid key,
 * or an I/O error. */
int datastore_get(struct datastore *ds, const char *key, char **valuep,
                  int64_t *versionp);

/* Called by datastore_list() for each record.  'key' and 'value' are
 * borrowed for the call.  Returns 0 to continue; anything else stops the
 * listing, and datastore_list() returns it. */
typedef int datastore_list_cb(void *aux, const char *key, const char *value,
                              int64_t version);

/* Calls 'cb' for every record whose key starts with 'prefix' (NULL or "":
 * every record), in ascending bytewise key order.  'cb' must not write to
 * the datastore or list again (EBUSY).  Returns 0, the callback's nonzero
 * result, or an error. */
int datastore_list(struct datastore *ds, const char *prefix,
                   datastore_list_cb *cb, void *aux);

/* Stores the number of records in '*countp'. */
int datastore_count(struct datastore *ds, uint64_t *countp);

/* Runs SQLite's quick_check over the whole file (reads everything: for
 * operators, not for every start).  EBADMSG with the first problem in
 * datastore_last_error() if the file is damaged. */
int datastore_check(struct datastore *ds);

/* Published records (see above).
 *
 * The functions that write do so in the open transaction if there is one
 * (atomically: on error nothing of the call remains in it), else in a
 * transaction of their own that is committed before they return, so that
 * what they did is durable on return. */

/* One row of the published table, borrowed for a callback's duration. */
struct ds_published {
    const char *key;
    const char *value;          /* JSON text; NULL if withdrawn. */
    int64_t version;
    int64_t acked_version;      /* 0: never acknowledged. */
    bool deleted;               /* Withdrawn: a tombstone. */
};

/* True if 'p' is pending: the host has not acknowledged its version. */
static inline bool
ds_published_pending(const struct ds_published *p)
{
    return p->acked_version < p->version;
}

/* One acknowledgement: the host has version 'version' of 'key'
 * (borrowed). */
struct ds_pub_ack {
    const char *key;
    int64_t version;
};

/* Counts over the published rows a listing covered. */
struct ds_pub_counts {
    uint64_t records;           /* Not withdrawn. */
    uint64_t withdrawn;         /* Tombstones. */
    uint64_t pending;           /* Rows of either kind that are pending. */
};

/* Checks 'key' for publishing: 0, EINVAL (not 1..DS_PUB_KEY_MAX bytes of
 * UTF-8) or EPERM (under one of DS_PUB_RESERVED_PREFIXES), with a message
 * for datastore_last_error(). */
int datastore_check_published_key(const char *key);

/* Checks the JSON text 'value': 0 or EINVAL with a message.  If 'compactp'
 * is nonnull, stores there the compact rendering that would be stored (a
 * malloc()ed string the caller frees) on success. */
int datastore_check_published_value(const char *value, char **compactp);

/* The same for a value already parsed, 'v' (borrowed), such as the
 * parameter of a local API request: no text to parse. */
int datastore_check_published_json(const json_t *v, char **compactp);

/* What the host lets the VM publish (doc/chan-db.md, "Guest_Limits"),
 * as chand-host tells the guest.  0 means no limit. */
struct ds_pub_limits {
    uint64_t max_records;       /* Records held (not withdrawn). */
    uint64_t max_value_bytes;   /* Bytes of one value (compact JSON). */
    uint64_t max_total_bytes;   /* Bytes of the keys and values held. */
    uint64_t max_publish_rate;  /* Publications a second (a bucket of that
                                 * many, refilled at that rate). */
};

/* Sets the limits datastore_publish() enforces from now on ('limits'
 * copied; NULL: none, the default).  Records already held are never
 * touched by a lower limit. */
void datastore_set_publish_limits(struct datastore *ds,
                                  const struct ds_pub_limits *limits);

/* Copies the limits in force into '*limits' (all 0: none). */
void datastore_get_publish_limits(const struct datastore *ds,
                                  struct ds_pub_limits *limits);

/* Publishes 'value' (JSON text, borrowed) as 'key': inserts the record, or
 * replaces its value (a withdrawn key is published again), with the next
 * version, which it stores in '*versionp' if nonnull.  Returns 0, EINVAL
 * (bad key or value), EPERM (reserved key), EDQUOT (over a limit: the
 * message says which) or an I/O error. */
int datastore_publish(struct datastore *ds, const char *key,
                      const char *value, int64_t *versionp);

/* datastore_publish() of a key that datastore_check_published_key()
 * accepted and of 'compact', the text datastore_check_published_value() or
 * datastore_check_published_json() returned for the value: no second
 * check.  Returns 0, EDQUOT or an I/O error. */
int datastore_publish_checked(struct datastore *ds, const char *key,
                              const char *compact, int64_t *versionp);

/* Withdraws 'key': makes it a tombstone with the next version, stored in
 * '*versionp' if nonnull.  ENOENT if there is no such record or it is
 * already withdrawn; EINVAL, EPERM for a bad key. */
int datastore_unpublish(struct datastore *ds, const char *key,
                        int64_t *versionp);

/* Looks up published 'key' (tombstones included).  On success returns 0
 * and stores, for each nonnull output, a malloc()ed copy of the JSON text
 * (NULL for a tombstone; the caller frees it), the version, the acked
 * version and whether it is withdrawn.  ENOENT if there is no row. */
int datastore_get_published(struct datastore *ds, const char *key,
                            char **valuep, int64_t *versionp,
                            int64_t *acked_versionp, bool *deletedp);

/* Called for each published row; returns 0 to go on, anything else to
 * stop (the listing function then returns it).  It must not write to the
 * datastore or list again (EBUSY). */
typedef int datastore_published_cb(void *aux, const struct ds_published *);

/* Calls 'cb' (may be NULL: counting only) for every published row whose
 * key starts with 'prefix' (NULL or "": all), tombstones included if
 * 'withdrawn', in ascending bytewise key order, and stores the counts
 * over the rows matching 'prefix' (tombstones always counted) in
 * '*countsp' if nonnull.  Returns 0, the callback's result or an error. */
int datastore_list_published(struct datastore *ds, const char *prefix,
                             bool withdrawn, datastore_published_cb *cb,
                             void *aux, struct ds_pub_counts *countsp);

/* Calls 'cb' for every row, tombstones included, whose version is above
 * 'after', in ascending version order, at most 'limit' rows (0: no
 * limit).  What changed since 'after': the publisher's send queue. */
int datastore_published_since(struct datastore *ds, int64_t after,
                              size_t limit, datastore_published_cb *cb,
                              void *aux);

/* The last version given out (0 if none ever): every row's version is at
 * most this.  As of the open transaction, if any; no I/O. */
int64_t datastore_published_counter(const struct datastore *ds);

/* Records that the host acknowledged each of the 'n' (key, version) pairs
 * in 'acks': acked_version becomes that version unless it is already as
 * high (or the row no longer exists, or holds a lower version), and a
 * tombstone whose version is acknowledged is removed.  Stores the number
 * of tombstones removed in '*n_removedp' if nonnull. */
int datastore_ack_published(struct datastore *ds,
                            const struct ds_pub_ack *acks, size_t n,
                            uint64_t *n_removedp);

/* Removes every tombstone whose version is at most 'version' (after the
 * host acknowledged a snapshot taken at counter 'version', which carried
 * none of them).  Stores the number removed in '*n_removedp' if
 * nonnull. */
int datastore_purge_published(struct datastore *ds, int64_t version,
                              uint64_t *n_removedp);

/* Stores the number of pending published rows in '*np'. */
int datastore_count_pending(struct datastore *ds, uint64_t *np);

/* What the published records hold, as the limits count it: the rows not
 * withdrawn and the bytes of their keys and values. */
struct ds_pub_usage {
    uint64_t n_records;
    uint64_t total_bytes;
};

/* Stores in '*usage' what the published records hold.  The datastore
 * keeps these figures in memory, so that checking a publication against
 * the limits costs no scan: it counts them from the file in the first
 * transaction, and again in any transaction that finds the file changed by
 * another connection; every write of its own updates them.  Inside a
 * transaction: as of that transaction, no I/O; outside one, it opens and
 * rolls back one to bring them up to date.  Returns 0 or an error. */
int datastore_get_pub_usage(struct datastore *ds, struct ds_pub_usage *usage);

/* Objects (see above).  The writing functions behave like the published
 * records' ones: in the open transaction if there is one (atomically),
 * else in one of their own, committed before they return. */

/* One row of the objects table, borrowed for a callback's duration. */
struct ds_object {
    const char *path;
    const char *digest;
    int64_t size;
    const char *flags;          /* JSON array of strings, sorted. */
    const char *params;         /* JSON object, string to string. */
    int64_t added_at;           /* Unix ms. */
};

/* Check an object's path and digest as datastore_object_add() does: 0 or
 * EINVAL with a message for datastore_last_error(). */
int datastore_check_object_path(const char *path);
int datastore_check_object_digest(const char *digest);

/* Registers 'path' (absolute, normalized: no empty, "." or ".."
 * component, no trailing "/", at most DS_OBJ_PATH_MAX bytes of UTF-8) as
 * holding the object 'digest' (DS_OBJ_DIGEST_LEN lowercase hex digits) of
 * 'size' bytes (>= 0), with the JSON texts 'flags_json' (an array of at
 * most DS_OBJ_MAX_FLAGS names, duplicates ignored; NULL: none) and
 * 'params_json' (an object of at most DS_OBJ_MAX_PARAMS names to strings
 * of at most DS_OBJ_PARAM_VALUE_MAX bytes; NULL: none), all borrowed.  A
 * path registered before is replaced; if its digest changes, the records
 * of both digests are republished.  Returns 0, EINVAL (a bad argument, or
 * a size other than that of the digest's other paths), EDQUOT (the digest
 * already has DS_OBJ_MAX_PATHS paths, or a publication limit) or an I/O
 * error, with a message. */
int datastore_object_add(struct datastore *ds, const char *path,
                         const char *digest, int64_t size,
                         const char *flags_json, const char *params_json);

/* Unregisters 'path' (borrowed) and republishes its digest's record, or
 * withdraws it if that was the digest's last path.  ENOENT if 'path' is
 * not registered; EINVAL for a bad path. */
int datastore_object_remove(struct datastore *ds, const char *path);

/* Called for each object row; returns 0 to go on, anything else to stop
 * (the listing function then returns it).  It must not write to the
 * datastore or list again (EBUSY). */
typedef int datastore_object_cb(void *aux, const struct ds_object *);

/* Calls 'cb' for every row of the objects table whose digest is 'digest'
 * (NULL: every row), in ascending bytewise path order.  Returns 0, the
 * callback's result, EINVAL for a bad digest, or an error. */
int datastore_list_objects(struct datastore *ds, const char *digest,
                           datastore_object_cb *cb, void *aux);

/* Adds the flags of 'flags_json' (a JSON array of flag names, borrowed,
 * as for datastore_object_add()) to every row of 'digest' (borrowed), and
 * republishes its record if that changes it.  Returns 0, ENOENT (no path
 * holds 'digest'), EINVAL (a bad digest or flags, or a row would get more
 * than DS_OBJ_MAX_FLAGS flags), EDQUOT (a publication limit) or an I/O
 * error, with a message.  In the open transaction if there is one, else
 * in one of its own. */
int datastore_object_add_flags(struct datastore *ds, const char *digest,
                               const char *flags_json);

/* Handled records (see above).  The writing functions work like the
 * published records' ones: in the open transaction if there is one
 * (atomically), else in one of their own, committed before they
 * return. */

/* Stores in '*versionp' the version of record 'key' (borrowed) that was
 * handled.  Returns 0, ENOENT if none was, or an I/O error. */
int datastore_get_handled(struct datastore *ds, const char *key,
                          int64_t *versionp);

/* Notes that version 'version' of record 'key' (borrowed) was handled
 * ('ok' or not) and, if 'result_json' (borrowed) is nonnull, publishes it
 * as DS_RESULT_KEY_PREFIX + 'key' in the same transaction.  Returns 0,
 * EINVAL (a bad key or value, or a result key longer than DS_PUB_KEY_MAX),
 * EDQUOT (a publication limit: then nothing is written) or an I/O
 * error. */
int datastore_set_handled(struct datastore *ds, const char *key,
                          int64_t version, bool ok, const char *result_json);

/* Forgets record 'key' (borrowed): deletes its handled row, if any, and
 * withdraws its result record, if one is published.  Returns 0, EINVAL or
 * an I/O error. */
int datastore_forget_handled(struct datastore *ds, const char *key);

/* Called for each handled row ('key' borrowed for the call); returns 0 to
 * go on, anything else to stop.  It must not write to the datastore or
 * list again (EBUSY). */
typedef int datastore_handled_cb(void *aux, const char *key,
                                 int64_t version, bool ok,
                                 int64_t handled_at);

/* Calls 'cb' for every handled row, in ascending bytewise key order.
 * Returns 0, the callback's result or an error. */
int datastore_list_handled(struct datastore *ds, datastore_handled_cb *cb,
                           void *aux);

#endif /* datastore.h */
