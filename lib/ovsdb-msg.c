/* ovsdb-msg: pure OVSDB (RFC 7047) helpers.  See ovsdb-msg.h. */

#include <config.h>
#include "ovsdb-msg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(A) (sizeof (A) / sizeof (A)[0])
#endif

const char *
ovsdb_msg_strerror(int error)
{
    switch (error) {
    case OVSDB_MSG_OK:
        return "success";
    case OVSDB_MSG_E_BAD_ATOM:
        return "JSON value is not an OVSDB atom";
    case OVSDB_MSG_E_BAD_TAG:
        return "unknown or misplaced tag in tagged array";
    case OVSDB_MSG_E_BAD_ARITY:
        return "tagged array does not have exactly 2 elements";
    case OVSDB_MSG_E_NOT_ARRAY:
        return "set or map body is not an array";
    case OVSDB_MSG_E_BAD_PAIR:
        return "map element is not a [key, value] pair";
    case OVSDB_MSG_E_BAD_UUID:
        return "malformed UUID";
    case OVSDB_MSG_E_BAD_NAME:
        return "malformed named-uuid";
    case OVSDB_MSG_E_NAMED_UUID:
        return "named-uuid not allowed here";
    case OVSDB_MSG_E_BAD_STRING:
        return "string contains a NUL byte";
    case OVSDB_MSG_E_MIXED_TYPES:
        return "atoms of different types in one set or map";
    case OVSDB_MSG_E_DUP_ELEMENT:
        return "duplicate set element";
    case OVSDB_MSG_E_DUP_KEY:
        return "duplicate map key";
    case OVSDB_MSG_E_WRONG_TYPE:
        return "datum has the wrong type";
    case OVSDB_MSG_E_WRONG_SIZE:
        return "datum has too few or too many elements";
    case OVSDB_MSG_E_NOT_OBJECT:
        return "expected a JSON object";
    case OVSDB_MSG_E_BAD_MEMBER:
        return "unexpected member in JSON object";
    case OVSDB_MSG_E_EMPTY_UPDATE:
        return "row update has neither \"old\" nor \"new\"";
    case OVSDB_MSG_E_BAD_PARAMS:
        return "malformed notification params";
    case OVSDB_MSG_E_BAD_RESULT:
        return "malformed transaction result";
    case OVSDB_MSG_E_RESULT_COUNT:
        return "transaction result count does not match operations";
    case OVSDB_MSG_E_TXN_ERROR:
        return "transaction failed";
    case OVSDB_MSG_N_ERRORS:
    default:
        return "unknown ovsdb-msg error";
    }
}

static bool
is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
           || (c >= 'A' && c <= 'F');
}

bool
ovsdb_uuid_is_valid(const char *s)
{
    for (size_t i = 0; i < OVSDB_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return false;
            }
        } else if (!is_hex(s[i])) {
            return false;       /* Also catches a short string's NUL. */
        }
    }
    return s[OVSDB_UUID_LEN] == '\0';
}

