/*
 * ovsdb-replica: a minimal OVSDB IDL (in-memory replica of selected tables).
 *
 * The caller names one database and declares the tables and columns it
 * wants (optionally with their expected types).  The replica keeps a copy
 * of those rows: per table, a hash map uuid -> row, where a row holds its
 * column values as jansson datums owned by the replica.  chand-host uses
 * one replica for the local Open_vSwitch database (Interface, Port, Bridge)
 * and one for the Chan DB.
 *
 * Two layers:
 *
 *   - A pure core, ovsdb_replica_apply_updates(), that applies a version 1
 *     <table-updates> (an "update" notification, or with 'initial' the reply
 *     to "monitor", which replaces the whole contents).  It does no I/O and
 *     is what the unit tests drive directly.
 *
 *     ovsdb_replica_apply_updates2() does the same for version 2
 *     <table-updates2> ("update2"/"update3" and the replies to
 *     "monitor_cond"/"monitor_cond_since"), whose "modify" carries diffs.
 *
 *   - Session glue over jsonrpc_session, after Open vSwitch's
 *     lib/ovsdb-cs.c: ovsdb_replica_connect() and
 *     ovsdb_replica_run()/ovsdb_replica_wait() for the poll loop.  The
 *     remote may be a comma-separated list (the members of a cluster); the
 *     session connects to one at a time, in an order shuffled once per
 *     connect (see ovsdb_replica_set_shuffle_remotes()), and moves on to
 *     the next on failure.  On every (re)connection the replica:
 *
 *       1. Monitors (with "monitor_cond", so that a commit sends only the
 *          changed "index") the "Database" table of the server's "_Server"
 *          database and checks the row of its database: a clustered
 *          database must have joined its cluster and be connected to it,
 *          must not have older data than a server already used (Raft
 *          index), and, with ovsdb_replica_set_leader_only(), must be the
 *          leader.  Otherwise the replica drops the connection and tries
 *          the next remote.  The check is redone whenever the row changes
 *          (e.g. the server loses leadership).  Servers without "_Server"
 *          skip the check.  The database schema comes from that row (or
 *          from "get_schema" on old servers): columns the server lacks are
 *          skipped instead of failing the monitor.
 *
 *       2. Monitors the declared tables with "monitor_cond_since", passing
 *          the id of the last transaction it has seen: the server then
 *          sends only what was missed (a resume; found=true), or, if it
 *          does not know that transaction, a full snapshot (a resync).
 *          Servers that answer "unknown method" get "monitor_cond", then
 *          plain "monitor" (every reconnection then is a full resync).  A
 *          full resync converges without churn: rows missing from the
 *          snapshot are reported deleted, changed rows modified, identical
 *          rows not at all.
 *
 *     Reconnection uses jsonrpc_session's backoff and goes on forever.
 *
 * Conditional monitoring: ovsdb_replica_set_condition() gives a table an
 * OVSDB condition (default [true]: all rows).  It goes with the monitor
 * request and later changes are sent with "monitor_cond_change"; the
 * server then sends deletes for rows that stopped matching and inserts for
 * rows that started to.  Servers that only know "monitor" ignore
 * conditions (all rows are replicated).
 *
 * Change tracking: the replica remembers, per row, what it looked like when
 * the caller last called ovsdb_replica_track_clear().  The tracked rows of a
 * table are exactly the difference between that state and now: INSERTED
 * (did not exist then), MODIFIED (existed, contents differ), DELETED
 * (existed, gone now; still readable until the next clear).  A row inserted
 * and deleted in between, or modified and changed back, is not reported.
 * ovsdb_replica_get_seqno() changes whenever the contents (or the synced
 * state) change, so a caller can skip work when nothing happened.
 *
 * Robustness: a message that is not a valid <table-updates> is counted and
 * triggers a full resync (a fresh monitor) since the replica can no longer
 * be sure it matches the server.  A row whose column has the wrong type for
 * its declared type is counted (n_bad_rows), logged (rate-limited), and
 * stored without that column: ovsdb_replica_row_get() returns NULL for it.
 * Nothing from the server can crash the process.
 *
 * Transactions: ovsdb_replica_transact() sends a "transact" and calls back
 * once with the result or an error.  Requests pending when the connection
 * drops fail with an error ("connection lost"); the caller retries.
 *
 * Not thread-safe; drive it from one poll loop.
 */
