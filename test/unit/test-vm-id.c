/* CUnit suite for lib/vm-id: the syntax of each kind of platform id, the
 * KIND:ID form, the lookup operations and the resolution of an id from
 * VM_Id rows (current, retired, unknown, ambiguous). */

#include <config.h>
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "vm-id.h"

#define U1 "6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab"
#define U1_UPPER "6F1C2D3E-4A5B-4C6D-8E7F-0123456789AB"
#define U2 "0b9a8c7d-6e5f-4a3b-9c2d-1e0f2a3b4c5d"

/* Returns the normalized id of 'id' as 'kind', or NULL if it does not fit
 * (the caller frees it). */
static char *
norm(enum vm_id_kind kind, const char *id)
{
    char *n = NULL;
    char *msg = vm_id_normalize(kind, id, &n);

    if (msg) {
        CU_ASSERT_PTR_NULL(n);
        free(msg);
        return NULL;
    }
    return n;
}

static bool
fits(enum vm_id_kind kind, const char *id)
{
    char *n = norm(kind, id);
    free(n);
    return n != NULL;
}

static void
test_kind_names(void)
{
    enum vm_id_kind k;

    for (int i = 0; i <= VM_ID_ANY; i++) {
        CU_ASSERT_TRUE(vm_id_kind_from_name(vm_id_kind_name(i), &k));
        CU_ASSERT_EQUAL(k, i);
    }
    CU_ASSERT_STRING_EQUAL(vm_id_kind_name(VM_ID_LIBVIRT_UUID),
                           "libvirt-uuid");
    CU_ASSERT_STRING_EQUAL(vm_id_kind_name(VM_ID_PLATFORM_ID),
                           "platform-id");
    CU_ASSERT_FALSE(vm_id_kind_from_name("uuid", &k));
    CU_ASSERT_FALSE(vm_id_kind_from_name("", &k));
    CU_ASSERT_FALSE(vm_id_kind_from_name("Libvirt-uuid", &k));
}

static void
test_uuid_syntax(void)
{
    static const enum vm_id_kind kinds[] = { VM_ID_LIBVIRT_UUID,
                                             VM_ID_NOVA_UUID };

    for (size_t i = 0; i < 2; i++) {
        char *n = norm(kinds[i], U1_UPPER);
        CU_ASSERT_PTR_NOT_NULL_FATAL(n);
        CU_ASSERT_STRING_EQUAL(n, U1);  /* Lowercase. */
        free(n);
        CU_ASSERT_TRUE(fits(kinds[i], U1));
        CU_ASSERT_FALSE(fits(kinds[i], ""));
        CU_ASSERT_FALSE(fits(kinds[i], "42"));
        CU_ASSERT_FALSE(fits(kinds[i], U1 "0"));            /* Too long. */
        CU_ASSERT_FALSE(fits(kinds[i],                      /* No dashes. */
                             "6f1c2d3e4a5b4c6d8e7f0123456789ab"));
        CU_ASSERT_FALSE(fits(kinds[i],                      /* Dash moved. */
                             "6f1c2d3-e4a5b-4c6d-8e7f-0123456789ab"));
        CU_ASSERT_FALSE(fits(kinds[i],                      /* Not hex. */
                             "6f1c2d3g-4a5b-4c6d-8e7f-0123456789ab"));
        CU_ASSERT_FALSE(fits(kinds[i],                      /* Braces. */
                             "{6f1c2d3e-4a5b-4c6d-8e7f-0123456789a}"));
    }
}

static void
test_integer_syntax(void)
{
    char *n = norm(VM_ID_PLATFORM_ID, "0042");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n, "42");
    free(n);
    n = norm(VM_ID_PLATFORM_ID, "0");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n, "0");
    free(n);
    CU_ASSERT_TRUE(fits(VM_ID_PLATFORM_ID, "9223372036854775807"));
    CU_ASSERT_FALSE(fits(VM_ID_PLATFORM_ID, "9223372036854775808"));
    CU_ASSERT_FALSE(fits(VM_ID_PLATFORM_ID, "99999999999999999999999"));
    CU_ASSERT_FALSE(fits(VM_ID_PLATFORM_ID, ""));
    CU_ASSERT_FALSE(fits(VM_ID_PLATFORM_ID, "-1"));
    CU_ASSERT_FALSE(fits(VM_ID_PLATFORM_ID, "+1"));
    CU_ASSERT_FALSE(fits(VM_ID_PLATFORM_ID, " 1"));
    CU_ASSERT_FALSE(fits(VM_ID_PLATFORM_ID, "1.0"));
    CU_ASSERT_FALSE(fits(VM_ID_PLATFORM_ID, "0x10"));
    CU_ASSERT_FALSE(fits(VM_ID_PLATFORM_ID, U1));
}