static bool
is_name_start(char c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool
ovsdb_name_is_valid(const char *s)
{
    if (!is_name_start(s[0])) {
        return false;
    }
    for (s++; *s; s++) {
        if (!is_name_start(*s) && !(*s >= '0' && *s <= '9')) {
            return false;
        }
    }
    return true;
}

const char *
ovsdb_atom_type_name(enum ovsdb_atom_type type)
{
    switch (type) {
    case OVSDB_ATOM_NONE:
        return "none";
    case OVSDB_ATOM_INTEGER:
        return "integer";
    case OVSDB_ATOM_REAL:
        return "real";
    case OVSDB_ATOM_BOOLEAN:
        return "boolean";
    case OVSDB_ATOM_STRING:
        return "string";
    case OVSDB_ATOM_UUID:
        return "uuid";
    case OVSDB_ATOM_NAMED_UUID:
        return "named-uuid";
    default:
        return "?";
    }
}

/* ----------------------------------------------------------------------
 * Datum decoding.
 */

static bool
string_has_nul(const json_t *s)
{
    return strlen(json_string_value(s)) != json_string_length(s);
}

/* Returns the tag of 'json' if it is an array whose first element is a
 * string, otherwise NULL. */
static const char *
array_tag(const json_t *json)
{
    if (json_is_array(json) && json_array_size(json) > 0) {
        const json_t *tag = json_array_get(json, 0);
        if (json_is_string(tag)) {
            /* A tag with a NUL byte is no known tag. */
            return string_has_nul(tag) ? "" : json_string_value(tag);
        }
    }
    return NULL;
}

/* Decodes one atom from 'json' into 'atom'.  Returns 0 or an error (also
 * for a null 'json': a column a row does not have). */
static int
atom_from_json(const json_t *json, bool allow_named, struct ovsdb_atom *atom)
{
    if (!json) {
        return OVSDB_MSG_E_BAD_ATOM;
    }
    switch (json_typeof(json)) {
    case JSON_INTEGER:
        atom->type = OVSDB_ATOM_INTEGER;
        atom->u.integer = json_integer_value(json);
        return 0;
    case JSON_REAL:
        atom->type = OVSDB_ATOM_REAL;
        atom->u.real = json_real_value(json);
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        atom->type = OVSDB_ATOM_BOOLEAN;
        atom->u.boolean = json_is_true(json);
        return 0;
    case JSON_STRING:
        if (string_has_nul(json)) {
            return OVSDB_MSG_E_BAD_STRING;
        }
        atom->type = OVSDB_ATOM_STRING;
        atom->u.string = json_string_value(json);
        return 0;
    case JSON_ARRAY: {
        const char *tag = array_tag(json);
        if (!tag) {
            return OVSDB_MSG_E_BAD_ATOM;
        }
        bool is_uuid = !strcmp(tag, "uuid");
        if (!is_uuid && strcmp(tag, "named-uuid")) {
            return OVSDB_MSG_E_BAD_TAG;     /* Includes nested set/map. */
        }
        if (json_array_size(json) != 2) {
            return OVSDB_MSG_E_BAD_ARITY;
        }
        const json_t *value = json_array_get(json, 1);
        const char *s = json_string_value(value);
        if (is_uuid) {
            if (!s || string_has_nul(value) || !ovsdb_uuid_is_valid(s)) {
                return OVSDB_MSG_E_BAD_UUID;
            }
            atom->type = OVSDB_ATOM_UUID;
        } else {
            if (!s || string_has_nul(value) || !ovsdb_name_is_valid(s)) {
                return OVSDB_MSG_E_BAD_NAME;
            }
            if (!allow_named) {
                return OVSDB_MSG_E_NAMED_UUID;
            }
            atom->type = OVSDB_ATOM_NAMED_UUID;
        }
        atom->u.string = s;
        return 0;
    }
    case JSON_OBJECT:
    case JSON_NULL:
    default:
        return OVSDB_MSG_E_BAD_ATOM;
    }
}

static int
compare_atoms(const struct ovsdb_atom *a, const struct ovsdb_atom *b)
{
    if (a->type != b->type) {
        return a->type < b->type ? -1 : 1;
    }
    switch (a->type) {
    case OVSDB_ATOM_INTEGER:
        return a->u.integer < b->u.integer ? -1 : a->u.integer > b->u.integer;
    case OVSDB_ATOM_REAL:
        return a->u.real < b->u.real ? -1 : a->u.real > b->u.real;
    case OVSDB_ATOM_BOOLEAN:
        return (int) a->u.boolean - (int) b->u.boolean;
    case OVSDB_ATOM_UUID:
        /* UUIDs compare case-insensitively: the same UUID in two cases is
         * a duplicate. */
        return strcasecmp(a->u.string, b->u.string);
    case OVSDB_ATOM_STRING:
    case OVSDB_ATOM_NAMED_UUID:
        return strcmp(a->u.string, b->u.string);
    case OVSDB_ATOM_NONE:
    default:
        return 0;
    }
}

static int
compare_atom_ptrs(const void *a_, const void *b_)
{
    const struct ovsdb_atom *const *a = a_;
    const struct ovsdb_atom *const *b = b_;
    return compare_atoms(*a, *b);
}

/* Checks that the 'n' atoms in 'atoms' all have one type, converting
 * integers to reals if both appear.  Returns 0 or an error. */
static int
unify_types(struct ovsdb_atom *atoms, size_t n)
{
    bool saw_int = false, saw_real = false;
    enum ovsdb_atom_type type = OVSDB_ATOM_NONE;

    for (size_t i = 0; i < n; i++) {
        enum ovsdb_atom_type t = atoms[i].type;
        if (t == OVSDB_ATOM_INTEGER || t == OVSDB_ATOM_REAL) {
            saw_int |= t == OVSDB_ATOM_INTEGER;
            saw_real |= t == OVSDB_ATOM_REAL;
            t = OVSDB_ATOM_REAL;
        }
        if (i && t != type) {
            return OVSDB_MSG_E_MIXED_TYPES;
        }
        type = t;
    }
    if (saw_int && saw_real) {
        for (size_t i = 0; i < n; i++) {
            if (atoms[i].type == OVSDB_ATOM_INTEGER) {
                atoms[i].type = OVSDB_ATOM_REAL;
                atoms[i].u.real = (double) atoms[i].u.integer;
            }
        }
    }
    return 0;
}

/* Returns true if two of the 'n' atoms in 'atoms' are equal. */
static bool
has_duplicates(const struct ovsdb_atom *atoms, size_t n)
{
    if (n < 2) {
        return false;
    }
    /* ovsdb-server sends sets and maps in order: then one pass tells. */
    size_t i;
    for (i = 1; i < n && compare_atoms(&atoms[i - 1], &atoms[i]) < 0; i++) {
        continue;
    }
    if (i == n) {
        return false;
    }
    const struct ovsdb_atom **v = xmalloc(n * sizeof *v);
    for (i = 0; i < n; i++) {
        v[i] = &atoms[i];
    }
    qsort(v, n, sizeof *v, compare_atom_ptrs);
    bool dup = false;
    for (i = 1; i < n && !dup; i++) {
        dup = !compare_atoms(v[i - 1], v[i]);
    }
    free(v);
    return dup;
}

int
ovsdb_datum_from_json(struct ovsdb_datum *datum, const json_t *json,
                      bool allow_named)
{
    struct ovsdb_datum d = { .json = NULL };
    const char *tag = array_tag(json);
    int error = 0;

    if (tag && (!strcmp(tag, "set") || !strcmp(tag, "map"))) {
        d.is_map = !strcmp(tag, "map");
        if (json_array_size(json) != 2) {
            return OVSDB_MSG_E_BAD_ARITY;
        }
        const json_t *body = json_array_get(json, 1);
        if (!json_is_array(body)) {
            return OVSDB_MSG_E_NOT_ARRAY;
        }
        d.n = json_array_size(body);
        d.keys = xcalloc(d.n, sizeof *d.keys);
        if (d.is_map) {
            d.values = xcalloc(d.n, sizeof *d.values);
        }
        for (size_t i = 0; i < d.n && !error; i++) {
            const json_t *elem = json_array_get(body, i);
            if (!d.is_map) {
                error = atom_from_json(elem, allow_named, &d.keys[i]);
            } else if (!json_is_array(elem) || json_array_size(elem) != 2) {
                error = OVSDB_MSG_E_BAD_PAIR;
            } else {
                error = atom_from_json(json_array_get(elem, 0), allow_named,
                                       &d.keys[i]);
                if (!error) {
                    error = atom_from_json(json_array_get(elem, 1),
                                           allow_named, &d.values[i]);
                }
            }
        }
    } else {
        d.n = 1;
        d.keys = xcalloc(1, sizeof *d.keys);
        error = atom_from_json(json, allow_named, &d.keys[0]);
    }

    if (!error) {
        error = unify_types(d.keys, d.n);
    }
    if (!error && d.is_map) {
        error = unify_types(d.values, d.n);
    }
    if (!error && has_duplicates(d.keys, d.n)) {
        error = d.is_map ? OVSDB_MSG_E_DUP_KEY : OVSDB_MSG_E_DUP_ELEMENT;
    }
    if (error) {
        free(d.keys);
        free(d.values);
        return error;
    }
    d.json = json_incref((json_t *) json);
    *datum = d;
    return 0;
}

void
ovsdb_datum_destroy(struct ovsdb_datum *datum)
{
    if (datum) {
        free(datum->keys);
        free(datum->values);
        json_decref(datum->json);
        datum->keys = datum->values = NULL;
        datum->json = NULL;
        datum->n = 0;
    }
}

/* Returns a new reference owned by the caller; see ovsdb-msg.h. */
json_t *
ovsdb_atom_to_json(const struct ovsdb_atom *atom)
{
    switch (atom->type) {
    case OVSDB_ATOM_INTEGER:
        return json_integer(atom->u.integer);
    case OVSDB_ATOM_REAL:
        return json_real(atom->u.real);
    case OVSDB_ATOM_BOOLEAN:
        return json_boolean(atom->u.boolean);
    case OVSDB_ATOM_STRING:
        return json_string(atom->u.string);
    case OVSDB_ATOM_UUID:
        return ovsdb_datum_uuid(atom->u.string);
    case OVSDB_ATOM_NAMED_UUID:
        return ovsdb_datum_named_uuid(atom->u.string);
    case OVSDB_ATOM_NONE:
    default:
        return json_null();
    }
}

json_t *
ovsdb_datum_to_json(const struct ovsdb_datum *datum)
{
    if (!datum->is_map && datum->n == 1) {
        return ovsdb_atom_to_json(&datum->keys[0]);
    }
    json_t *body = json_array();
    for (size_t i = 0; i < datum->n; i++) {
        json_t *key = ovsdb_atom_to_json(&datum->keys[i]);
        if (datum->is_map) {
            json_array_append_new(body, json_pack("[oo]", key,
                                  ovsdb_atom_to_json(&datum->values[i])));
        } else {
            json_array_append_new(body, key);
        }
    }
    return json_pack("[so]", datum->is_map ? "map" : "set", body);
}

static bool
atom_type_matches(enum ovsdb_atom_type expected, enum ovsdb_atom_type actual,
                  bool allow_named)
{
    return (expected == actual
            || (expected == OVSDB_ATOM_REAL && actual == OVSDB_ATOM_INTEGER)
            || (expected == OVSDB_ATOM_UUID && allow_named
                && actual == OVSDB_ATOM_NAMED_UUID));
}

static int
datum_check_type(const struct ovsdb_datum *d, const struct ovsdb_type *type,
                 bool allow_named)
{
    if (!type || type->key == OVSDB_ATOM_NONE) {
        return 0;
    }
    bool want_map = type->value != OVSDB_ATOM_NONE;
    if (d->n && d->is_map != want_map) {
        return OVSDB_MSG_E_WRONG_TYPE;
    }
    if (d->n == 0 && d->is_map && !want_map) {
        return OVSDB_MSG_E_WRONG_TYPE;
    }
    for (size_t i = 0; i < d->n; i++) {
        if (!atom_type_matches(type->key, d->keys[i].type, allow_named)
            || (want_map && !atom_type_matches(type->value,
                                               d->values[i].type,
                                               allow_named))) {
            return OVSDB_MSG_E_WRONG_TYPE;
        }
    }
    if (d->n < type->n_min || d->n > type->n_max) {
        return OVSDB_MSG_E_WRONG_SIZE;
    }
    return 0;
}

int
ovsdb_datum_check(const json_t *json, const struct ovsdb_type *type,
                  bool allow_named)
{
    struct ovsdb_datum d;
    int error = ovsdb_datum_from_json(&d, json, allow_named);
    if (!error) {
        error = datum_check_type(&d, type, allow_named);
        ovsdb_datum_destroy(&d);
    }
    return error;
}

/* Decodes 'json' as an optional scalar of 'atom_type' into '*atom'.  Sets
 * '*present' to whether the set had an element.  Returns 0 or an error. */
static int
get_optional(const json_t *json, enum ovsdb_atom_type atom_type,
             struct ovsdb_atom *atom, bool *present)
{
    const struct ovsdb_type type = { atom_type, OVSDB_ATOM_NONE, 0, 1 };
    struct ovsdb_datum d;
    int error = ovsdb_datum_from_json(&d, json, false);
    if (error) {
        return error;
    }
    error = datum_check_type(&d, &type, false);
    if (!error) {
        *present = d.n > 0;
        if (d.n) {
            *atom = d.keys[0];
        }
    }
    ovsdb_datum_destroy(&d);
    return error;
}

int
ovsdb_datum_get_integer(const json_t *datum, int64_t *value, bool *present)
{
    struct ovsdb_atom atom;
    bool p;
    int error = get_optional(datum, OVSDB_ATOM_INTEGER, &atom, &p);
    if (!error) {
        *present = p;
        if (p) {
            *value = atom.u.integer;
        }
    }
    return error;
}

int
ovsdb_datum_get_boolean(const json_t *datum, bool *value, bool *present)
{
    struct ovsdb_atom atom;
    bool p;
    int error = get_optional(datum, OVSDB_ATOM_BOOLEAN, &atom, &p);
    if (!error) {
        *present = p;
        if (p) {
            *value = atom.u.boolean;
        }
    }
    return error;
}

/* The string atoms point into 'datum', which the caller holds, so they
 * stay valid after the decoded datum is destroyed. */
int
ovsdb_datum_get_string(const json_t *datum, const char **value)
{
    struct ovsdb_atom atom;
    bool p;
    int error = get_optional(datum, OVSDB_ATOM_STRING, &atom, &p);
    if (!error) {
        *value = p ? atom.u.string : NULL;
    }
    return error;
}

int
ovsdb_datum_get_uuid(const json_t *datum, const char **uuid)
{
    struct ovsdb_atom atom;
    bool p;
    int error = get_optional(datum, OVSDB_ATOM_UUID, &atom, &p);
    if (!error) {
        *uuid = p ? atom.u.string : NULL;
    }
    return error;
}

int
ovsdb_datum_get_uuid_set(const json_t *datum, json_t **uuids)
{
    static const struct ovsdb_type type = OVSDB_TYPE_SET(UUID);
    struct ovsdb_datum d;
    int error = ovsdb_datum_from_json(&d, datum, false);
    if (error) {
        return error;
    }
    error = datum_check_type(&d, &type, false);
    if (!error) {
        json_t *array = json_array();
        for (size_t i = 0; i < d.n; i++) {
            json_array_append_new(array, json_string(d.keys[i].u.string));
        }
        *uuids = array;
    }
    ovsdb_datum_destroy(&d);
    return error;
}

json_t *
ovsdb_datum_string_array(const json_t *datum)
{
    static const struct ovsdb_type type = OVSDB_TYPE_SET(STRING);
    json_t *array = json_array();
    struct ovsdb_datum d;

    if (datum && !ovsdb_datum_from_json(&d, datum, false)) {
        if (!datum_check_type(&d, &type, false)) {
            for (size_t i = 0; i < d.n; i++) {
                json_array_append_new(array,
                                      json_string(d.keys[i].u.string));
            }
        }
        ovsdb_datum_destroy(&d);
    }
    return array;
}

int
ovsdb_datum_get_string_map(const json_t *datum, json_t **map)
{
    static const struct ovsdb_type type = OVSDB_TYPE_MAP(STRING, STRING);
    struct ovsdb_datum d;
    int error = ovsdb_datum_from_json(&d, datum, false);
    if (error) {
        return error;
    }
    error = datum_check_type(&d, &type, false);
    if (!error) {
        json_t *object = json_object();
        for (size_t i = 0; i < d.n; i++) {
            json_object_set_new(object, d.keys[i].u.string,
                                json_string(d.values[i].u.string));
        }
        *map = object;
    }
    ovsdb_datum_destroy(&d);
    return error;
}

/* ----------------------------------------------------------------------
 * Datum builders.
 */

json_t *
ovsdb_datum_uuid(const char *uuid)
{
    return json_pack("[ss]", "uuid", uuid);
}

json_t *
ovsdb_datum_named_uuid(const char *name)
{
    return json_pack("[ss]", "named-uuid", name);
}

json_t *
ovsdb_datum_set(json_t *atoms)
{
    return json_pack("[so]", "set", atoms);
}

json_t *
ovsdb_datum_uuid_set(const json_t *uuids)
{
    json_t *atoms = json_array();
    size_t i;
    json_t *u;

    json_array_foreach (uuids, i, u) {
        if (!json_is_string(u)) {
            json_decref(atoms);
            return NULL;
        }
        json_array_append_new(atoms, ovsdb_datum_uuid(json_string_value(u)));
    }
    return ovsdb_datum_set(atoms);
}

json_t *
ovsdb_datum_string_set(const char *const *strings, size_t n)
{
    json_t *atoms = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(atoms, json_string(strings[i]));
    }
    return ovsdb_datum_set(atoms);
}