#ifndef OVSDB_REPLICA_H
#define OVSDB_REPLICA_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ovsdb-msg.h"

struct ovsdb_replica;
struct ovsdb_replica_table;
struct ovsdb_replica_row;

/* ----------------------------------------------------------------------
 * Set-up.
 */

/* Creates an empty replica of database 'db_name' (copied), not connected.
 * Free it with ovsdb_replica_destroy(). */
struct ovsdb_replica *ovsdb_replica_create(const char *db_name);

/* Closes the session (if any) and frees the replica with all its rows.
 * Pending transactions are dropped without calling their callbacks.  NULL
 * is ignored. */
void ovsdb_replica_destroy(struct ovsdb_replica *);

/* Declares 'table' (name copied) and returns it; declaring it again returns
 * the same table.  Tables must be declared before ovsdb_replica_connect().
 * The table is owned by the replica. */
struct ovsdb_replica_table *ovsdb_replica_add_table(struct ovsdb_replica *,
                                                    const char *table);

/* Declares 'column' (name copied) of 'table', with expected 'type' (copied;
 * NULL means any well-formed datum).  Declaring it again replaces the
 * type. */
void ovsdb_replica_add_column(struct ovsdb_replica_table *,
                              const char *column,
                              const struct ovsdb_type *type);

/* Returns the declared table named 'table', or NULL. */
struct ovsdb_replica_table *ovsdb_replica_get_table(
    const struct ovsdb_replica *, const char *table);

const char *ovsdb_replica_get_db_name(const struct ovsdb_replica *);
const char *ovsdb_replica_table_name(const struct ovsdb_replica_table *);

/* Returns true if the server's schema (as of the last connection) has
 * 'column' of 'table' (or, if 'column' is NULL, the table).  Before any
 * schema has been received, returns true for every declared column. */
bool ovsdb_replica_has_column(const struct ovsdb_replica_table *,
                              const char *column);

/* ----------------------------------------------------------------------
 * Reading rows.  Row pointers stay valid until the next call that may
 * change the replica (ovsdb_replica_run(), ovsdb_replica_apply_updates(),
 * ovsdb_replica_track_clear(), ovsdb_replica_destroy()).
 */

/* Number of rows now in 'table' (deleted rows not counted). */
size_t ovsdb_replica_table_count(const struct ovsdb_replica_table *);

/* Returns the row of 'table' with 'uuid' (either case), or NULL (also for a
 * deleted row still kept for tracking). */
const struct ovsdb_replica_row *ovsdb_replica_find(
    const struct ovsdb_replica_table *, const char *uuid);

/* Iteration over the rows now in 'table', in insertion order. */
const struct ovsdb_replica_row *ovsdb_replica_first(
    const struct ovsdb_replica_table *);
const struct ovsdb_replica_row *ovsdb_replica_next(
    const struct ovsdb_replica_row *);
#define OVSDB_REPLICA_FOR_EACH(ROW, TABLE)                      \
    for ((ROW) = ovsdb_replica_first(TABLE); (ROW);             \
         (ROW) = ovsdb_replica_next(ROW))

/* Index: a table may have one string column by whose value its rows can
 * be found without a walk of the table (chand-host's Chan DB tables by
 * "vm").  ovsdb_replica_add_index() makes 'column' (copied) the index of
 * 'table' (replacing any other; the rows present are indexed at once).
 * OVSDB_REPLICA_FOR_EACH_EQ visits the rows now in 'table' whose index
 * column is exactly the string 'value', in no particular order; a row
 * whose column is not one string (e.g. an empty optional) is in no
 * group.  A table without an index, or a null 'table' or 'value', has no
 * rows to visit. */
