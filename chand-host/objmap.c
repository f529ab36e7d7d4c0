/* objmap: the host's object mapping.  See objmap.h. */

#include <config.h>
#include "objmap.h"

#include <inttypes.h>
#include <string.h>

#include "ovsdb-msg.h"
#include "ovsdb-replica.h"
#include "util.h"

bool
objmap_is_object_key(const char *key)
{
    return !strncmp(key, OBJMAP_PREFIX, strlen(OBJMAP_PREFIX));
}

static bool
is_digest(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) {
            return false;
        }
    }
    return n == OBJMAP_DIGEST_LEN;
}

/* A flag or a parameter name: [a-z0-9_-]{1,32}. */
static bool
is_name(const char *s, size_t len)
{
    if (!len || len > 32 || strlen(s) != len) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'
              || c == '-')) {
            return false;
        }
    }
    return true;
}

/* An absolute path without NUL, at most OBJMAP_MAX_PATH bytes.  (The guest
 * normalizes paths; the host only stores them.) */
static bool
is_path(const json_t *p)
{
    const char *s = json_string_value(p);
    size_t len = json_string_length(p);
    return s && len && len <= OBJMAP_MAX_PATH && strlen(s) == len
           && s[0] == '/';
}

static const char *
parse_paths(const json_t *paths)
{
    size_t i;
    const json_t *p;

    if (!json_is_array(paths) || !json_array_size(paths)
        || json_array_size(paths) > OBJMAP_MAX_PATHS) {
        return "\"paths\" must be an array of 1 to 64 paths";
    }
    json_array_foreach (paths, i, p) {
        if (!is_path(p)) {
            return "a path is not an absolute path";
        }
    }
    return NULL;
}

static const char *
parse_flags(const json_t *flags)
{
    size_t i;
    const json_t *f;

    if (!json_is_array(flags) || json_array_size(flags) > OBJMAP_MAX_FLAGS) {
        return "\"flags\" must be an array of at most 16 names";
    }
    json_array_foreach (flags, i, f) {
        if (!json_is_string(f)
            || !is_name(json_string_value(f), json_string_length(f))) {
            return "a flag is not a name ([a-z0-9_-], 1 to 32)";
        }
    }
    return NULL;
}

static const char *
parse_params(const json_t *params)
{
    const char *name;
    const json_t *v;

    if (!json_is_object(params) || json_object_size(params)
                                   > OBJMAP_MAX_PARAMS) {
        return "\"params\" must be an object of at most 16 strings";
    }
    json_object_foreach ((json_t *) params, name, v) {
        if (!is_name(name, strlen(name)) || !json_is_string(v)
            || json_string_length(v) > 256
            || strlen(json_string_value(v)) != json_string_length(v)) {
            return "a parameter is not a name with a string of at most "
                   "256 bytes";
        }
    }
    return NULL;
}

const char *
objmap_parse(const char *key, const json_t *value, struct objmap_entry *e)
{
    memset(e, 0, sizeof *e);
    if (!objmap_is_object_key(key) || !is_digest(key + strlen(OBJMAP_PREFIX))) {
        return "key is not obj/ and a sha256 digest in lowercase hex";
    }
    memcpy(e->digest, key + strlen(OBJMAP_PREFIX), OBJMAP_DIGEST_LEN);
    if (!json_is_object(value)) {
        return "value is not an object";
    }

    const char *member;
    const json_t *v;
    json_object_foreach ((json_t *) value, member, v) {
        if (strcmp(member, "size") && strcmp(member, "paths")
            && strcmp(member, "flags") && strcmp(member, "params")) {
            return "value has an unknown member";
        }
    }
    const json_t *size = json_object_get(value, "size");
    if (!json_is_integer(size) || json_integer_value(size) < 0
        || json_integer_value(size) > (INT64_C(1) << 53)) {
        return "\"size\" must be an integer from 0 to 2^53";
    }
    e->size = json_integer_value(size);
    e->paths = json_object_get(value, "paths");
    e->flags = json_object_get(value, "flags");
    e->params = json_object_get(value, "params");

    const char *error = parse_paths(e->paths);
    if (!error) {
        error = e->flags ? parse_flags(e->flags) : "\"flags\" is missing";
    }
    if (!error) {
        error = e->params ? parse_params(e->params) : "\"params\" is missing";
    }
    return error;
}

