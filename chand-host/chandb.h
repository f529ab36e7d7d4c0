/*
 * chandb: chand-host's view of the Chan DB, the control plane's OVSDB
 * database (schema: ovsdb/chan.ovsschema, doc/chan-db.md).
 *
 * Reads desired state: Record rows aimed at one VM (vm = name) or at all VMs
 * (vm empty).  A VM's desired state is its own records plus the all-VM
 * records for keys it has no record of its own for.  Records whose key or
 * value is invalid are left out and get Record.error written back.
 *
 * Writes observed state: one Channel row per VM (state, epochs, what the VM
 * has applied, counts, whether it is in sync, statistics).  Writes are
 * coalesced: at most one transaction per VM in flight, the latest state
 * wins, identical states are not written again.
 */
#ifndef CHANDB_H
#define CHANDB_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define CHANDB_NAME "Chan"

/* A desired entry for one key: a JSON array [version, value_text, value]
 * where version is an integer, value_text the Record's JSON text and value
 * its parsed form, or null for a plain string literal, which is not parsed
 * (the channel sends its text as it is). */

struct chandb_channel_state {
    const char *vm;
    uint32_t chan_id;
    uint16_t vid;
    const char *iface;
    const char *chassis;        /* The chand-host serving it, or NULL. */
    const char *state;          /* "down", "connecting", "ready", ... */
    const char *reason;         /* May be NULL. */
    uint32_t host_epoch;
    uint32_t guest_epoch;
    const json_t *applied;      /* Borrowed: key -> [version, text]. */
    const json_t *applied_changed;  /* Borrowed: key -> true, the keys of
                                     * 'applied' that changed since the
                                     * previous state given for this VM;
                                     * NULL: any may have. */
    char applied_digest[17];    /* Of 'applied' with its texts (channel.h),
                                 * "" if unknown. */
    size_t desired_count;
    bool synced;
    const json_t *statistics;   /* Borrowed: name -> integer. */
    const json_t *errors;       /* Borrowed: key -> reason. */
    uint64_t applied_seq;       /* Seq 'applied' is exact at, 0 if none. */
    int64_t claim;              /* Claim number (claim.h). */
    int64_t migrations;         /* Moves between chassis so far. */
    uint64_t sent_seq;          /* With 'sent': the last seq sent and the */
    const json_t *sent;         /* state after it (borrowed: key ->
                                 * [version, ...]); written on release. */
    uint64_t ack_mark;          /* The channel's ack mark (channel.h): the
                                 * row shows every message acked up to it. */
};

/* What a Channel row says about a VM's channel, as an earlier chand-host
 * run left it: enough to go on with the same session after a restart. */
struct chandb_prior {
    uint32_t host_epoch;
    uint32_t guest_epoch;
    uint64_t applied_seq;       /* 0: 'applied' is not exact. */
    json_t *applied;            /* New reference: key -> [version, null]. */
    char applied_digest[17];    /* chandb_applied_digest() of the applied
                                 * state, "" if unknown. */
    uint64_t sent_seq;          /* 0, or the last seq the host sent... */
    json_t *sent;               /* ...and the state after it (new
                                 * reference, or NULL). */
    bool other_chassis;         /* Written by another chassis (a
                                 * migration). */
};

/* What chand-host monitors of the Chan DB: every row (needed to derive
 * relayed records and object actions), or only what concerns this
 * chassis's VMs.  AUTO: all for a local unix: Chan DB, own otherwise. */
enum chandb_monitor {
    CHANDB_MONITOR_AUTO,
    CHANDB_MONITOR_ALL,
    CHANDB_MONITOR_OWN,
};

struct chandb *chandb_create(const char *remote, enum chandb_monitor);
void chandb_destroy(struct chandb *);
void chandb_run(struct chandb *);
void chandb_wait(struct chandb *);

bool chandb_is_connected(const struct chandb *);

/* Changes whenever the desired state of some VM may have changed. */
uint64_t chandb_get_seqno(const struct chandb *);

/* Changes whenever some VM's keys (Channel_Key rows) may have changed. */
uint64_t chandb_get_keys_seqno(const struct chandb *);

/* Returns a new reference to VM 'vm''s message authentication keys: a JSON
 * array of [generation, "64 hex digits"], newest generation first.  Rows
 * with a malformed key are left out (and logged). */
json_t *chandb_keys(const struct chandb *, const char *vm);

/* Returns VM 'vm''s desired state as a JSON object key -> desired entry
 * (borrowed from 'db').  A caller may keep a reference: the object stays
 * up to date, changed in place, until chandb_desired_changed_all(). */