static int
compare_strings(const void *a_, const void *b_)
{
    const char *const *a = a_;
    const char *const *b = b_;
    return strcmp(*a, *b);
}

json_t *
ovsdb_datum_string_map(const json_t *object)
{
    if (!json_is_object(object)) {
        return NULL;
    }
    size_t n = json_object_size(object);
    const char **keys = xcalloc(n, sizeof *keys);
    size_t i = 0;
    const char *key;
    json_t *value;

    json_object_foreach ((json_t *) object, key, value) {
        if (!json_is_string(value)) {
            free(keys);
            return NULL;
        }
        keys[i++] = key;
    }
    qsort(keys, n, sizeof *keys, compare_strings);

    json_t *pairs = json_array();
    for (i = 0; i < n; i++) {
        json_array_append_new(pairs, json_pack("[sO]", keys[i],
                                               json_object_get(object,
                                                               keys[i])));
    }
    free(keys);
    return json_pack("[so]", "map", pairs);
}

/* ----------------------------------------------------------------------
 * Request builders.
 */

json_t *
ovsdb_where_uuid(const char *uuid)
{
    return json_pack("[o]", ovsdb_condition("_uuid", "==",
                                            ovsdb_datum_uuid(uuid)));
}

json_t *
ovsdb_condition(const char *column, const char *function, json_t *value)
{
    return json_pack("[sso]", column, function, value);
}

