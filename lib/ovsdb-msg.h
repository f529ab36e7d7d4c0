/*
 * ovsdb-msg: pure helpers for the OVSDB protocol (RFC 7047) over jansson.
 *
 * This module does no I/O and keeps no state.  It has three parts:
 *
 *   - Datums.  Strict decoding and checking of OVSDB <value>s: atoms
 *     (integer, real, boolean, string, ["uuid", U], ["named-uuid", N]),
 *     sets (["set", [...]], or a bare atom as a 1-element set) and maps
 *     (["map", [[k, v], ...]]), with convenience getters for the shapes
 *     chand reads (string->string maps such as external_ids, optional
 *     integers such as ofport, uuid references, uuid sets) and builders for
 *     the shapes it writes.
 *
 *   - Request builders.  The "params" of "transact", "monitor",
 *     "monitor_cancel", "get_schema" and "list_dbs", and the operations that
 *     go into a transaction (insert, select, update, mutate, delete, wait,
 *     comment).  Wrapping params into a JSON-RPC request is jsonrpc's job.
 *
 *   - Reply parsers.  <table-updates> (version 1: the "update" notification
 *     and the reply to "monitor"), walked with a callback after the whole
 *     message has been validated; "transact" replies (errors at any
 *     position, result count against operation count, insert uuids); and a
 *     small schema query.
 *
 * Everything that comes from the wire is validated and every malformation
 * has its own error code (enum ovsdb_msg_error, ovsdb_msg_strerror()).
 *
 * Ownership: functions say, for every json_t * argument, whether the
 * reference is stolen (the function owns it afterwards, also on failure) or
 * borrowed (the caller keeps it), and whether a returned json_t * is a new
 * reference (the caller must json_decref() it) or borrowed.
 */
#ifndef OVSDB_MSG_H
#define OVSDB_MSG_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Errors.  0 means success; every other value has a distinct meaning. */
enum ovsdb_msg_error {
    OVSDB_MSG_OK = 0,
    OVSDB_MSG_E_BAD_ATOM = 1,   /* JSON value is not an atom at all. */
    OVSDB_MSG_E_BAD_TAG,        /* Unknown or misplaced array tag. */
    OVSDB_MSG_E_BAD_ARITY,      /* Tagged array is not [tag, value]. */
    OVSDB_MSG_E_NOT_ARRAY,      /* Set or map body is not an array. */
    OVSDB_MSG_E_BAD_PAIR,       /* Map element is not a [key, value]. */
    OVSDB_MSG_E_BAD_UUID,       /* UUID text is not 8-4-4-4-12 hex. */
    OVSDB_MSG_E_BAD_NAME,       /* Malformed named-uuid identifier. */
    OVSDB_MSG_E_NAMED_UUID,     /* named-uuid where only uuid is valid. */
    OVSDB_MSG_E_BAD_STRING,     /* String contains a NUL byte. */
    OVSDB_MSG_E_MIXED_TYPES,    /* Atoms of different types in one datum. */
    OVSDB_MSG_E_DUP_ELEMENT,    /* Same atom twice in a set. */
    OVSDB_MSG_E_DUP_KEY,        /* Same key twice in a map. */
    OVSDB_MSG_E_WRONG_TYPE,     /* Atom type differs from the expected. */
    OVSDB_MSG_E_WRONG_SIZE,     /* Too few or too many elements. */
    OVSDB_MSG_E_NOT_OBJECT,     /* Expected a JSON object. */
    OVSDB_MSG_E_BAD_MEMBER,     /* Unexpected member in an object. */
    OVSDB_MSG_E_EMPTY_UPDATE,   /* Row update with neither old nor new. */
    OVSDB_MSG_E_BAD_PARAMS,     /* Notification params of wrong shape. */
    OVSDB_MSG_E_BAD_RESULT,     /* Malformed transact result element. */
    OVSDB_MSG_E_RESULT_COUNT,   /* Result count does not match op count. */
    OVSDB_MSG_E_TXN_ERROR,      /* The server reported an error. */
    OVSDB_MSG_N_ERRORS
};

/* Returns a static string describing 'error' (any int is accepted). */
const char *ovsdb_msg_strerror(int error);

/* Length of the text form of a UUID, without the terminating NUL. */
#define OVSDB_UUID_LEN 36

/* Returns true if 's' is a UUID in 8-4-4-4-12 hexadecimal form (either
 * case). */
bool ovsdb_uuid_is_valid(const char *s);

/* Returns true if 's' is a valid named-uuid identifier:
 * [_a-zA-Z][_a-zA-Z0-9]*. */