const json_t *chandb_desired(struct chandb *, const char *vm);

/* What changed in the desired states since chandb_desired_changes_clear():
 * if chandb_desired_changed_all(), anything may have (the Chan DB was read
 * afresh); otherwise chandb_desired_changes() (borrowed) maps a VM name,
 * or "" for the records of every VM, to an object whose names are the keys
 * that may have changed.  The desired states themselves (chandb_desired())
 * are already up to date: their objects change in place. */
bool chandb_desired_changed_all(const struct chandb *);
const json_t *chandb_desired_changes(const struct chandb *);
void chandb_desired_changes_clear(struct chandb *);

/* What a previous run left for a VM's channel: its Channel rows' applied
 * and sent states.  chand-host does not monitor those columns (they may
 * hold many keys and change with each of its writes); chandb_get_prior()
 * reads them with a "select" the first time it is asked about 'vm' and
 * returns CHANDB_PRIOR_PENDING until the reply is in, which bumps
 * chandb_get_claims_seqno().  Asked again within CHANDB_PRIOR_MAX_AGE_MS of
 * the reply, it returns CHANDB_PRIOR_FOUND and fills 'prior' (free it with
 * chandb_prior_destroy()) if a row of 'vm' holds an exact applied state (of
 * any chassis: the newest claim that has one), else CHANDB_PRIOR_NONE; the
 * reply is used once.  A reply older than that is read again.  A failed
 * read is retried a second later. */
enum chandb_prior_status {
    CHANDB_PRIOR_PENDING,
    CHANDB_PRIOR_NONE,
    CHANDB_PRIOR_FOUND,
};
#define CHANDB_PRIOR_MAX_AGE_MS 1000
enum chandb_prior_status chandb_get_prior(struct chandb *, const char *vm,
                                          struct chandb_prior *prior);
void chandb_prior_destroy(struct chandb_prior *);

/* Claims (claim.h).  This chassis's name: Channel rows are written and
 * looked up as (vm, chassis). */
void chandb_set_chassis(struct chandb *, const char *chassis);

/* The VMs whose rows a chand-host that does not monitor everything wants:
 * those provisioned on its bridge ('vms', borrowed: an object whose keys
 * are VM names).  The conditions change with them; chandb_is_ready() is
 * false until the server applied them. */
void chandb_set_vms(struct chandb *, const json_t *vms);
bool chandb_is_ready(const struct chandb *);
bool chandb_monitors_all(const struct chandb *);

/* Stores in '*rowsp' (the caller frees the array; its strings are borrowed
 * until the next chandb_run()) VM 'vm''s Channel rows, of every chassis,
 * and returns how many. */
struct claim_row;
size_t chandb_get_claims(const struct chandb *, const char *vm,
                         struct claim_row **rowsp);

/* Changes whenever some Channel row may have changed, or the conditions
 * were applied. */
uint64_t chandb_get_claims_seqno(const struct chandb *);

/* Returns a new JSON object vm -> true: the VMs this chassis has a Channel
 * row of. */
json_t *chandb_own_rows(const struct chandb *);

/* The chan-ids of the Channel rows this chand-host sees (every row with
 * --monitor=all; with own, those of its own rows and of the VMs on its
 * bridge): stores in '*idsp' (the caller frees it) those of the VMs other
 * than 'vm' and returns how many; stores in '*vm_idp' the chan-id of
 * 'vm''s row with the newest claim, or 0 if it has none. */
size_t chandb_chan_ids(const struct chandb *, const char *vm,
                       uint32_t **idsp, uint32_t *vm_idp);

/* Deletes this chassis's Channel row of VM 'vm' and forgets its writes
 * (after another chassis took the VM over). */
void chandb_delete_channel(struct chandb *, const char *vm);

/* host/status's "chan_db" member: remotes, monitoring, counters (new
 * reference). */
json_t *chandb_status_json(const struct chandb *);

/* Returns NULL, or a new JSON object vm -> ack mark: the Channel rows
 * committed in the Chan DB since the last call, each with the
 * chandb_channel_state.ack_mark it was written with.  The caller owns the
 * result. */
json_t *chandb_take_committed(struct chandb *);

/* Asks for the Channel row of 'st->vm' to hold 'st' (copied). */
void chandb_update_channel(struct chandb *,
                           const struct chandb_channel_state *st);

