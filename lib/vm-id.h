/*
 * vm-id: a VM's platform ids, the Chan DB's VM_Id table (doc/chan-db.md,
 * "VM_Id").
 *
 * Platforms know a VM by ids of their own: libvirt by its domain UUID, OVN
 * (and Neutron) by the logical port's iface-id, Nova by the instance UUID,
 * some platforms by an integer.  The VM_Id table maps each of them to the
 * chand VM name, one-to-one: an id (of a kind) names one VM, and a VM has
 * at most one current id of each kind.  An id that is replaced stays in the
 * table, retired, so that a lookup by it still finds the VM (and says that
 * the id is retired).
 *
 * This module holds what every reader of the table needs, without I/O:
 *
 *   - the kinds and the syntax of their ids (vm_id_normalize());
 *   - the text form "KIND:ID" by which callers name a VM by an id
 *     (vm_id_spec_parse(); KIND "any" looks the id up under every kind
 *     whose syntax it fits);
 *   - the OVSDB selects that find the rows of such an id
 *     (vm_id_spec_lookup_ops());
 *   - the resolution of an id from rows of the table (vm_id_resolve()):
 *     current, retired, unknown or ambiguous.
 *
 * Rows are JSON objects with the columns as OVSDB datums, as in a "select"
 * result or an ovsdb_replica row turned into an object: "vm" and "kind" and
 * "id" (strings), "retired" (integer; 0 for a current id, otherwise when it
 * was retired, in milliseconds since 1970) and optionally "since".
 */
#ifndef VM_ID_H
#define VM_ID_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define VM_ID_TABLE "VM_Id"

/* Longest id of any kind, in bytes (an iface-id; UUIDs are 36). */
#define VM_ID_MAX_LEN 255

enum vm_id_kind {
    VM_ID_LIBVIRT_UUID,         /* libvirt domain UUID. */
    VM_ID_IFACE_ID,             /* OVN/Neutron logical port (iface-id). */
    VM_ID_NOVA_UUID,            /* Nova instance UUID. */
    VM_ID_PLATFORM_ID,          /* A platform's integer id. */
    VM_ID_N_KINDS,
    VM_ID_ANY = VM_ID_N_KINDS   /* In a lookup: under every kind. */
};

/* Returns the name of 'kind' ("libvirt-uuid", ..., "any"). */
const char *vm_id_kind_name(enum vm_id_kind kind);

/* Stores the kind named 'name' (VM_ID_ANY for "any") in '*kind' and
 * returns true, or returns false. */
bool vm_id_kind_from_name(const char *name, enum vm_id_kind *kind);

/* The kinds as a list for messages: "libvirt-uuid, iface-id, nova-uuid,
 * platform-id". */
const char *vm_id_kind_list(void);

/* Checks 'id' against the syntax of 'kind' (not VM_ID_ANY):
 *
 *   - libvirt-uuid, nova-uuid: a UUID, 8-4-4-4-12 hex digits in either
 *     case; normalized to lowercase;
 *   - platform-id: a decimal integer 0 to 2^63-1, digits only; normalized
 *     without leading zeros;
 *   - iface-id: 1 to VM_ID_MAX_LEN printable ASCII characters, no spaces;
 *     kept as is.
 *
 * Returns NULL and stores the normalized id (malloc'd, the caller frees it)
 * in '*normp' if 'normp' is nonnull; or returns a malloc'd message that
 * says what is wrong (the caller frees it). */
char *vm_id_normalize(enum vm_id_kind kind, const char *id, char **normp);

/* True if 's' is written as an id, "KIND:ID", rather than as a VM name: VM
 * names have no ':'. */
bool vm_id_is_spec(const char *s);

/* An id as a caller gives it: "KIND:ID". */
struct vm_id_spec {
    char *text;                 /* As given. */
    enum vm_id_kind kind;       /* VM_ID_ANY: any kind. */
    char *ids[VM_ID_N_KINDS];   /* Per kind, the normalized id to look up
                                 * under it, or NULL (not that kind, or the
                                 * id does not fit its syntax). */
};

/* Parses 'text' ("KIND:ID") into 'spec'.  Returns NULL (then the caller
 * calls vm_id_spec_destroy()), or a malloc'd message that says what is
 * wrong (then 'spec' holds nothing to free). */
char *vm_id_spec_parse(const char *text, struct vm_id_spec *spec);

void vm_id_spec_destroy(struct vm_id_spec *spec);

/* Returns a new JSON array of OVSDB "select" operations on VM_Id, one per
 * kind 'spec' may be, whose rows together are every row of that id (all
 * columns).  Feed their rows, concatenated, to vm_id_resolve(). */
json_t *vm_id_spec_lookup_ops(const struct vm_id_spec *spec);

enum vm_id_status {
    VM_ID_UNKNOWN,              /* No VM has (or had) the id. */
    VM_ID_CURRENT,              /* A VM's current id. */
    VM_ID_RETIRED,              /* A VM's retired id (and no VM's current
                                 * one). */
    VM_ID_AMBIGUOUS             /* An "any:" id that several VMs have or
                                 * had, under different kinds. */
};

/* Returns "unknown", "current", "retired" or "ambiguous". */
const char *vm_id_status_name(enum vm_id_status status);

/* What an id resolves to. */
struct vm_id_match {
    enum vm_id_status status;
    char *vm;                   /* CURRENT, RETIRED: the VM, else NULL. */
    enum vm_id_kind kind;       /* CURRENT, RETIRED: the row's kind. */
    char *id;                   /* CURRENT, RETIRED: the row's id. */
    int64_t since;              /* When the id was set (ms since 1970; 0 if
                                 * not known). */
    int64_t retired;            /* RETIRED: when it was retired (ms since
                                 * 1970), else 0. */
    char *candidates;           /* AMBIGUOUS: "vm1 (platform-id), vm2
                                 * (iface-id)", else NULL. */
};

/* Resolves 'spec' against 'rows' (a JSON array of VM_Id rows; rows that are
 * not of 'spec', or malformed, are ignored, so the whole table will do).
 * The rows of the id must name one VM: then the id is CURRENT if one of
 * them is current, otherwise RETIRED (the row retired last).  Stores the
 * result in 'match' (the caller calls vm_id_match_destroy()). */
void vm_id_resolve(const struct vm_id_spec *spec, const json_t *rows,
                   struct vm_id_match *match);

void vm_id_match_destroy(struct vm_id_match *match);

/* Returns the current id (borrowed from 'rows') of kind 'kind' of VM 'vm'
 * among 'rows', or NULL. */
const char *vm_id_find_current(const json_t *rows, const char *vm,
                               enum vm_id_kind kind);

/* Reads VM_Id row 'row': stores its columns (borrowed) and returns true,
 * or returns false if a column is missing or malformed (a VM name that is
 * not one, an unknown kind, an id that does not fit its kind's syntax or
 * is not normalized). 'since' may be absent (0). */
bool vm_id_row_parse(const json_t *row, const char **vm,
                     enum vm_id_kind *kind, const char **id,
                     int64_t *since, int64_t *retired);

#endif /* vm-id.h */