static void
test_iface_id_syntax(void)
{
    char long_id[VM_ID_MAX_LEN + 2];

    CU_ASSERT_TRUE(fits(VM_ID_IFACE_ID, U1));
    CU_ASSERT_TRUE(fits(VM_ID_IFACE_ID, "default_pod-1:eth0"));
    CU_ASSERT_TRUE(fits(VM_ID_IFACE_ID, "42"));
    char *n = norm(VM_ID_IFACE_ID, U1_UPPER);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n, U1_UPPER);        /* Kept as is. */
    free(n);
    CU_ASSERT_FALSE(fits(VM_ID_IFACE_ID, ""));
    CU_ASSERT_FALSE(fits(VM_ID_IFACE_ID, "a b"));
    CU_ASSERT_FALSE(fits(VM_ID_IFACE_ID, "a\tb"));
    CU_ASSERT_FALSE(fits(VM_ID_IFACE_ID, "caf\xc3\xa9"));
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[VM_ID_MAX_LEN] = '\0';
    CU_ASSERT_TRUE(fits(VM_ID_IFACE_ID, long_id));
    long_id[VM_ID_MAX_LEN] = 'x';
    long_id[VM_ID_MAX_LEN + 1] = '\0';
    CU_ASSERT_FALSE(fits(VM_ID_IFACE_ID, long_id));
}

static void
test_error_messages(void)
{
    char *msg = vm_id_normalize(VM_ID_LIBVIRT_UUID, "xyz", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "'xyz' is not a libvirt-uuid"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "UUID"));
    free(msg);
    msg = vm_id_normalize(VM_ID_PLATFORM_ID, "4x", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "integer"));
    free(msg);
    msg = vm_id_normalize(VM_ID_ANY, "4", NULL);
    CU_ASSERT_PTR_NOT_NULL(msg);
    free(msg);
}

static void
test_spec_parse(void)
{
    struct vm_id_spec spec;
    char *msg;

    CU_ASSERT_TRUE(vm_id_is_spec("libvirt-uuid:" U1));
    CU_ASSERT_FALSE(vm_id_is_spec("vm1"));

    msg = vm_id_spec_parse("libvirt-uuid:" U1_UPPER, &spec);
    CU_ASSERT_PTR_NULL_FATAL(msg);
    CU_ASSERT_EQUAL(spec.kind, VM_ID_LIBVIRT_UUID);
    CU_ASSERT_STRING_EQUAL(spec.text, "libvirt-uuid:" U1_UPPER);
    CU_ASSERT_STRING_EQUAL(spec.ids[VM_ID_LIBVIRT_UUID], U1);
    CU_ASSERT_PTR_NULL(spec.ids[VM_ID_NOVA_UUID]);
    CU_ASSERT_PTR_NULL(spec.ids[VM_ID_IFACE_ID]);
    vm_id_spec_destroy(&spec);

    /* The id may hold colons: only the first one ends the kind. */
    msg = vm_id_spec_parse("iface-id:ns:pod", &spec);
    CU_ASSERT_PTR_NULL_FATAL(msg);
    CU_ASSERT_STRING_EQUAL(spec.ids[VM_ID_IFACE_ID], "ns:pod");
    vm_id_spec_destroy(&spec);

    /* any: every kind whose syntax fits. */
    msg = vm_id_spec_parse("any:" U1_UPPER, &spec);
    CU_ASSERT_PTR_NULL_FATAL(msg);
    CU_ASSERT_EQUAL(spec.kind, VM_ID_ANY);
    CU_ASSERT_STRING_EQUAL(spec.ids[VM_ID_LIBVIRT_UUID], U1);
    CU_ASSERT_STRING_EQUAL(spec.ids[VM_ID_NOVA_UUID], U1);
    CU_ASSERT_STRING_EQUAL(spec.ids[VM_ID_IFACE_ID], U1_UPPER);
    CU_ASSERT_PTR_NULL(spec.ids[VM_ID_PLATFORM_ID]);
    json_t *ops = vm_id_spec_lookup_ops(&spec);
    CU_ASSERT_EQUAL(json_array_size(ops), 3);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                               json_array_get(ops, 0), "table")), "VM_Id");
    json_decref(ops);
    vm_id_spec_destroy(&spec);

    msg = vm_id_spec_parse("any:042", &spec);
    CU_ASSERT_PTR_NULL_FATAL(msg);
    CU_ASSERT_STRING_EQUAL(spec.ids[VM_ID_PLATFORM_ID], "42");
    CU_ASSERT_STRING_EQUAL(spec.ids[VM_ID_IFACE_ID], "042");
    vm_id_spec_destroy(&spec);

    static const char *const bad[] = {
        "vm1", "uuid:" U1, ":" U1, "libvirt-uuid:", "libvirt-uuid:42",
        "platform-id:" U1, "any:", "any:a b", "iface-id:a b",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        msg = vm_id_spec_parse(bad[i], &spec);
        CU_ASSERT_PTR_NOT_NULL(msg);
        if (!msg) {
            fprintf(stderr, "accepted: %s\n", bad[i]);
            vm_id_spec_destroy(&spec);
        }
        free(msg);
    }
}