json_t *
ovsdb_mutation(const char *column, const char *mutator, json_t *value)
{
    return json_pack("[sso]", column, mutator, value);
}

json_t *
ovsdb_op_insert(const char *table, json_t *row, const char *uuid_name)
{
    json_t *op = json_pack("{ssssso}", "op", "insert", "table", table,
                           "row", row);
    if (uuid_name) {
        json_object_set_new(op, "uuid-name", json_string(uuid_name));
    }
    return op;
}

json_t *
ovsdb_op_select(const char *table, json_t *where, json_t *columns)
{
    json_t *op = json_pack("{ssssso}", "op", "select", "table", table,
                           "where", where);
    if (columns) {
        json_object_set_new(op, "columns", columns);
    }
    return op;
}

json_t *
ovsdb_op_update(const char *table, json_t *where, json_t *row)
{
    return json_pack("{sssssoso}", "op", "update", "table", table,
                     "where", where, "row", row);
}

json_t *
ovsdb_op_mutate(const char *table, json_t *where, json_t *mutations)
{
    return json_pack("{sssssoso}", "op", "mutate", "table", table,
                     "where", where, "mutations", mutations);
}

json_t *
ovsdb_op_delete(const char *table, json_t *where)
{
    return json_pack("{ssssso}", "op", "delete", "table", table,
                     "where", where);
}

