/* vm-id: a VM's platform ids (the Chan DB's VM_Id table).  See vm-id.h. */

#include <config.h>
#include "vm-id.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "chan-endpoint.h"
#include "ovsdb-msg.h"
#include "util.h"

static const char *const kind_names[VM_ID_N_KINDS + 1] = {
    [VM_ID_LIBVIRT_UUID] = "libvirt-uuid",
    [VM_ID_IFACE_ID] = "iface-id",
    [VM_ID_NOVA_UUID] = "nova-uuid",
    [VM_ID_PLATFORM_ID] = "platform-id",
    [VM_ID_ANY] = "any",
};

const char *
vm_id_kind_name(enum vm_id_kind kind)
{
    return kind <= VM_ID_ANY ? kind_names[kind] : "?";
}

bool
vm_id_kind_from_name(const char *name, enum vm_id_kind *kind)
{
    for (int k = 0; k <= VM_ID_ANY; k++) {
        if (!strcmp(name, kind_names[k])) {
            *kind = k;
            return true;
        }
    }
    return false;
}

const char *
vm_id_kind_list(void)
{
    return "libvirt-uuid, iface-id, nova-uuid, platform-id";
}

/* Returns a malloc'd lowercase copy of 'id' if it is a UUID, else NULL. */
static char *
normalize_uuid(const char *id)
{
    static const int dashes[] = { 8, 13, 18, 23 };

    if (strlen(id) != 36) {
        return NULL;
    }
    char *norm = xstrdup(id);
    for (int i = 0, d = 0; i < 36; i++) {
        if (d < 4 && i == dashes[d]) {
            if (id[i] != '-') {
                free(norm);
                return NULL;
            }
            d++;
        } else if (hexit_value(id[i]) < 0) {
            free(norm);
            return NULL;
        } else if (id[i] >= 'A' && id[i] <= 'F') {
            norm[i] = id[i] - 'A' + 'a';
        }
    }
    return norm;
}

/* Returns a malloc'd canonical decimal form of 'id' if it is an integer 0
 * to INT64_MAX written with digits only, else NULL. */
static char *
normalize_integer(const char *id)
{
    if (!*id || strspn(id, "0123456789") != strlen(id)) {
        return NULL;
    }
    errno = 0;
    unsigned long long int v = strtoull(id, NULL, 10);
    if (errno || v > INT64_MAX) {
        return NULL;
    }
    return xasprintf("%llu", v);
}

/* Returns a malloc'd copy of 'id' if it is 1 to VM_ID_MAX_LEN printable
 * ASCII characters other than space, else NULL. */
static char *
normalize_iface_id(const char *id)
{
    size_t n = strlen(id);

    if (!n || n > VM_ID_MAX_LEN) {
        return NULL;
    }
    for (const char *p = id; *p; p++) {
        if (*p <= ' ' || *p > '~') {
            return NULL;
        }
    }
    return xstrdup(id);
}

char *
vm_id_normalize(enum vm_id_kind kind, const char *id, char **normp)
{
    char *norm = NULL;
    const char *want = NULL;

    switch (kind) {
    case VM_ID_LIBVIRT_UUID:
    case VM_ID_NOVA_UUID:
        norm = normalize_uuid(id);
        want = "a UUID (8-4-4-4-12 hex digits)";
        break;
    case VM_ID_PLATFORM_ID:
        norm = normalize_integer(id);
        want = "an integer from 0 to 9223372036854775807, digits only";
        break;
    case VM_ID_IFACE_ID:
        norm = normalize_iface_id(id);
        want = "1 to 255 printable ASCII characters without spaces";
        break;
    case VM_ID_ANY:
    default:
        return xasprintf("no id has kind %s", vm_id_kind_name(kind));
    }
    if (!norm) {
        return xasprintf("'%.80s%s' is not a %s: a %s is %s", id,
                         strlen(id) > 80 ? "..." : "",
                         vm_id_kind_name(kind), vm_id_kind_name(kind), want);
    }
    if (normp) {
        *normp = norm;
    } else {
        free(norm);
    }
    return NULL;
}