/* A VM_Id row as a select returns it. */
static json_t *
row(const char *vm, const char *kind, const char *id, json_int_t since,
    json_int_t retired)
{
    return json_pack("{ss ss ss sI sI}", "vm", vm, "kind", kind, "id", id,
                     "since", since, "retired", retired);
}

/* The table of the resolution tests: vm1 had platform-id 42, now has
 * nova-uuid U1 (and libvirt-uuid U1, the same UUID); its libvirt-uuid was
 * U2 before; vm2 has iface-id "42" and platform-id 7. */
static json_t *
table(void)
{
    json_t *rows = json_array();

    json_array_append_new(rows, row("vm1", "platform-id", "42", 1000, 5000));
    json_array_append_new(rows, row("vm1", "nova-uuid", U1, 5000, 0));
    json_array_append_new(rows, row("vm1", "libvirt-uuid", U2, 1000, 6000));
    json_array_append_new(rows, row("vm1", "libvirt-uuid", U1, 6000, 0));
    json_array_append_new(rows, row("vm2", "iface-id", "42", 2000, 0));
    json_array_append_new(rows, row("vm2", "platform-id", "7", 2000, 0));
    /* Malformed rows are ignored. */
    json_array_append_new(rows, row("bad vm", "platform-id", "8", 0, 0));
    json_array_append_new(rows, row("vm3", "platform-id", "08", 0, 0));
    json_array_append_new(rows, row("vm3", "vmware-uuid", U1, 0, 0));
    json_array_append_new(rows, json_pack("{ss ss}", "vm", "vm3",
                                          "kind", "iface-id"));
    json_array_append_new(rows, json_string("not a row"));
    return rows;
}

/* Resolves 'text' against table() into 'm'. */
static void
resolve(const char *text, struct vm_id_match *m)
{
    struct vm_id_spec spec;
    json_t *rows = table();
    char *msg = vm_id_spec_parse(text, &spec);

    CU_ASSERT_PTR_NULL_FATAL(msg);
    vm_id_resolve(&spec, rows, m);
    vm_id_spec_destroy(&spec);
    json_decref(rows);
}

static void
test_resolve_current(void)
{
    struct vm_id_match m;

    resolve("nova-uuid:" U1_UPPER, &m);
    CU_ASSERT_EQUAL(m.status, VM_ID_CURRENT);
    CU_ASSERT_STRING_EQUAL(m.vm, "vm1");
    CU_ASSERT_EQUAL(m.kind, VM_ID_NOVA_UUID);
    CU_ASSERT_STRING_EQUAL(m.id, U1);
    CU_ASSERT_EQUAL(m.since, 5000);
    CU_ASSERT_EQUAL(m.retired, 0);
    CU_ASSERT_PTR_NULL(m.candidates);
    vm_id_match_destroy(&m);

    resolve("iface-id:42", &m);
    CU_ASSERT_EQUAL(m.status, VM_ID_CURRENT);
    CU_ASSERT_STRING_EQUAL(m.vm, "vm2");
    vm_id_match_destroy(&m);

    resolve("platform-id:0007", &m);
    CU_ASSERT_EQUAL(m.status, VM_ID_CURRENT);
    CU_ASSERT_STRING_EQUAL(m.vm, "vm2");
    vm_id_match_destroy(&m);

    /* any: two kinds, one VM: not ambiguous. */
    resolve("any:" U1, &m);
    CU_ASSERT_EQUAL(m.status, VM_ID_CURRENT);
    CU_ASSERT_STRING_EQUAL(m.vm, "vm1");
    vm_id_match_destroy(&m);
}