json_t *
ovsdb_op_wait(const char *table, json_t *where, json_t *columns,
              const char *until, json_t *rows, int64_t timeout_ms)
{
    json_t *op = json_pack("{sssssosossso}", "op", "wait", "table", table,
                           "where", where, "columns", columns,
                           "until", until, "rows", rows);
    if (timeout_ms >= 0) {
        json_object_set_new(op, "timeout", json_integer(timeout_ms));
    }
    return op;
}

json_t *
ovsdb_op_comment(const char *comment)
{
    return json_pack("{ssss}", "op", "comment", "comment", comment);
}

json_t *
ovsdb_msg_transact_params(const char *db, json_t *ops)
{
    json_t *params = json_pack("[s]", db);
    json_array_extend(params, ops);
    json_decref(ops);
    return params;
}

int
ovsdb_msg_monitor_requests_add(json_t *requests, const char *table,
                               const char *const *columns, size_t n_columns)
{
    if (!json_is_object(requests)) {
        return OVSDB_MSG_E_NOT_OBJECT;
    }
    json_t *request = json_object();
    if (n_columns) {
        json_t *cols = json_array();
        for (size_t i = 0; i < n_columns; i++) {
            json_array_append_new(cols, json_string(columns[i]));
        }
        json_object_set_new(request, "columns", cols);
    }
    json_object_set_new(requests, table, request);
    return 0;
}

json_t *
ovsdb_msg_monitor_params(const char *db, json_t *monitor_id,
                         json_t *requests)
{
    return json_pack("[soo]", db, monitor_id, requests);
}

json_t *
ovsdb_msg_monitor_cancel_params(json_t *monitor_id)
{
    return json_pack("[o]", monitor_id);
}

json_t *
ovsdb_msg_get_schema_params(const char *db)
{
    return json_pack("[s]", db);
}

json_t *
ovsdb_msg_list_dbs_params(void)
{
    return json_array();
}

/* ----------------------------------------------------------------------
 * Reply parsers.
 */

static int
check_row(const json_t *row)
{
    const char *column;
    json_t *value;

    if (!json_is_object(row)) {
        return OVSDB_MSG_E_NOT_OBJECT;
    }
    json_object_foreach ((json_t *) row, column, value) {
        int error = ovsdb_datum_check(value, NULL, false);
        if (error) {
            return error;
        }
    }
    return 0;
}

static int
check_row_update(const json_t *ru)
{
    const char *member;
    json_t *value;

    if (!json_is_object(ru)) {
        return OVSDB_MSG_E_NOT_OBJECT;
    }
    if (!json_object_get(ru, "old") && !json_object_get(ru, "new")) {
        return OVSDB_MSG_E_EMPTY_UPDATE;
    }
    json_object_foreach ((json_t *) ru, member, value) {
        if (strcmp(member, "old") && strcmp(member, "new")) {
            return OVSDB_MSG_E_BAD_MEMBER;
        }
        int error = check_row(value);
        if (error) {
            return error;
        }
    }
    return 0;
}

int
ovsdb_msg_parse_table_updates(const json_t *updates, ovsdb_msg_row_cb *cb,
                              void *aux)
{
    const char *table, *uuid;
    json_t *tu, *ru;

    if (!json_is_object(updates)) {
        return OVSDB_MSG_E_NOT_OBJECT;
    }
    json_object_foreach ((json_t *) updates, table, tu) {
        if (!json_is_object(tu)) {
            return OVSDB_MSG_E_NOT_OBJECT;
        }
        json_object_foreach (tu, uuid, ru) {
            if (!ovsdb_uuid_is_valid(uuid)) {
                return OVSDB_MSG_E_BAD_UUID;
            }
            int error = check_row_update(ru);
            if (error) {
                return error;
            }
        }
    }

    json_object_foreach ((json_t *) updates, table, tu) {
        json_object_foreach (tu, uuid, ru) {
            cb(table, uuid, json_object_get(ru, "old"),
               json_object_get(ru, "new"), aux);
        }
    }
    return 0;
}

int
ovsdb_msg_parse_update_params(const json_t *params,
                              const json_t **monitor_id,
                              const json_t **updates)
{
    if (!json_is_array(params) || json_array_size(params) != 2) {
        return OVSDB_MSG_E_BAD_PARAMS;
    }
    *monitor_id = json_array_get(params, 0);
    *updates = json_array_get(params, 1);
    return 0;
}

/* Returns true if 'elem' is an <error> object (has an "error" member). */
static bool
is_error(const json_t *elem)
{
    return json_is_object(elem) && json_object_get(elem, "error");
}

/* Formats the <error> 'elem' for operation 'i' of 'n_ops' (i == n_ops:
 * commit).  Returns a malloc'd string, or NULL if 'elem' is malformed. */
static char *
format_error(const json_t *elem, size_t i, size_t n_ops)
{
    const json_t *error = json_object_get(elem, "error");
    const json_t *details = json_object_get(elem, "details");
    char where[64];

    if (!json_is_string(error) || (details && !json_is_string(details))) {
        return NULL;
    }
    if (i == n_ops) {
        snprintf(where, sizeof where, "commit");
    } else {
        snprintf(where, sizeof where, "operation %zu", i);
    }
    if (details && json_string_length(details)) {
        return xasprintf("%s: %s (%s)", json_string_value(error),
                         json_string_value(details), where);
    }
    return xasprintf("%s (%s)", json_string_value(error), where);
}