bool
vm_id_is_spec(const char *s)
{
    return strchr(s, ':') != NULL;
}

char *
vm_id_spec_parse(const char *text, struct vm_id_spec *spec)
{
    const char *colon = strchr(text, ':');

    memset(spec, 0, sizeof *spec);
    if (!colon) {
        return xasprintf("'%.80s' is not KIND:ID (KIND: %s or any)", text,
                         vm_id_kind_list());
    }
    char *name = xasprintf("%.*s", (int) (colon - text), text);
    bool known = vm_id_kind_from_name(name, &spec->kind);
    if (!known) {
        char *msg = xasprintf("'%.40s' is not a kind of id (%s or any)",
                              name, vm_id_kind_list());
        free(name);
        return msg;
    }
    free(name);

    const char *id = colon + 1;
    if (spec->kind != VM_ID_ANY) {
        char *msg = vm_id_normalize(spec->kind, id, &spec->ids[spec->kind]);
        if (msg) {
            return msg;
        }
    } else {
        bool any = false;
        for (int k = 0; k < VM_ID_N_KINDS; k++) {
            char *msg = vm_id_normalize(k, id, &spec->ids[k]);
            free(msg);
            any = any || !msg;
        }
        if (!any) {
            return xasprintf("'%.80s' is no kind of id (%s)", id,
                             vm_id_kind_list());
        }
    }
    spec->text = xstrdup(text);
    return NULL;
}

void
vm_id_spec_destroy(struct vm_id_spec *spec)
{
    if (spec) {
        free(spec->text);
        for (int k = 0; k < VM_ID_N_KINDS; k++) {
            free(spec->ids[k]);
        }
        memset(spec, 0, sizeof *spec);
    }
}

json_t *
vm_id_spec_lookup_ops(const struct vm_id_spec *spec)
{
    json_t *ops = json_array();

    for (int k = 0; k < VM_ID_N_KINDS; k++) {
        if (spec->ids[k]) {
            json_t *where = json_pack(
                "[oo]",
                ovsdb_condition("kind", "==", json_string(kind_names[k])),
                ovsdb_condition("id", "==", json_string(spec->ids[k])));
            json_array_append_new(ops, ovsdb_op_select(VM_ID_TABLE, where,
                                                       NULL));
        }
    }
    return ops;
}

const char *
vm_id_status_name(enum vm_id_status status)
{
    switch (status) {
    case VM_ID_UNKNOWN:
        return "unknown";
    case VM_ID_CURRENT:
        return "current";
    case VM_ID_RETIRED:
        return "retired";
    case VM_ID_AMBIGUOUS:
        return "ambiguous";
    }
    return "?";
}

/* Returns integer column 'column' of 'row', 0 if absent or malformed;
 * stores in '*ok' whether it was an integer, if 'ok' is nonnull. */
static int64_t
row_integer(const json_t *row, const char *column, bool *ok)
{
    const json_t *datum = json_object_get(row, column);
    int64_t value;
    bool present;

    if (datum && !ovsdb_datum_get_integer(datum, &value, &present)
        && present) {
        if (ok) {
            *ok = true;
        }
        return value;
    }
    if (ok) {
        *ok = false;
    }
    return 0;
}

static const char *
row_str(const json_t *row, const char *column)
{
    const json_t *datum = json_object_get(row, column);
    const char *s;

    return datum && !ovsdb_datum_get_string(datum, &s) ? s : NULL;
}