void
objmap_txn_init(struct objmap_txn *txn)
{
    txn->new_objects = json_object();
    txn->n_names = 0;
}

void
objmap_txn_destroy(struct objmap_txn *txn)
{
    json_decref(txn->new_objects);
    txn->new_objects = NULL;
}

/* Returns the row of 'table' in 'replica' whose string 'column' is 'value'
 * (and, if 'vm' is nonnull, whose "vm" is 'vm'), or NULL. */
static const struct ovsdb_replica_row *
find_row(const struct ovsdb_replica *replica, const char *table,
         const char *column, const char *value, const char *vm)
{
    const struct ovsdb_replica_table *t = ovsdb_replica_get_table(replica,
                                                                  table);
    if (!t) {
        return NULL;
    }
    for (const struct ovsdb_replica_row *row = ovsdb_replica_first(t); row;
         row = ovsdb_replica_next(row)) {
        const char *s, *v;
        if (!ovsdb_datum_get_string(ovsdb_replica_row_get(row, column), &s)
            && !strcmp(s, value)
            && (!vm || (!ovsdb_datum_get_string(ovsdb_replica_row_get(row,
                                                                      "vm"),
                                                &v)
                        && !strcmp(v, vm)))) {
            return row;
        }
    }
    return NULL;
}

static json_t *
where_ref(const char *vm, const char *digest)
{
    return json_pack("[oo]", ovsdb_condition("vm", "==", json_string(vm)),
                     ovsdb_condition("digest", "==", json_string(digest)));
}

static json_t *
where_named(const char *name)
{
    return json_pack("[o]", ovsdb_condition("_uuid", "==",
                                            ovsdb_datum_named_uuid(name)));
}

/* Makes the Object row of 'e' available in 'ops': returns a new reference
 * to a uuid or named-uuid for it, and in '*mutate_where' (new reference)
 * the condition that selects it.  Returns NULL with an error in '*error'
 * if the size disagrees with the row's. */
static json_t *
object_for(const struct ovsdb_replica *replica, struct objmap_txn *txn,
           const struct objmap_entry *e, json_t *ops, json_t **mutate_where,
           const char **error)
{
    const struct ovsdb_replica_row *row = find_row(replica, "Object",
                                                   "digest", e->digest,
                                                   NULL);
    json_t *known = json_object_get(txn->new_objects, e->digest);
    int64_t size;
    bool present;

    if (row) {
        if (ovsdb_datum_get_integer(ovsdb_replica_row_get(row, "size"),
                                    &size, &present)
            || !present || size != e->size) {
            *error = "size differs from the object's known size";
            return NULL;
        }
        *mutate_where = ovsdb_where_uuid(ovsdb_replica_row_uuid(row));
        return ovsdb_datum_uuid(ovsdb_replica_row_uuid(row));
    } else if (known) {
        if (json_integer_value(json_array_get(known, 1)) != e->size) {
            *error = "size differs from the object's known size";
            return NULL;
        }
        const char *name = json_string_value(json_array_get(known, 0));
        *mutate_where = where_named(name);
        return ovsdb_datum_named_uuid(name);
    }

    char *name = xasprintf("object%u", txn->n_names++);
    json_array_append_new(ops, ovsdb_op_insert(
                              "Object", json_pack("{ss sI}", "digest",
                                                  e->digest, "size",
                                                  (json_int_t) e->size),
                              name));
    json_object_set_new(txn->new_objects, e->digest,
                        json_pack("[sI]", name, (json_int_t) e->size));
    *mutate_where = where_named(name);
    json_t *uuid = ovsdb_datum_named_uuid(name);
    free(name);
    return uuid;
}

