/*
 * relay: which records chand-host relays between VMs, by policy
 * (doc/chan-db.md, "Relay").  Pure: no I/O.
 *
 * A VM publishes records (Guest_Record rows); a Relay rule names a source
 * (one VM, or any), a key prefix, and targets (a list of VMs, all VMs, or
 * the VMs that published the same key).  Each published record that a rule
 * matches becomes, for each target other than its source, a desired record
 * of the target (a Record row) with key "from/<source>/<key>", the same
 * value and the same version.  A published key "to/<vm>/..." is a message
 * for <vm>: it is relayed to <vm> only if a matching rule has <vm> among
 * its targets, and otherwise refused.  Relayed records live under "from/",
 * which a VM may not publish itself, so a relayed record is never relayed
 * again: rules cannot loop.  With no rule, nothing is relayed.
 *
 * relay_compute() turns the published records, the rules and the VMs into
 * the relayed records wanted; chandb writes the difference.
 */
#ifndef RELAY_H
#define RELAY_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define RELAY_FROM_PREFIX "from/"
#define RELAY_TO_PREFIX "to/"

enum relay_to {
    RELAY_TO_VMS,               /* The VMs listed in the rule. */
    RELAY_TO_ALL,               /* Every VM with a channel. */
    RELAY_TO_SAME_KEY,          /* The VMs that published the same key. */
};

struct relay_rule {
    const char *source;         /* VM name, or NULL for any.  Borrowed. */
    const char *prefix;         /* Key prefix ("" for all).  Borrowed. */
    enum relay_to to;
    const char *const *vms;     /* RELAY_TO_VMS targets.  Borrowed. */
    size_t n_vms;
};

/* Parses 'to' ("vms", "all" or "same-key").  Returns false if it is none
 * of them. */
bool relay_to_from_string(const char *to, enum relay_to *);

/* True if one of the 'n_rules' rules in 'rules' matches a record 'key'
 * published by VM 'vm' (its source and prefix), whatever its targets.
 * Rules also give permission this way: a VM's scanner verdicts count only
 * where a rule matches them (objaction.h). */
bool relay_allows(const struct relay_rule *rules, size_t n_rules,
                  const char *vm, const char *key);

/* Computes the relayed records wanted.  'published' (borrowed) is an object
 * vm -> (key -> [version, value_text]) of every VM's Guest_Record rows;
 * 'vms' (borrowed) an array of the names of the VMs that have a channel.
 * Returns a new object target_vm -> (relayed_key -> [version,
 * value_text]).  Adds to 'counts' (an object, borrowed) per source VM
 * vm -> {"relayed": n, "refused": n, "refused_keys": {key: version}}:
 * relayed records made (one per target), and messages ("to/<vm>/...") or
 * records no rule lets through to a target (and relayed keys longer than
 * 256 bytes), with which ones. */
json_t *relay_compute(const struct relay_rule *rules, size_t n_rules,
                      const json_t *published, const json_t *vms,
                      json_t *counts);

#endif /* relay.h */