int
ovsdb_msg_parse_transact_reply(const json_t *result, size_t n_ops,
                               json_t **uuidsp, char **errorp)
{
    json_t *uuids = NULL;
    char *msg = NULL;
    int error = 0;

    if (!json_is_array(result)) {
        msg = xasprintf("result is not an array");
        error = OVSDB_MSG_E_BAD_RESULT;
        goto out;
    }

    size_t n = json_array_size(result);
    if (n < n_ops || n > n_ops + 1) {
        msg = xasprintf("%zu results for %zu operations", n, n_ops);
        error = OVSDB_MSG_E_RESULT_COUNT;
        goto out;
    }

    /* Find the first error, if any, and check the shape of each element:
     * objects before the error, null after it. */
    size_t first_error = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        const json_t *elem = json_array_get(result, i);
        if (first_error != SIZE_MAX) {
            if (!json_is_null(elem) && !(i == n_ops && is_error(elem))) {
                msg = xasprintf("result %zu follows an error", i);
                error = OVSDB_MSG_E_BAD_RESULT;
                goto out;
            }
        } else if (is_error(elem)) {
            first_error = i;
        } else if (i == n_ops) {
            /* The extra element, if present, must be a commit error. */
            msg = xasprintf("%zu results for %zu operations", n, n_ops);
            error = OVSDB_MSG_E_RESULT_COUNT;
            goto out;
        } else if (!json_is_object(elem)) {
            msg = xasprintf("result %zu is neither an object nor an error",
                            i);
            error = OVSDB_MSG_E_BAD_RESULT;
            goto out;
        }
    }
    if (first_error < n_ops && n != n_ops) {
        msg = xasprintf("%zu results for %zu operations", n, n_ops);
        error = OVSDB_MSG_E_RESULT_COUNT;
        goto out;
    }
    if (first_error != SIZE_MAX) {
        msg = format_error(json_array_get(result, first_error), first_error,
                           n_ops);
        if (!msg) {
            msg = xasprintf("malformed error in result %zu", first_error);
            error = OVSDB_MSG_E_BAD_RESULT;
        } else {
            error = OVSDB_MSG_E_TXN_ERROR;
        }
        goto out;
    }

    uuids = json_array();
    for (size_t i = 0; i < n_ops; i++) {
        const json_t *uuid = json_object_get(json_array_get(result, i),
                                             "uuid");
        const char *u;
        if (!uuid) {
            json_array_append_new(uuids, json_null());
        } else if (ovsdb_datum_get_uuid(uuid, &u) || !u) {
            msg = xasprintf("result %zu has a malformed uuid", i);
            error = OVSDB_MSG_E_BAD_UUID;
            goto out;
        } else {
            json_array_append_new(uuids, json_string(u));
        }
    }

out:
    if (error) {
        json_decref(uuids);
        uuids = NULL;
    }
    if (uuidsp) {
        *uuidsp = uuids;
    } else {
        json_decref(uuids);
    }
    if (errorp) {
        *errorp = msg;
    } else {
        free(msg);
    }
    return error;
}

bool
ovsdb_msg_schema_has_column(const json_t *schema, const char *table,
                            const char *column)
{
    const json_t *t = json_object_get(json_object_get(schema, "tables"),
                                      table);
    if (!json_is_object(t)) {
        return false;
    }
    if (!column || !strcmp(column, "_uuid") || !strcmp(column, "_version")) {
        return true;
    }
    return json_object_get(json_object_get(t, "columns"), column) != NULL;
}

/* ----------------------------------------------------------------------
 * Monitor versions 2 and 3.
 */

static enum ovsdb_atom_type
schema_atom_type(const json_t *json)
{
    if (json_is_object(json)) {
        json = json_object_get(json, "type");
    }
    const char *s = json_string_value(json);
    static const enum ovsdb_atom_type types[] = {
        OVSDB_ATOM_INTEGER, OVSDB_ATOM_REAL, OVSDB_ATOM_BOOLEAN,
        OVSDB_ATOM_STRING, OVSDB_ATOM_UUID,
    };
    for (size_t i = 0; s && i < ARRAY_SIZE(types); i++) {
        if (!strcmp(s, ovsdb_atom_type_name(types[i]))) {
            return types[i];
        }
    }
    return OVSDB_ATOM_NONE;
}

static bool
schema_bound(const json_t *json, unsigned int dflt, unsigned int *n)
{
    if (!json) {
        *n = dflt;
    } else if (json_is_string(json)
               && !strcmp(json_string_value(json), "unlimited")) {
        *n = OVSDB_N_UNLIMITED;
    } else if (json_is_integer(json) && json_integer_value(json) >= 0
               && json_integer_value(json) < OVSDB_N_UNLIMITED) {
        *n = json_integer_value(json);
    } else {
        return false;
    }
    return true;
}

bool
ovsdb_msg_schema_column_type(const json_t *schema, const char *table,
                             const char *column, struct ovsdb_type *type)
{
    const json_t *t = json_object_get(json_object_get(schema, "tables"),
                                      table);
    if (!json_is_object(t)) {
        return false;
    }
    if (!strcmp(column, "_uuid") || !strcmp(column, "_version")) {
        *type = (struct ovsdb_type) OVSDB_TYPE_SCALAR(UUID);
        return true;
    }
    const json_t *c = json_object_get(json_object_get(t, "columns"), column);
    const json_t *ty = json_object_get(c, "type");
    struct ovsdb_type result = { OVSDB_ATOM_NONE, OVSDB_ATOM_NONE, 1, 1 };

    if (json_is_string(ty)) {
        result.key = schema_atom_type(ty);
    } else if (json_is_object(ty)) {
        result.key = schema_atom_type(json_object_get(ty, "key"));
        const json_t *value = json_object_get(ty, "value");
        if (value) {
            result.value = schema_atom_type(value);
            if (result.value == OVSDB_ATOM_NONE) {
                result.key = OVSDB_ATOM_NONE;
            }
        }
        if (!schema_bound(json_object_get(ty, "min"), 1, &result.n_min)
            || !schema_bound(json_object_get(ty, "max"), 1, &result.n_max)) {
            return false;
        }
    } else {
        return false;
    }
    *type = result;
    return true;
}