/* Upstream (doc/SESSION.md, "Upstream"): what the Chan DB holds of the
 * records VM 'vm' published.  'rows' is a new reference (the caller owns
 * it): key -> [version, value_text] of the VM's Guest_Record rows; 'epoch'
 * and 'position' come from its Channel row (0 and 0 if there is none). */
struct chandb_upstream {
    uint32_t epoch;
    uint64_t position;
    json_t *rows;
};
void chandb_get_upstream(const struct chandb *, const char *vm,
                         struct chandb_upstream *);

/* Called once a write ends: 'ok' if it committed. */
typedef void chandb_done_func(bool ok, void *aux);

struct upstream_batch;

/* Writes upstream batch 'b' (borrowed for the call) of VM 'vm' in one
 * transaction: its Guest_Record inserts, updates and deletes and, if it
 * says so, the Channel row's up_epoch, up_position and published_count
 * ('n_rows').  A batch that stores a position fails, and changes nothing,
 * if the VM has no Channel row yet.  'done' is called with 'aux' when the
 * transaction ends (also when the connection is lost first). */
void chandb_write_guest_batch(struct chandb *, const char *vm,
                              const struct upstream_batch *b, size_t n_rows,
                              chandb_done_func *done, void *aux);

/* Deletes every Guest_Record and Object_Ref row of VM 'vm' and clears its
 * Channel row's up_epoch, up_position and published_count
 * (deprovisioning). */
void chandb_delete_guest_records(struct chandb *, const char *vm);

/* Relay (relay.h): chandb keeps the relayed Record rows (external_ids
 * chand-relay=true) equal to what the Relay rules make of the published
 * records.  Stores the running totals of relayed records of VM 'vm'
 * written (inserted or updated, one per target) and of its published
 * records (each version once) that no rule let through. */
void chandb_relay_counts(const struct chandb *, const char *vm,
                         uint64_t *relayed, uint64_t *refused);

/* The running total of VM 'vm''s object records (objmap.h) that were
 * stored but mapped nothing (malformed, or a size that disagrees with the
 * object's). */
uint64_t chandb_objects_refused(const struct chandb *, const char *vm);

/* Guest limits (doc/chan-db.md): the defaults (UPSTREAM_LIMITS_DEFAULT),
 * overridden by Chan_Global.guest_limits, overridden by VM 'vm''s
 * Guest_Limits row.  The seqno changes whenever they may have changed. */
struct upstream_limits;
void chandb_guest_limits(const struct chandb *, const char *vm,
                         struct upstream_limits *);
uint64_t chandb_get_limits_seqno(const struct chandb *);

struct chandb_stats {
    uint64_t bad_records;       /* Records currently invalid. */
    uint64_t txn_errors;
    uint64_t restores_refused;  /* Restore requests not entitled (as of
                                 * the last computation). */
};

/* The content store's view, for restore answers (objaction.h): returns a
 * new JSON object digest -> "present" | {"error": reason} for the digests
 * in 'digests' (borrowed, an object whose keys are digests). */
typedef json_t *chandb_content_func(const json_t *digests, void *aux);
void chandb_set_content_source(struct chandb *, chandb_content_func *,
                               void *aux);

/* Tells chandb that the content store changed (a fetch ended), so that
 * restore answers are computed again. */
void chandb_content_changed(struct chandb *);

/* The objects whose content restore requests need fetched: digest ->
 * {"size": S, "candidates": [vm...]} (borrowed; valid until the next
 * chandb_run()).  chandb_get_needs_seqno() changes when it may have. */
const json_t *chandb_restore_needs(const struct chandb *);
uint64_t chandb_get_needs_seqno(const struct chandb *);

/* True if VM 'vm''s desired state names object 'digest' in a record that
 * delivers content: "install/<digest>", "restore/<digest>" with a size,
 * or a "notice/..." whose "superseded_by" is 'digest'.  Stores the size
 * that record gives (or -1) in '*sizep'. */
bool chandb_vm_entitled(struct chandb *, const char *vm, const char *digest,
                        int64_t *sizep);

/* The size of Object row 'digest', in '*sizep'; false if there is none. */
bool chandb_object_size(const struct chandb *, const char *digest,
                        int64_t *sizep);

/* True if content 'digest' must stay in the content store: some VM
 * references the object, or the allowlist names it. */
bool chandb_content_in_use(const struct chandb *, const char *digest);

/* Inserts an Object row for 'digest' of 'size' bytes unless there is one
 * (content the operator stored, so that installs can name it). */
void chandb_ensure_object(struct chandb *, const char *digest,
                          int64_t size);
void chandb_get_stats(const struct chandb *, struct chandb_stats *);

#endif /* chandb.h */