bool ovsdb_name_is_valid(const char *s);

/* ----------------------------------------------------------------------
 * Datums.
 */

enum ovsdb_atom_type {
    OVSDB_ATOM_NONE,            /* No atom: value type of a set; "any" in
                                 * struct ovsdb_type. */
    OVSDB_ATOM_INTEGER,
    OVSDB_ATOM_REAL,
    OVSDB_ATOM_BOOLEAN,
    OVSDB_ATOM_STRING,
    OVSDB_ATOM_UUID,
    OVSDB_ATOM_NAMED_UUID,      /* Only in requests, never from servers. */
};

/* Returns the RFC 7047 name of 'type' ("integer", ...), "none" or "?". */
const char *ovsdb_atom_type_name(enum ovsdb_atom_type type);

/* One decoded atom.  'string' (for STRING, UUID and NAMED_UUID) points into
 * the JSON it was decoded from and lives as long as that JSON. */
struct ovsdb_atom {
    enum ovsdb_atom_type type;
    union {
        int64_t integer;
        double real;
        bool boolean;
        const char *string;
    } u;
};

/* A decoded datum: a set (values == NULL) or a map.  Holds a reference to
 * the JSON it was decoded from, which its string atoms point into. */
struct ovsdb_datum {
    bool is_map;
    size_t n;
    struct ovsdb_atom *keys;    /* n elements (set members or map keys). */
    struct ovsdb_atom *values;  /* n elements for a map, NULL for a set. */
    json_t *json;               /* Reference held on the source. */
};

/* Expected type of a column, a subset of RFC 7047 <type>: 'key' and
 * 'value' atom types (value OVSDB_ATOM_NONE for sets and scalars; key
 * OVSDB_ATOM_NONE means "any datum", checked for syntax only) and the
 * allowed number of elements [n_min, n_max].  Integers are accepted where
 * reals are expected (a real that happens to be integral may be sent as
 * an integer). */
struct ovsdb_type {
    enum ovsdb_atom_type key;
    enum ovsdb_atom_type value;
    unsigned int n_min;
    unsigned int n_max;
};

#define OVSDB_N_UNLIMITED UINT32_MAX
#define OVSDB_TYPE_ANY { OVSDB_ATOM_NONE, OVSDB_ATOM_NONE, 0, \
                         OVSDB_N_UNLIMITED }
#define OVSDB_TYPE_SCALAR(T) { OVSDB_ATOM_##T, OVSDB_ATOM_NONE, 1, 1 }
#define OVSDB_TYPE_OPTIONAL(T) { OVSDB_ATOM_##T, OVSDB_ATOM_NONE, 0, 1 }
#define OVSDB_TYPE_SET(T) { OVSDB_ATOM_##T, OVSDB_ATOM_NONE, 0, \
                            OVSDB_N_UNLIMITED }
#define OVSDB_TYPE_MAP(K, V) { OVSDB_ATOM_##K, OVSDB_ATOM_##V, 0, \
                               OVSDB_N_UNLIMITED }

/* Decodes 'json' (borrowed) into 'datum'.  A bare atom is a 1-element set;
 * ["set", [...]] a set; ["map", [[k, v], ...]] a map.  All keys must have
 * one atom type and all values one atom type; set members and map keys
 * must be distinct.  named-uuid atoms are accepted only if 'allow_named'.
 * On success returns 0 and the caller must ovsdb_datum_destroy(datum); on
 * failure returns an enum ovsdb_msg_error and 'datum' needs no cleanup. */
int ovsdb_datum_from_json(struct ovsdb_datum *datum, const json_t *json,
                          bool allow_named);

/* Frees what 'datum' holds (not 'datum' itself).  NULL is ignored. */
void ovsdb_datum_destroy(struct ovsdb_datum *datum);

/* Returns a new reference to the JSON form of 'atom' on the wire: a UUID
 * as ["uuid", "..."], a named UUID as ["named-uuid", "..."], an absent atom
 * (OVSDB_ATOM_NONE) as null. */
json_t *ovsdb_atom_to_json(const struct ovsdb_atom *atom);

/* Returns a new reference to the canonical JSON form of 'datum' (as
 * ovsdb-server writes it): a 1-element set as a bare atom, other sets as
 * ["set", [...]], maps always as ["map", [...]]. */
json_t *ovsdb_datum_to_json(const struct ovsdb_datum *datum);

/* Checks 'json' (borrowed) as a datum of type 'type' (NULL: any type,
 * syntax only).  named-uuid atoms are accepted only if 'allow_named'.
 * Returns 0 or an enum ovsdb_msg_error. */