void ovsdb_replica_add_index(struct ovsdb_replica_table *,
                             const char *column);
const struct ovsdb_replica_row *ovsdb_replica_index_first(
    const struct ovsdb_replica_table *, const char *value);
const struct ovsdb_replica_row *ovsdb_replica_index_next(
    const struct ovsdb_replica_row *);
#define OVSDB_REPLICA_FOR_EACH_EQ(ROW, TABLE, VALUE)                    \
    for ((ROW) = ovsdb_replica_index_first(TABLE, VALUE); (ROW);        \
         (ROW) = ovsdb_replica_index_next(ROW))

/* The row's uuid: 36 lowercase characters, owned by the row. */
const char *ovsdb_replica_row_uuid(const struct ovsdb_replica_row *);
const struct ovsdb_replica_table *ovsdb_replica_row_table(
    const struct ovsdb_replica_row *);

/* Returns the value of 'column' (a datum, borrowed from the row and
 * read-only: never modify it), or NULL if the column is not declared, was
 * not sent, or failed validation.  For a DELETED row, returns the value it
 * had at the last track clear. */
const json_t *ovsdb_replica_row_get(const struct ovsdb_replica_row *,
                                    const char *column);

/* Returns the string value of 'column' of 'row' (borrowed), or NULL if
 * 'row' is NULL or the column is missing or has no string value. */
const char *ovsdb_replica_row_get_string(const struct ovsdb_replica_row *,
                                         const char *column);

/* Returns the first row now in 'table' whose 'column' is the string
 * 'value', or NULL. */
const struct ovsdb_replica_row *ovsdb_replica_find_by_string(
    const struct ovsdb_replica_table *, const char *column,
    const char *value);

/* True if the set of uuids in 'column' of 'row' holds 'uuid' (false if
 * the column is missing or is not a set of uuids). */
bool ovsdb_replica_row_refers_to(const struct ovsdb_replica_row *,
                                 const char *column, const char *uuid);

/* Returns the value 'column' had at the last track clear (borrowed), or NULL
 * if the row did not exist then (INSERTED) or lacked the column.  For an
 * untracked row, same as ovsdb_replica_row_get(). */
const json_t *ovsdb_replica_row_get_old(const struct ovsdb_replica_row *,
                                        const char *column);

/* ----------------------------------------------------------------------
 * Change tracking.
 */

enum ovsdb_replica_change {
    OVSDB_REPLICA_UNCHANGED,
    OVSDB_REPLICA_INSERTED,
    OVSDB_REPLICA_MODIFIED,
    OVSDB_REPLICA_DELETED
};

/* "unchanged", "inserted", "modified", "deleted". */
const char *ovsdb_replica_change_name(enum ovsdb_replica_change);

/* How 'row' changed since the last track clear. */
enum ovsdb_replica_change ovsdb_replica_row_change(
    const struct ovsdb_replica_row *);

/* Returns true if 'column' of 'row' differs from its value at the last
 * track clear (always true for inserted and deleted rows). */
bool ovsdb_replica_row_column_changed(const struct ovsdb_replica_row *,
                                      const char *column);

/* Iteration over the rows of 'table' that changed since the last track
 * clear (inserted, modified and deleted), in order of first change. */
const struct ovsdb_replica_row *ovsdb_replica_track_first(
    const struct ovsdb_replica_table *);
const struct ovsdb_replica_row *ovsdb_replica_track_next(
    const struct ovsdb_replica_row *);
#define OVSDB_REPLICA_FOR_EACH_TRACKED(ROW, TABLE)              \
    for ((ROW) = ovsdb_replica_track_first(TABLE); (ROW);       \
         (ROW) = ovsdb_replica_track_next(ROW))