static json_t *
atom_default(enum ovsdb_atom_type type)
{
    switch (type) {
    case OVSDB_ATOM_INTEGER:
        return json_integer(0);
    case OVSDB_ATOM_REAL:
        return json_real(0.0);
    case OVSDB_ATOM_BOOLEAN:
        return json_false();
    case OVSDB_ATOM_STRING:
        return json_string("");
    case OVSDB_ATOM_UUID:
        return ovsdb_datum_uuid(OVSDB_UUID_ZERO);
    case OVSDB_ATOM_NAMED_UUID:
    case OVSDB_ATOM_NONE:
    default:
        return NULL;
    }
}

json_t *
ovsdb_datum_default(const struct ovsdb_type *type)
{
    if (type->key == OVSDB_ATOM_NONE) {
        return NULL;
    }
    if (type->n_min == 0) {
        return json_pack("[s[]]", type->value != OVSDB_ATOM_NONE
                                  ? "map" : "set");
    }
    if (type->value != OVSDB_ATOM_NONE) {
        json_t *k = atom_default(type->key);
        json_t *v = atom_default(type->value);
        return json_pack("[s[[oo]]]", "map", k, v);
    }
    return atom_default(type->key);
}

struct pair {
    struct ovsdb_atom key;
    struct ovsdb_atom value;
};

static int
compare_pairs(const void *a_, const void *b_)
{
    const struct pair *a = a_;
    const struct pair *b = b_;
    return compare_atoms(&a->key, &b->key);
}

/* Returns the index of 'key' in 'pairs' (n elements, sorted by key), or
 * -1. */
static ptrdiff_t
find_pair(const struct pair *pairs, size_t n, const struct ovsdb_atom *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = compare_atoms(&pairs[mid].key, key);
        if (!cmp) {
            return mid;
        } else if (cmp < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -1;
}

static bool
pairs_sorted(const struct pair *pairs, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (compare_pairs(&pairs[i - 1], &pairs[i]) > 0) {
            return false;
        }
    }
    return true;
}

/* Merges the sorted runs 'a' (na pairs) and 'b' (nb pairs) into 'out'. */
static void
merge_pairs(const struct pair *a, size_t na, const struct pair *b, size_t nb,
            struct pair *out)
{
    size_t i = 0, j = 0, k = 0;
    while (i < na && j < nb) {
        out[k++] = compare_pairs(&a[i], &b[j]) <= 0 ? a[i++] : b[j++];
    }
    while (i < na) {
        out[k++] = a[i++];
    }
    while (j < nb) {
        out[k++] = b[j++];
    }
}