int ovsdb_datum_check(const json_t *json, const struct ovsdb_type *type,
                      bool allow_named);

/* Getters.  Each decodes 'datum' (borrowed JSON) strictly and returns 0 or
 * an enum ovsdb_msg_error; outputs are written only on success.  Empty
 * sets are accepted where noted. */

/* Optional integer (e.g. Interface ofport): sets '*present' to false for
 * an empty set, otherwise to true and '*value' to the integer. */
int ovsdb_datum_get_integer(const json_t *datum, int64_t *value,
                            bool *present);

/* Optional boolean, as ovsdb_datum_get_integer(). */
int ovsdb_datum_get_boolean(const json_t *datum, bool *value, bool *present);

/* Optional string: '*value' is borrowed from 'datum', NULL if empty. */
int ovsdb_datum_get_string(const json_t *datum, const char **value);

/* Optional uuid reference: '*uuid' is borrowed from 'datum' (the 36-char
 * text), NULL if the set is empty. */
int ovsdb_datum_get_uuid(const json_t *datum, const char **uuid);

/* Set of uuids (e.g. Bridge ports): '*uuids' is a new JSON array of uuid
 * strings, in the datum's order. */
int ovsdb_datum_get_uuid_set(const json_t *datum, json_t **uuids);

/* Set of strings (e.g. Object.flags): a new JSON array of the strings, in
 * the datum's order; empty if 'datum' is NULL or not a set of strings. */
json_t *ovsdb_datum_string_array(const json_t *datum);

/* String-to-string map (e.g. external_ids): '*map' is a new JSON object.
 * An empty set (["set", []]) is accepted as an empty map. */
int ovsdb_datum_get_string_map(const json_t *datum, json_t **map);

/* Builders.  Each returns a new reference. */

/* ["uuid", uuid] and ["named-uuid", name].  The text is not checked. */
json_t *ovsdb_datum_uuid(const char *uuid);
json_t *ovsdb_datum_named_uuid(const char *name);

/* ["set", atoms]: steals 'atoms', which must be a JSON array of atoms. */
json_t *ovsdb_datum_set(json_t *atoms);

/* ["set", [["uuid", U], ...]] from 'uuids' (borrowed), an array of uuid
 * strings.  Returns NULL if an element is not a string. */
json_t *ovsdb_datum_uuid_set(const json_t *uuids);

/* ["set", ["s", ...]] from 'strings' (borrowed array of C strings). */
json_t *ovsdb_datum_string_set(const char *const *strings, size_t n);

/* ["map", [[k, v], ...]] from 'object' (borrowed), whose values must all
 * be strings; pairs are sorted by key.  Returns NULL if a value is not a
 * string or 'object' is not an object. */
json_t *ovsdb_datum_string_map(const json_t *object);

/* ----------------------------------------------------------------------
 * Request builders.  Every json_t * argument is stolen; every result is a
 * new reference.  Text arguments (table, column names, uuids) are copied
 * and not checked: the server rejects bad ones with an error.
 */

/* [["_uuid", "==", ["uuid", uuid]]]: a where clause matching one row. */
json_t *ovsdb_where_uuid(const char *uuid);

/* [column, function, value]: one condition for a where clause. */
json_t *ovsdb_condition(const char *column, const char *function,
                        json_t *value);

/* [column, mutator, value]: one mutation, e.g.
 * ovsdb_mutation("external_ids", "insert", ovsdb_datum_string_map(m)). */
json_t *ovsdb_mutation(const char *column, const char *mutator,
                       json_t *value);

/* Operations.  'where' is an array of conditions ([] matches all rows). */
json_t *ovsdb_op_insert(const char *table, json_t *row,
                        const char *uuid_name /* NULL for none */);
json_t *ovsdb_op_select(const char *table, json_t *where,
                        json_t *columns /* NULL for all */);
json_t *ovsdb_op_update(const char *table, json_t *where, json_t *row);
json_t *ovsdb_op_mutate(const char *table, json_t *where,
                        json_t *mutations);
json_t *ovsdb_op_delete(const char *table, json_t *where);
/* 'until' is "==" or "!="; 'timeout_ms' < 0 omits the timeout (wait
 * forever).  'columns' and 'rows' are JSON arrays. */
json_t *ovsdb_op_wait(const char *table, json_t *where, json_t *columns,
                      const char *until, json_t *rows, int64_t timeout_ms);
json_t *ovsdb_op_comment(const char *comment);

/* Params of "transact": [db, op...].  'ops' (stolen) is an array. */
json_t *ovsdb_msg_transact_params(const char *db, json_t *ops);