/* Returns true if any table has a tracked change. */
bool ovsdb_replica_has_changes(const struct ovsdb_replica *);

/* Forgets all tracked changes: frees deleted rows and makes the current
 * contents the new reference state. */
void ovsdb_replica_track_clear(struct ovsdb_replica *);

/* A number that changes whenever the replica's contents or its synced
 * state change. */
uint64_t ovsdb_replica_get_seqno(const struct ovsdb_replica *);

/* ----------------------------------------------------------------------
 * Pure core.
 */

/* Applies <table-updates> 'updates' (borrowed).  With 'initial', 'updates'
 * is a complete snapshot: rows of declared tables not in it are deleted.
 * Updates for undeclared tables and columns are ignored.  An insert of an
 * existing uuid is applied as a modify, a modify of an unknown uuid as an
 * insert, and a delete of an unknown uuid is ignored; each of these counts
 * as n_inconsistent.  Rows with a column of the wrong type count as
 * n_bad_rows and are stored without that column.
 *
 * Returns 0, or an enum ovsdb_msg_error if 'updates' is malformed, in
 * which case nothing was applied (and n_bad_updates is incremented). */
int ovsdb_replica_apply_updates(struct ovsdb_replica *, const json_t *updates,
                                bool initial);

/* Like ovsdb_replica_apply_updates(), for version 2 <table-updates2>
 * 'updates' (borrowed): rows are "initial", "insert", "delete" or
 * "modify".  Columns left out of "initial" and "insert" take their default
 * value (per the server's schema, or the declared type).  A "modify"
 * carries, per column, the new value (columns of at most one element) or a
 * diff: set elements to toggle, map pairs to add, remove (same key and
 * value) or replace (same key, other value); see
 * ovsdb_datum_apply_diff().  Column types come from the schema set with
 * ovsdb_replica_set_schema() (done on every connection), else from the
 * declared types.
 *
 * Returns 0; or an enum ovsdb_msg_error if 'updates' is malformed (nothing
 * applied, n_bad_updates incremented); or OVSDB_REPLICA_E_INCONSISTENT if
 * an update did not fit the replica in a way that loses information (a
 * "modify" of an unknown row, a diff that does not apply), counted in
 * n_inconsistent: the rest was applied and the caller must resync. */
#define OVSDB_REPLICA_E_INCONSISTENT (-1)
int ovsdb_replica_apply_updates2(struct ovsdb_replica *,
                                 const json_t *updates, bool initial);

/* Uses 'schema' (a get_schema reply, borrowed) for which tables and
 * columns the server has and for column types.  The session does this
 * itself on every connection; for callers driving the pure core. */
void ovsdb_replica_set_schema(struct ovsdb_replica *, const json_t *schema);

/* The _Server database check, as a pure function of the "Database" rows.
 * ovsdb_replica_apply_server_updates() applies version 1 <table-updates>
 * of the _Server "Database" table (with 'initial', a full snapshot) to the
 * replica's copy (the session does it from its _Server monitor), and
 * ovsdb_replica_check_server() decides whether the server may serve this
 * replica. */
enum ovsdb_replica_server_status {
    OVSDB_REPLICA_SERVER_OK,
    OVSDB_REPLICA_SERVER_NO_DB,         /* No row for our database. */
    OVSDB_REPLICA_SERVER_NOT_JOINED,    /* Clustered: no schema yet. */
    OVSDB_REPLICA_SERVER_DISCONNECTED,  /* Not connected to the cluster. */
    OVSDB_REPLICA_SERVER_NOT_LEADER,    /* Leader only, and not leader. */
    OVSDB_REPLICA_SERVER_STALE,         /* Older Raft index than seen. */
    OVSDB_REPLICA_SERVER_NO_SCHEMA,     /* Standalone row without schema. */
};
const char *ovsdb_replica_server_status_name(
    enum ovsdb_replica_server_status);