static void
test_resolve_retired(void)
{
    struct vm_id_match m;

    resolve("platform-id:42", &m);
    CU_ASSERT_EQUAL(m.status, VM_ID_RETIRED);
    CU_ASSERT_STRING_EQUAL(m.vm, "vm1");
    CU_ASSERT_EQUAL(m.kind, VM_ID_PLATFORM_ID);
    CU_ASSERT_EQUAL(m.retired, 5000);
    vm_id_match_destroy(&m);

    resolve("libvirt-uuid:" U2, &m);
    CU_ASSERT_EQUAL(m.status, VM_ID_RETIRED);
    CU_ASSERT_STRING_EQUAL(m.vm, "vm1");
    CU_ASSERT_EQUAL(m.retired, 6000);
    vm_id_match_destroy(&m);

    /* A current and a retired row of one VM: current wins, in any order;
     * of two retired rows the later. */
    struct vm_id_spec spec;
    char *msg = vm_id_spec_parse("any:" U2, &spec);
    CU_ASSERT_PTR_NULL_FATAL(msg);
    json_t *rows = json_array();
    json_array_append_new(rows, row("vm1", "libvirt-uuid", U2, 1, 7));
    json_array_append_new(rows, row("vm1", "nova-uuid", U2, 1, 9));
    json_array_append_new(rows, row("vm1", "iface-id", U2, 1, 8));
    vm_id_resolve(&spec, rows, &m);
    CU_ASSERT_EQUAL(m.status, VM_ID_RETIRED);
    CU_ASSERT_EQUAL(m.kind, VM_ID_NOVA_UUID);
    CU_ASSERT_EQUAL(m.retired, 9);
    vm_id_match_destroy(&m);
    json_array_append_new(rows, row("vm1", "iface-id", U2, 1, 0));
    vm_id_resolve(&spec, rows, &m);
    CU_ASSERT_EQUAL(m.status, VM_ID_CURRENT);
    CU_ASSERT_EQUAL(m.kind, VM_ID_IFACE_ID);
    vm_id_match_destroy(&m);
    json_decref(rows);
    vm_id_spec_destroy(&spec);
}

static void
test_resolve_unknown(void)
{
    struct vm_id_match m;

    resolve("libvirt-uuid:00000000-0000-0000-0000-000000000000", &m);
    CU_ASSERT_EQUAL(m.status, VM_ID_UNKNOWN);
    CU_ASSERT_PTR_NULL(m.vm);
    vm_id_match_destroy(&m);

    /* The kind matters: U1 is a nova-uuid and libvirt-uuid, no iface-id;
     * 42 an iface-id and a platform-id, no nova-uuid. */
    resolve("iface-id:" U1, &m);
    CU_ASSERT_EQUAL(m.status, VM_ID_UNKNOWN);
    vm_id_match_destroy(&m);

    /* Malformed rows never match. */
    resolve("platform-id:8", &m);
    CU_ASSERT_EQUAL(m.status, VM_ID_UNKNOWN);
    vm_id_match_destroy(&m);
    resolve("any:08", &m);
    CU_ASSERT_EQUAL(m.status, VM_ID_UNKNOWN);
    vm_id_match_destroy(&m);

    /* No rows at all. */
    struct vm_id_spec spec;
    char *msg = vm_id_spec_parse("platform-id:1", &spec);
    CU_ASSERT_PTR_NULL_FATAL(msg);
    json_t *rows = json_array();
    vm_id_resolve(&spec, rows, &m);
    CU_ASSERT_EQUAL(m.status, VM_ID_UNKNOWN);
    json_decref(rows);
    vm_id_spec_destroy(&spec);
}

static void
test_resolve_ambiguous(void)
{
    struct vm_id_match m;

    /* 42: vm1's retired platform-id and vm2's iface-id. */
    resolve("any:42", &m);
    CU_ASSERT_EQUAL(m.status, VM_ID_AMBIGUOUS);
    CU_ASSERT_PTR_NULL(m.vm);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.candidates);
    CU_ASSERT_PTR_NOT_NULL(strstr(m.candidates, "vm1 (platform-id, "
                                  "retired)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m.candidates, "vm2 (iface-id)"));
    vm_id_match_destroy(&m);

    /* With the kind it is not. */
    resolve("platform-id:42", &m);
    CU_ASSERT_EQUAL(m.status, VM_ID_RETIRED);
    vm_id_match_destroy(&m);
}

static void
test_find_current(void)
{
    json_t *rows = table();

    CU_ASSERT_STRING_EQUAL(vm_id_find_current(rows, "vm1",
                                              VM_ID_LIBVIRT_UUID), U1);
    CU_ASSERT_PTR_NULL(vm_id_find_current(rows, "vm1", VM_ID_PLATFORM_ID));
    CU_ASSERT_STRING_EQUAL(vm_id_find_current(rows, "vm2",
                                              VM_ID_PLATFORM_ID), "7");
    CU_ASSERT_PTR_NULL(vm_id_find_current(rows, "vm3", VM_ID_PLATFORM_ID));
    json_decref(rows);
}

static const struct unit_test tests[] = {
    { "kind names", test_kind_names },
    { "UUID syntax", test_uuid_syntax },
    { "integer syntax", test_integer_syntax },
    { "iface-id syntax", test_iface_id_syntax },
    { "error messages", test_error_messages },
    { "KIND:ID", test_spec_parse },
    { "resolve current", test_resolve_current },
    { "resolve retired", test_resolve_retired },
    { "resolve unknown", test_resolve_unknown },
    { "resolve ambiguous", test_resolve_ambiguous },
    { "find current", test_find_current },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("vm-id", tests);
}