/* Adds {"columns": [columns...]} for 'table' to 'requests' (borrowed, a
 * JSON object being built for ovsdb_msg_monitor_params()); with no columns,
 * adds {} (all columns).  Returns 0, or OVSDB_MSG_E_NOT_OBJECT if
 * 'requests' is not an object. */
int ovsdb_msg_monitor_requests_add(json_t *requests, const char *table,
                                   const char *const *columns,
                                   size_t n_columns);

/* Params of "monitor" (version 1): [db, monitor_id, requests].  Steals
 * 'monitor_id' (any JSON value) and 'requests'. */
json_t *ovsdb_msg_monitor_params(const char *db, json_t *monitor_id,
                                 json_t *requests);

/* Params of "monitor_cancel": [monitor_id]. Steals 'monitor_id'. */
json_t *ovsdb_msg_monitor_cancel_params(json_t *monitor_id);

/* Params of "get_schema" ([db]) and "list_dbs" ([]). */
json_t *ovsdb_msg_get_schema_params(const char *db);
json_t *ovsdb_msg_list_dbs_params(void);

/* ----------------------------------------------------------------------
 * Reply parsers.  All arguments are borrowed.
 */

/* Called once per row update.  'old' and 'new' (borrowed, either may be
 * NULL but not both) are JSON objects column -> datum: an insert has only
 * 'new', a delete only 'old', a modify both ('old' holds only the changed
 * columns), an initial row only 'new'. */
typedef void ovsdb_msg_row_cb(const char *table, const char *uuid,
                              const json_t *old, const json_t *new,
                              void *aux);

/* Validates the <table-updates> 'updates' completely (objects, uuid keys,
 * only "old"/"new" members, every column value a well-formed datum without
 * named-uuids) and, only if all of it is valid, calls 'cb' for every row
 * update.  Returns 0 or an enum ovsdb_msg_error (and then 'cb' was never
 * called). */
int ovsdb_msg_parse_table_updates(const json_t *updates,
                                  ovsdb_msg_row_cb *cb, void *aux);

/* Splits the params of an "update" notification, [monitor_id, updates],
 * into borrowed pointers.  Does not validate 'updates'.  Returns 0 or
 * OVSDB_MSG_E_BAD_PARAMS. */
int ovsdb_msg_parse_update_params(const json_t *params,
                                  const json_t **monitor_id,
                                  const json_t **updates);

/* Parses the "result" of a "transact" request that had 'n_ops' operations.
 *
 * Returns 0 if every operation succeeded; then, if 'uuids' is nonnull,
 * '*uuids' is a new JSON array of 'n_ops' elements: the uuid string of the
 * row an insert created, null for other operations.
 *
 * Returns OVSDB_MSG_E_TXN_ERROR if the server reported an error (for an
 * operation, or at commit as an extra element); then, if 'error' is
 * nonnull, '*error' is a malloc'd "<error>: <details> (operation N)"
 * string for the caller to free().  Other errors mean a malformed result
 * (not an array, too few or too many elements, an element that is neither
 * an object nor null, results after an error, a bad insert uuid); '*error'
 * is then set to a malloc'd description too.  Outputs are NULL on
 * failure. */
int ovsdb_msg_parse_transact_reply(const json_t *result, size_t n_ops,
                                   json_t **uuids, char **error);

/* Returns true if 'schema' (a get_schema reply) has 'table' and, if
 * 'column' is nonnull, that column in it ("_uuid" and "_version" always
 * exist in an existing table). */
bool ovsdb_msg_schema_has_column(const json_t *schema, const char *table,
                                 const char *column);

/* ----------------------------------------------------------------------
 * Monitor versions 2 and 3 (the "monitor_cond" and "monitor_cond_since"
 * extensions of ovsdb-server(7)).
 */

/* Returns the column type of 'column' of 'table' in 'schema' (a get_schema
 * reply) in '*type': atomic key and value types (OVSDB_ATOM_NONE for a
 * value that is not a map and for atomic types chand does not know), and
 * n_min/n_max (defaults 1 and 1, "unlimited" is OVSDB_N_UNLIMITED).
 * Returns true on success, false if the column is missing or its type is
 * malformed ("_uuid" and "_version" are uuid scalars). */
bool ovsdb_msg_schema_column_type(const json_t *schema, const char *table,
                                  const char *column,
                                  struct ovsdb_type *type);