int ovsdb_replica_apply_server_updates(struct ovsdb_replica *,
                                       const json_t *updates, bool initial);
/* Checks the row of our database (leader_only and the highest Raft index
 * accepted so far apply).  With 'accept', an OK server's index becomes the
 * new minimum. */
enum ovsdb_replica_server_status ovsdb_replica_check_server(
    struct ovsdb_replica *, bool accept);

/* Requires (or not, the default) that a clustered server be the cluster
 * leader, as ovsdb-cs's leader_only (whose default is true there): for
 * replicas whose transactions must go to the leader.  Rechecks at once
 * when connected. */
void ovsdb_replica_set_leader_only(struct ovsdb_replica *, bool leader_only);

/* Whether ovsdb_replica_connect() shuffles its list of remotes (default
 * true, as ovsdb-cs: clients spread over cluster members).  Set before
 * connecting. */
void ovsdb_replica_set_shuffle_remotes(struct ovsdb_replica *, bool shuffle);

/* Sets the inactivity probe interval (ms, 0 disables; the default 0 suits
 * unix: remotes).  Can be called before ovsdb_replica_connect(). */
void ovsdb_replica_set_probe_interval(struct ovsdb_replica *, int interval);

/* Conditional monitoring.  Sets the condition of 'table' to 'cond'
 * (borrowed; an array of OVSDB conditions such as [["vm","==","vm1"]], or
 * [true]/[] for all rows; NULL means [true]).  Returns 0, or EINVAL if
 * 'cond' is not an array (nothing changes).  Takes effect with the next
 * monitor request or, when monitoring, a "monitor_cond_change". */
int ovsdb_replica_set_condition(struct ovsdb_replica_table *,
                                const json_t *cond);

/* True while a condition set with ovsdb_replica_set_condition() has not
 * been acknowledged by the server (so rows may not match it yet). */
bool ovsdb_replica_cond_pending(const struct ovsdb_replica *);

/* Row updates received for 'table' (snapshots, notifications, all kinds),
 * e.g. to show that a condition keeps other rows away. */
uint64_t ovsdb_replica_table_n_row_updates(
    const struct ovsdb_replica_table *);

/* The last transaction id seen (for monitor_cond_since), or NULL. */
const char *ovsdb_replica_get_last_id(const struct ovsdb_replica *);

/* The remote currently used (connected, or being tried), or NULL. */
const char *ovsdb_replica_get_remote(const struct ovsdb_replica *);

struct ovsdb_replica_stats {
    uint64_t n_bad_rows;        /* Row updates with a badly typed column. */
    uint64_t n_bad_updates;     /* Malformed update messages. */
    uint64_t n_bad_messages;    /* Invalid or unexpected JSON-RPC. */
    uint64_t n_inconsistent;    /* Updates that did not fit the replica. */
    uint64_t n_connects;        /* Connections made. */
    uint64_t n_syncs;           /* Full snapshots applied. */
    uint64_t n_monitor_errors;  /* get_schema/monitor refused. */
    uint64_t n_txn_sent;        /* Transactions sent. */
    uint64_t n_txn_failed;      /* Transactions that failed (any cause). */

    /* Monitor in use: 0 none, 1 "monitor", 2 "monitor_cond", 3
     * "monitor_cond_since". */
    uint64_t monitor_version;
    uint64_t n_monitor_fallbacks; /* "unknown method": older monitor. */
    uint64_t n_resumes;         /* monitor_cond_since replies, found=true
                                 * (n_syncs counts full snapshots). */
    uint64_t n_server_rejects;  /* Servers dropped after the _Server check
                                 * (any reason, including not leader). */
    uint64_t n_not_leader;      /* ...of which: not the leader. */
    uint64_t n_leader_changes;  /* Leadership of the connected server
                                 * changed. */
    uint64_t n_remote_moves;    /* Connections to another remote than the
                                 * previous connection's. */
    uint64_t n_cond_changes;    /* monitor_cond_change acknowledged. */
    uint64_t n_update_msgs;     /* Update notifications applied. */
    uint64_t n_row_updates;     /* Row updates received (all tables, all
                                 * kinds, snapshots included). */
    uint64_t n_bytes_received;  /* Bytes received from servers. */
};