bool
vm_id_row_parse(const json_t *row, const char **vmp, enum vm_id_kind *kindp,
                const char **idp, int64_t *sincep, int64_t *retiredp)
{
    const char *vm = row_str(row, "vm");
    const char *kind_name = row_str(row, "kind");
    const char *id = row_str(row, "id");
    enum vm_id_kind kind;
    bool ok;
    int64_t retired = row_integer(row, "retired", &ok);
    char *norm;

    if (!vm || !kind_name || !id || !ok || retired < 0
        || !chan_vm_name_is_valid(vm)
        || !vm_id_kind_from_name(kind_name, &kind) || kind == VM_ID_ANY) {
        return false;
    }
    char *msg = vm_id_normalize(kind, id, &norm);
    if (msg) {
        free(msg);
        return false;
    }
    bool normalized = !strcmp(norm, id);
    free(norm);
    if (!normalized) {
        return false;
    }
    *vmp = vm;
    *kindp = kind;
    *idp = id;
    *sincep = row_integer(row, "since", NULL);
    *retiredp = retired;
    return true;
}

/* One row of an id, read by vm_id_row_parse(). */
struct id_row {
    const char *vm;
    enum vm_id_kind kind;
    const char *id;
    int64_t since, retired;
};

/* Stores in 'out' the rows of 'rows' that are of 'spec'; returns how many
 * (at most 'max'). */
static size_t
rows_of_spec(const struct vm_id_spec *spec, const json_t *rows,
             struct id_row *out, size_t max)
{
    size_t n = 0;
    size_t i;
    const json_t *row;

    json_array_foreach (rows, i, row) {
        struct id_row r;
        if (n < max
            && vm_id_row_parse(row, &r.vm, &r.kind, &r.id, &r.since,
                               &r.retired)
            && spec->ids[r.kind] && !strcmp(spec->ids[r.kind], r.id)
            && (spec->kind == VM_ID_ANY || spec->kind == r.kind)) {
            out[n++] = r;
        }
    }
    return n;
}

/* Returns the "vm1 (platform-id), vm2 (iface-id)" list of the 'n' rows in
 * 'r', malloc'd. */
static char *
candidate_list(const struct id_row *r, size_t n)
{
    char *list = xstrdup("");

    for (size_t i = 0; i < n; i++) {
        char *s = xasprintf("%s%s%s (%s%s)", list, i ? ", " : "", r[i].vm,
                            vm_id_kind_name(r[i].kind),
                            r[i].retired ? ", retired" : "");
        free(list);
        list = s;
    }
    return list;
}

void
vm_id_resolve(const struct vm_id_spec *spec, const json_t *rows,
              struct vm_id_match *match)
{
    size_t max = json_array_size(rows);
    struct id_row *r = xcalloc(max + 1, sizeof *r);
    size_t n = rows_of_spec(spec, rows, r, max);

    memset(match, 0, sizeof *match);
    match->status = VM_ID_UNKNOWN;
    if (!n) {
        free(r);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        if (strcmp(r[i].vm, r[0].vm)) {
            match->status = VM_ID_AMBIGUOUS;
            match->candidates = candidate_list(r, n);
            free(r);
            return;
        }
    }

    /* One VM: its current row if it has one, else the row retired last. */
    const struct id_row *best = &r[0];
    for (size_t i = 1; i < n; i++) {
        if (best->retired && (!r[i].retired || r[i].retired > best->retired)) {
            best = &r[i];
        }
    }
    match->status = best->retired ? VM_ID_RETIRED : VM_ID_CURRENT;
    match->vm = xstrdup(best->vm);
    match->kind = best->kind;
    match->id = xstrdup(best->id);
    match->since = best->since;
    match->retired = best->retired;
    free(r);
}

void
vm_id_match_destroy(struct vm_id_match *match)
{
    if (match) {
        free(match->vm);
        free(match->id);
        free(match->candidates);
        memset(match, 0, sizeof *match);
    }
}

const char *
vm_id_find_current(const json_t *rows, const char *vm, enum vm_id_kind kind)
{
    size_t i;
    const json_t *row;

    json_array_foreach (rows, i, row) {
        struct id_row r;
        if (vm_id_row_parse(row, &r.vm, &r.kind, &r.id, &r.since,
                            &r.retired)
            && !r.retired && r.kind == kind && !strcmp(r.vm, vm)) {
            return r.id;
        }
    }
    return NULL;
}