/* Returns a new reference to the default value of a column of 'type', as
 * ovsdb-server leaves it out of "initial" and "insert" row updates of
 * version 2: the empty set (or map) if n_min is 0, else the default atom
 * (0, 0.0, false, "", the all-zeros uuid).  NULL if 'type' has key
 * OVSDB_ATOM_NONE (unknown). */
json_t *ovsdb_datum_default(const struct ovsdb_type *type);

/* Applies the <value> diff 'diff' of a version 2 "modify" to 'old' (both
 * borrowed datums; 'old' NULL means the default of 'type') and stores the
 * new datum (a new reference, canonical: sorted, 1-element sets as bare
 * atoms) in '*newp'.  For a column with n_max <= 1 the diff is the new
 * value.  For sets it lists the elements to toggle; for maps, pairs whose
 * key is absent are added, pairs equal to an existing pair are removed,
 * pairs whose key exists with another value replace it.  If 'type' has key
 * OVSDB_ATOM_NONE (unknown), the diff's own shape decides: "map" and "set"
 * are diffs of maps and sets, a bare atom replaces the value.  Returns 0 or
 * an enum ovsdb_msg_error ('*newp' NULL). */
int ovsdb_datum_apply_diff(const json_t *old, const json_t *diff,
                           const struct ovsdb_type *type, json_t **newp);

enum ovsdb_row_update2_kind {
    OVSDB_RU2_INITIAL,
    OVSDB_RU2_INSERT,
    OVSDB_RU2_DELETE,
    OVSDB_RU2_MODIFY
};

/* Called once per <row-update2>: 'row' (borrowed) is the row for INITIAL
 * and INSERT (columns with default values may be missing), NULL for
 * DELETE, and the column diffs for MODIFY. */
typedef void ovsdb_msg_row2_cb(const char *table, const char *uuid,
                               enum ovsdb_row_update2_kind kind,
                               const json_t *row, void *aux);

/* Validates <table-updates2> 'updates' completely (objects, uuid keys,
 * exactly one of "initial", "insert", "delete" (null), "modify" per row,
 * every value a well-formed datum) and, only if all of it is valid, calls
 * 'cb' for every row update.  Returns 0 or an enum ovsdb_msg_error. */
int ovsdb_msg_parse_table_updates2(const json_t *updates,
                                   ovsdb_msg_row2_cb *cb, void *aux);

/* Splits the params of an "update2" ([monitor_id, updates]) or "update3"
 * ([monitor_id, last_txn_id, updates]) notification.  '*last_id' is set
 * for update3 (a uuid string, validated) and to NULL for update2.  Returns
 * 0 or OVSDB_MSG_E_BAD_PARAMS; or OVSDB_MSG_E_BAD_UUID for a bad last id,
 * with '*monitor_id' and '*updates' set (the monitor is known). */
int ovsdb_msg_parse_update3_params(const json_t *params, bool v3,
                                   const json_t **monitor_id,
                                   const char **last_id,
                                   const json_t **updates);

/* Parses the reply to "monitor_cond_since": [found, last_txn_id,
 * table-updates2].  Returns 0 or OVSDB_MSG_E_BAD_PARAMS (or
 * OVSDB_MSG_E_BAD_UUID).  Pointers are borrowed from 'result'. */
int ovsdb_msg_parse_monitor_cond_since_reply(const json_t *result,
                                             bool *found,
                                             const char **last_id,
                                             const json_t **updates);

/* Adds a <monitor-cond-request> [{"columns": [...], "where": where}] for
 * 'table' to 'requests' (borrowed).  'where' is stolen; NULL leaves
 * "where" out (all rows).  Returns 0 or OVSDB_MSG_E_NOT_OBJECT. */
int ovsdb_msg_monitor_cond_requests_add(json_t *requests, const char *table,
                                        const char *const *columns,
                                        size_t n_columns, json_t *where);

/* Params of "monitor_cond" ([db, monitor_id, requests]) and, with
 * 'last_id' nonnull, of "monitor_cond_since" ([db, monitor_id, requests,
 * last_id]).  Steals 'monitor_id' and 'requests'. */
json_t *ovsdb_msg_monitor_cond_params(const char *db, json_t *monitor_id,
                                      json_t *requests, const char *last_id);

/* Params of "monitor_cond_change": [old_id, new_id, changes] where
 * 'changes' maps table names to [{"where": condition}].  Steals all. */
json_t *ovsdb_msg_monitor_cond_change_params(json_t *old_id, json_t *new_id,
                                             json_t *changes);

/* The all-zeros uuid: "no transaction" for monitor_cond_since. */
#define OVSDB_UUID_ZERO "00000000-0000-0000-0000-000000000000"

#endif /* ovsdb-msg.h */