/* Copies the replica's counters into '*stats'. */
void ovsdb_replica_get_stats(const struct ovsdb_replica *,
                             struct ovsdb_replica_stats *stats);

/* ----------------------------------------------------------------------
 * Session.
 */

/* Starts connecting to 'remote' (e.g. "unix:/run/openvswitch/db.sock"),
 * or to one of a comma-separated list of remotes ("unix:/a,unix:/b"; each
 * an opaque stream name; blanks around commas are ignored), with
 * reconnection forever, moving to the next remote whenever a connection
 * fails, drops or is given up (see the _Server check above).  Replaces an
 * earlier connection (pending transactions fail with "connection closed"
 * on the next run). */
void ovsdb_replica_connect(struct ovsdb_replica *, const char *remote);

/* Sets the reconnection backoff of the session (milliseconds; see
 * jsonrpc_session_set_backoff(); defaults 1000 and 8000), which also paces
 * new attempts after the server refused get_schema or monitor.  Can be
 * called before ovsdb_replica_connect(). */
void ovsdb_replica_set_backoff(struct ovsdb_replica *, int min_backoff,
                               int max_backoff);

/* Drops the connection and reconnects, to the next remote if there are
 * several, without backoff if the replica was synced (a resume or a full
 * resync follows). */
void ovsdb_replica_force_reconnect(struct ovsdb_replica *);

/* Does the replica's work: connection management, incoming updates,
 * transaction replies (callbacks are called from here). */
void ovsdb_replica_run(struct ovsdb_replica *);

/* Registers what ovsdb_replica_run() waits for with the poll loop. */
void ovsdb_replica_wait(struct ovsdb_replica *);

/* True if connected to the server. */
bool ovsdb_replica_is_connected(const struct ovsdb_replica *);

/* True if connected and the replica reflects the server's contents (the
 * monitor's initial snapshot has been applied). */
bool ovsdb_replica_is_synced(const struct ovsdb_replica *);

/* Called once per transaction.  On success 'error' is NULL and 'result' is
 * the transact result array (borrowed; one element per operation; see
 * ovsdb_msg_parse_transact_reply() for insert uuids).  On failure 'error'
 * (borrowed) describes why and 'result' is the result array if the server
 * sent one (an operation or commit error), else NULL. */
typedef void ovsdb_replica_txn_cb(const json_t *result, const char *error,
                                  void *aux);

/* Sends a transaction with the operations in 'ops' (stolen, a JSON array,
 * see ovsdb_op_*()) and returns its id (never 0).  'cb' (may be NULL) is
 * called exactly once from a later ovsdb_replica_run(), never from here:
 * with the result, or with an error: the server's ("<error>: <details>
 * (operation N)" or a JSON-RPC error such as "unknown database: ..."),
 * "not connected" (nothing was sent), "connection lost" (sent, no reply;
 * it may or may not have been committed), "connection closed" (replaced by
 * ovsdb_replica_connect()).  The callback may start or cancel transactions
 * but must not destroy the replica. */
uint64_t ovsdb_replica_transact(struct ovsdb_replica *, json_t *ops,
                                ovsdb_replica_txn_cb *cb, void *aux);

/* Forgets transaction 'id': its callback will not be called.  Unknown or
 * completed ids are ignored. */
void ovsdb_replica_transact_cancel(struct ovsdb_replica *, uint64_t id);

/* Number of transactions whose callback has not been called yet. */
size_t ovsdb_replica_n_pending(const struct ovsdb_replica *);

#endif /* ovsdb-replica.h */
