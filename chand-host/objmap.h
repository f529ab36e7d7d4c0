/*
 * objmap: the host's object mapping, derived from what guests publish.
 *
 * A guest publishes one upstream record per object it holds (a file known
 * by its sha256 digest, doc/objects.md):
 *
 *     key   "obj/<64 lowercase hex digits>"
 *     value {"size": N, "paths": [...], "flags": [...], "params": {...}}
 *
 * chand-host writes each such record to Guest_Record like any other, and in
 * the same OVSDB transaction keeps the Chan DB's mapping in step:
 *
 *   - Object: one row per digest (digest, size, flags, params, refs).  Its
 *     'refs' column is a set of weak references to the Object_Ref rows of
 *     the digest, so the number of VMs that reference an object is the size
 *     of that set.  ovsdb-server removes a weak reference itself when its
 *     Object_Ref row goes, and chand-host adds one in the transaction that
 *     inserts the row: the count is never stored apart from the references.
 *   - Object_Ref: one row per VM and digest (vm, digest, object, paths,
 *     flags, params, last_seen).
 *
 * Because the mapping rides on the Guest_Record transaction, it follows the
 * published records exactly once under every fault that the records
 * survive (a failed transaction is sent again by the guest, and changes
 * neither).
 *
 * An object record that is not well formed, or whose size disagrees with
 * the size the Object row already has (a VM reporting a digest it does not
 * hold), is still stored as a Guest_Record, but maps nothing: it is
 * counted as refused, and a reference the VM had for that digest is
 * removed.
 *
 * objmap_parse() is pure.  objmap_ops() reads the Chan DB replica and
 * appends operations to a transaction; it does no I/O itself.
 */
#ifndef OBJMAP_H
#define OBJMAP_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OBJMAP_PREFIX "obj/"
#define OBJMAP_DIGEST_LEN 64            /* sha256, lowercase hex. */
#define OBJMAP_MAX_PATHS 64
#define OBJMAP_MAX_PATH 4096
#define OBJMAP_MAX_FLAGS 16
#define OBJMAP_MAX_PARAMS 16

struct ovsdb_replica;

/* True if 'key' is in the object records' key space ("obj/..."). */
bool objmap_is_object_key(const char *key);

/* An object record, parsed.  The JSON members are borrowed from the value
 * given to objmap_parse() and live as long as it. */
struct objmap_entry {
    char digest[OBJMAP_DIGEST_LEN + 1];
    int64_t size;
    json_t *paths;              /* Array of strings. */
    json_t *flags;              /* Array of strings. */
    json_t *params;             /* Object of strings. */
};

/* Parses the object record 'key' with value 'value' (a parsed JSON value,
 * borrowed) into '*e'.  Returns NULL, or an English error message (a
 * constant string) if it is not well formed. */
const char *objmap_parse(const char *key, const json_t *value,
                         struct objmap_entry *e);

/* Per-transaction state: the Object rows a transaction inserts, so that
 * two records of one transaction with the same new digest share one. */
struct objmap_txn {
    json_t *new_objects;        /* digest -> named uuid. */
    unsigned int n_names;
};

void objmap_txn_init(struct objmap_txn *);
void objmap_txn_destroy(struct objmap_txn *);

/* Appends to 'ops' the operations that make VM 'vm''s mapping for object
 * record 'key' follow its new value 'value_text' (NULL: the record is
 * withdrawn), as seen from 'replica' (the Chan DB, with the Object and
 * Object_Ref tables; see objmap_add_columns()).  'now_ms' is the wall
 * clock for last_seen.  Returns NULL, or an English message (constant) if
 * the record maps nothing because it is refused. */
const char *objmap_ops(const struct ovsdb_replica *replica,
                       struct objmap_txn *txn, const char *vm,
                       const char *key, const char *value_text,
                       int64_t now_ms, json_t *ops);

/* Appends to 'ops' the deletion of every Object_Ref row of VM 'vm'. */
void objmap_delete_vm(const char *vm, json_t *ops);

/* Adds the Object and Object_Ref tables and the columns objmap_ops() and
 * objaction (flags, params, paths) read to 'replica' (before it
 * connects). */
void objmap_add_columns(struct ovsdb_replica *replica);

#endif /* objmap.h */