/* The columns of an Object_Ref row that follow the record. */
static json_t *
ref_columns(const struct objmap_entry *e, int64_t now_ms)
{
    return json_pack("{so so so sI}",
                     "paths", ovsdb_datum_set(json_deep_copy(e->paths)),
                     "flags", ovsdb_datum_set(json_deep_copy(e->flags)),
                     "params", ovsdb_datum_string_map(e->params),
                     "last_seen", (json_int_t) now_ms);
}

const char *
objmap_ops(const struct ovsdb_replica *replica, struct objmap_txn *txn,
           const char *vm, const char *key, const char *value_text,
           int64_t now_ms, json_t *ops)
{
    struct objmap_entry e;
    const char *error = NULL;
    json_t *value = NULL;

    if (value_text) {
        value = json_loads(value_text, JSON_DECODE_ANY, NULL);
        error = value ? objmap_parse(key, value, &e) : "value is not JSON";
    } else if (!objmap_is_object_key(key)
               || !is_digest(key + strlen(OBJMAP_PREFIX))) {
        return NULL;            /* Never mapped. */
    } else {
        memset(&e, 0, sizeof e);
        memcpy(e.digest, key + strlen(OBJMAP_PREFIX), OBJMAP_DIGEST_LEN);
    }

    json_t *mutate_where = NULL;
    json_t *object = NULL;
    if (!error && value) {
        object = object_for(replica, txn, &e, ops, &mutate_where, &error);
    }
    if (!object) {
        /* Withdrawn or refused: the VM no longer references it. */
        if (e.digest[0]) {
            json_array_append_new(ops, ovsdb_op_delete("Object_Ref",
                                                       where_ref(vm,
                                                                 e.digest)));
        }
        json_decref(value);
        return error;
    }

    if (find_row(replica, "Object_Ref", "digest", e.digest, vm)) {
        json_array_append_new(ops, ovsdb_op_update(
                                  "Object_Ref", where_ref(vm, e.digest),
                                  ref_columns(&e, now_ms)));
        json_decref(object);
        json_decref(mutate_where);
    } else {
        char *name = xasprintf("ref%u", txn->n_names++);
        json_t *row = ref_columns(&e, now_ms);
        json_object_set_new(row, "vm", json_string(vm));
        json_object_set_new(row, "digest", json_string(e.digest));
        json_object_set_new(row, "object", object);
        json_array_append_new(ops, ovsdb_op_insert("Object_Ref", row, name));
        json_t *refs = ovsdb_datum_set(json_pack(
                                           "[o]",
                                           ovsdb_datum_named_uuid(name)));
        json_t *held_by = ovsdb_datum_set(json_pack("[s]", vm));
        json_array_append_new(ops, ovsdb_op_mutate(
                                  "Object", mutate_where,
                                  json_pack("[oo]",
                                            ovsdb_mutation("refs", "insert",
                                                           refs),
                                            ovsdb_mutation("held_by",
                                                           "insert",
                                                           held_by))));
        free(name);
    }
    json_decref(value);
    return NULL;
}

void
objmap_delete_vm(const char *vm, json_t *ops)
{
    json_array_append_new(ops, ovsdb_op_delete(
                              "Object_Ref",
                              json_pack("[o]", ovsdb_condition(
                                            "vm", "==", json_string(vm)))));
}

void
objmap_add_columns(struct ovsdb_replica *replica)
{
    struct ovsdb_replica_table *t = ovsdb_replica_add_table(replica,
                                                            "Object");
    ovsdb_replica_add_column(t, "digest", NULL);
    ovsdb_replica_add_column(t, "size", NULL);
    ovsdb_replica_add_column(t, "flags", NULL);
    ovsdb_replica_add_column(t, "params", NULL);
    ovsdb_replica_add_column(t, "held_by", NULL);
    t = ovsdb_replica_add_table(replica, "Object_Ref");
    ovsdb_replica_add_column(t, "vm", NULL);
    ovsdb_replica_add_column(t, "digest", NULL);
    ovsdb_replica_add_column(t, "paths", NULL);
    ovsdb_replica_add_column(t, "flags", NULL);
}