int
ovsdb_datum_apply_diff(const json_t *old, const json_t *diff,
                       const struct ovsdb_type *type, json_t **newp)
{
    struct ovsdb_datum o, d;
    json_t *dflt = NULL;
    int error;

    *newp = NULL;
    error = ovsdb_datum_from_json(&d, diff, false);
    if (error) {
        return error;
    }

    bool known = type->key != OVSDB_ATOM_NONE;
    const char *tag = array_tag(diff);
    bool composite = (known ? type->n_max > 1
                      : tag && (!strcmp(tag, "set") || !strcmp(tag, "map")));
    if (!composite) {
        error = known ? datum_check_type(&d, type, false) : 0;
        if (!error) {
            *newp = json_incref((json_t *) diff);
        }
        ovsdb_datum_destroy(&d);
        return error;
    }
    bool is_map = known ? type->value != OVSDB_ATOM_NONE : d.is_map;
    if (d.n && d.is_map != is_map) {
        ovsdb_datum_destroy(&d);
        return OVSDB_MSG_E_WRONG_TYPE;
    }

    if (!old) {
        old = dflt = known ? ovsdb_datum_default(type)
                           : json_pack("[s[]]", is_map ? "map" : "set");
    }
    error = ovsdb_datum_from_json(&o, old, false);
    if (error) {
        json_decref(dflt);
        ovsdb_datum_destroy(&d);
        return error;
    }
    if (o.n && o.is_map != is_map) {
        error = OVSDB_MSG_E_WRONG_TYPE;
        goto out;
    }

    /* The old pairs, sorted (ovsdb-server sends them so), are looked up by
     * binary search and marked 'gone'; the diff's new keys go after them,
     * then both runs are merged: a diff of m pairs to a datum of n costs
     * O(n + m log n), not O(n m). */
    struct pair *pairs = xcalloc(o.n + d.n + 1, sizeof *pairs);
    bool *gone = xcalloc(o.n + 1, sizeof *gone);
    size_t n = o.n;
    for (size_t i = 0; i < o.n; i++) {
        pairs[i].key = o.keys[i];
        if (is_map) {
            pairs[i].value = o.values[i];
        }
    }
    if (!pairs_sorted(pairs, o.n)) {
        qsort(pairs, o.n, sizeof *pairs, compare_pairs);
    }
    for (size_t i = 0; i < d.n; i++) {
        ptrdiff_t pos = find_pair(pairs, o.n, &d.keys[i]);
        if (pos < 0) {
            /* A new key (the diff's keys are distinct: decoding it
             * checked). */
            pairs[n].key = d.keys[i];
            if (is_map) {
                pairs[n].value = d.values[i];
            }
            n++;
        } else if (is_map && compare_atoms(&pairs[pos].value,
                                           &d.values[i])) {
            pairs[pos].value = d.values[i];
        } else {
            gone[pos] = true;
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < o.n; i++) {
        if (!gone[i]) {
            pairs[kept++] = pairs[i];
        }
    }
    size_t n_new = n - o.n;
    struct pair *added = pairs + o.n;
    qsort(added, n_new, sizeof *added, compare_pairs);
    struct pair *merged = xcalloc(kept + n_new + 1, sizeof *merged);
    merge_pairs(pairs, kept, added, n_new, merged);
    free(pairs);
    free(gone);
    pairs = merged;
    n = kept + n_new;

    struct ovsdb_datum result = {
        .is_map = is_map,
        .n = n,
        .keys = xcalloc(n + 1, sizeof *result.keys),
        .values = is_map ? xcalloc(n + 1, sizeof *result.values) : NULL,
    };
    for (size_t i = 0; i < n; i++) {
        result.keys[i] = pairs[i].key;
        if (is_map) {
            result.values[i] = pairs[i].value;
        }
    }
    free(pairs);
    if (known) {
        error = datum_check_type(&result, type, false);
    } else {
        error = unify_types(result.keys, n);
    }
    if (!error) {
        *newp = ovsdb_datum_to_json(&result);
    }
    free(result.keys);
    free(result.values);

out:
    ovsdb_datum_destroy(&o);
    ovsdb_datum_destroy(&d);
    json_decref(dflt);
    return error;
}

static const char *const ru2_names[] = {
    [OVSDB_RU2_INITIAL] = "initial",
    [OVSDB_RU2_INSERT] = "insert",
    [OVSDB_RU2_DELETE] = "delete",
    [OVSDB_RU2_MODIFY] = "modify",
};

static int
check_row_update2(const json_t *ru, enum ovsdb_row_update2_kind *kind)
{
    if (!json_is_object(ru)) {
        return OVSDB_MSG_E_NOT_OBJECT;
    }
    if (json_object_size(ru) != 1) {
        return json_object_size(ru) ? OVSDB_MSG_E_BAD_MEMBER
                                    : OVSDB_MSG_E_EMPTY_UPDATE;
    }
    for (size_t i = 0; i < ARRAY_SIZE(ru2_names); i++) {
        const json_t *value = json_object_get(ru, ru2_names[i]);
        if (value) {
            *kind = i;
            if (i == OVSDB_RU2_DELETE) {
                return json_is_null(value) ? 0 : OVSDB_MSG_E_BAD_MEMBER;
            }
            return check_row(value);
        }
    }
    return OVSDB_MSG_E_BAD_MEMBER;
}

int
ovsdb_msg_parse_table_updates2(const json_t *updates, ovsdb_msg_row2_cb *cb,
                               void *aux)
{
    enum ovsdb_row_update2_kind kind;
    const char *table, *uuid;
    json_t *tu, *ru;

    if (!json_is_object(updates)) {
        return OVSDB_MSG_E_NOT_OBJECT;
    }
    json_object_foreach ((json_t *) updates, table, tu) {
        if (!json_is_object(tu)) {
            return OVSDB_MSG_E_NOT_OBJECT;
        }
        json_object_foreach (tu, uuid, ru) {
            if (!ovsdb_uuid_is_valid(uuid)) {
                return OVSDB_MSG_E_BAD_UUID;
            }
            int error = check_row_update2(ru, &kind);
            if (error) {
                return error;
            }
        }
    }

    json_object_foreach ((json_t *) updates, table, tu) {
        json_object_foreach (tu, uuid, ru) {
            check_row_update2(ru, &kind);
            const json_t *row = json_object_get(ru, ru2_names[kind]);
            cb(table, uuid, kind, kind == OVSDB_RU2_DELETE ? NULL : row,
               aux);
        }
    }
    return 0;
}

int
ovsdb_msg_parse_update3_params(const json_t *params, bool v3,
                               const json_t **monitor_id,
                               const char **last_id, const json_t **updates)
{
    if (!json_is_array(params) || json_array_size(params) != (v3 ? 3 : 2)) {
        return OVSDB_MSG_E_BAD_PARAMS;
    }
    *last_id = NULL;
    *monitor_id = json_array_get(params, 0);
    *updates = json_array_get(params, v3 ? 2 : 1);
    if (v3) {
        const json_t *id = json_array_get(params, 1);
        if (!json_is_string(id) || string_has_nul(id)
            || !ovsdb_uuid_is_valid(json_string_value(id))) {
            return OVSDB_MSG_E_BAD_UUID;
        }
        *last_id = json_string_value(id);
    }
    return 0;
}

int
ovsdb_msg_parse_monitor_cond_since_reply(const json_t *result, bool *found,
                                         const char **last_id,
                                         const json_t **updates)
{
    if (!json_is_array(result) || json_array_size(result) != 3
        || !json_is_boolean(json_array_get(result, 0))) {
        return OVSDB_MSG_E_BAD_PARAMS;
    }
    const json_t *id = json_array_get(result, 1);
    if (!json_is_string(id) || string_has_nul(id)
        || !ovsdb_uuid_is_valid(json_string_value(id))) {
        return OVSDB_MSG_E_BAD_UUID;
    }
    *found = json_is_true(json_array_get(result, 0));
    *last_id = json_string_value(id);
    *updates = json_array_get(result, 2);
    return 0;
}

int
ovsdb_msg_monitor_cond_requests_add(json_t *requests, const char *table,
                                    const char *const *columns,
                                    size_t n_columns, json_t *where)
{
    if (!json_is_object(requests)) {
        json_decref(where);
        return OVSDB_MSG_E_NOT_OBJECT;
    }
    json_t *req = json_object();
    if (n_columns) {
        json_t *cols = json_array();
        for (size_t i = 0; i < n_columns; i++) {
            json_array_append_new(cols, json_string(columns[i]));
        }
        json_object_set_new(req, "columns", cols);
    }
    if (where) {
        json_object_set_new(req, "where", where);
    }
    json_object_set_new(requests, table, json_pack("[o]", req));
    return 0;
}

json_t *
ovsdb_msg_monitor_cond_params(const char *db, json_t *monitor_id,
                              json_t *requests, const char *last_id)
{
    json_t *params = json_pack("[soo]", db, monitor_id, requests);
    if (last_id) {
        json_array_append_new(params, json_string(last_id));
    }
    return params;
}

json_t *
ovsdb_msg_monitor_cond_change_params(json_t *old_id, json_t *new_id,
                                     json_t *changes)
{
    return json_pack("[ooo]", old_id, new_id, changes);
}
