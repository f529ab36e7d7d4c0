/* Copyright (c) 2026 The chand authors.  See relay.h. */

#include <config.h>
#include "relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan-wire.h"

bool
relay_to_from_string(const char *to, enum relay_to *rt)
{
    if (!to) {
        return false;
    } else if (!strcmp(to, "vms")) {
        *rt = RELAY_TO_VMS;
    } else if (!strcmp(to, "all")) {
        *rt = RELAY_TO_ALL;
    } else if (!strcmp(to, "same-key")) {
        *rt = RELAY_TO_SAME_KEY;
    } else {
        return false;
    }
    return true;
}

static bool
rule_matches(const struct relay_rule *r, const char *vm, const char *key)
{
    return (!r->source || !strcmp(r->source, vm))
           && !strncmp(key, r->prefix, strlen(r->prefix));
}

bool
relay_allows(const struct relay_rule *rules, size_t n_rules, const char *vm,
             const char *key)
{
    for (size_t i = 0; i < n_rules; i++) {
        if (rule_matches(&rules[i], vm, key)) {
            return true;
        }
    }
    return false;
}

static void
add_count(json_t *counts, const char *vm, const char *what)
{
    json_t *c = json_object_get(counts, vm);
    if (!c) {
        c = json_pack("{sIsI}", "relayed", (json_int_t) 0,
                      "refused", (json_int_t) 0);
        json_object_set_new(counts, vm, c);
    }
    json_object_set_new(c, what,
                        json_integer(json_integer_value(
                                         json_object_get(c, what)) + 1));
}

/* Counts a refusal of record 'key' (version in 'row') of 'source', and
 * notes which one it was: counts[source]["refused_keys"][key] = version. */
static void
note_refused(json_t *counts, const char *source, const char *key,
             const json_t *row)
{
    add_count(counts, source, "refused");
    json_t *c = json_object_get(counts, source);
    json_t *keys = json_object_get(c, "refused_keys");
    if (!keys) {
        keys = json_object();
        json_object_set_new(c, "refused_keys", keys);
    }
    json_object_set(keys, key, json_array_get(row, 0));
}

/* Adds to 'targets' (an object used as a set) the targets of rule 'r' for
 * record 'key' of 'source'. */
static void
rule_targets(const struct relay_rule *r, const char *source, const char *key,
             const json_t *published, const json_t *vms, json_t *targets)
{
    size_t i;
    json_t *v;
    const char *vm;
    const json_t *records;

    switch (r->to) {
    case RELAY_TO_VMS:
        for (i = 0; i < r->n_vms; i++) {
            json_object_set_new(targets, r->vms[i], json_true());
        }
        break;
    case RELAY_TO_ALL:
        json_array_foreach (vms, i, v) {
            json_object_set_new(targets, json_string_value(v), json_true());
        }
        break;
    case RELAY_TO_SAME_KEY:
        json_object_foreach ((json_t *) published, vm, records) {
            if (json_object_get(records, key)) {
                json_object_set_new(targets, vm, json_true());
            }
        }
        break;
    }
    json_object_del(targets, source);
}

/* Relays record 'key' = 'row' of 'source' into 'wanted'. */
static void
relay_record(const struct relay_rule *rules, size_t n_rules,
             const char *source, const char *key, const json_t *row,
             const json_t *published, const json_t *vms, json_t *wanted,
             json_t *counts)
{
    json_t *targets = json_object();
    bool matched = false;

    for (size_t i = 0; i < n_rules; i++) {
        if (rule_matches(&rules[i], source, key)) {
            matched = true;
            rule_targets(&rules[i], source, key, published, vms, targets);
        }
    }

    /* A message "to/<vm>/..." goes to <vm> alone, if a rule allows it. */
    const char *to = NULL;
    size_t to_len = 0;
    if (!strncmp(key, RELAY_TO_PREFIX, strlen(RELAY_TO_PREFIX))) {
        to = key + strlen(RELAY_TO_PREFIX);
        const char *slash = strchr(to, '/');
        to_len = slash ? (size_t) (slash - to) : strlen(to);
    }
    if (to) {
        char *name = strndup(to, to_len);
        bool allowed = name && json_object_get(targets, name);
        json_object_clear(targets);
        if (allowed) {
            json_object_set_new(targets, name, json_true());
        } else {
            note_refused(counts, source, key, row);
        }
        free(name);
    } else if (!matched) {
        json_decref(targets);
        return;
    }

    char relayed[CHAN_WIRE_MAX_KEY_LEN + 2];
    int n = snprintf(relayed, sizeof relayed, "%s%s/%s", RELAY_FROM_PREFIX,
                     source, key);
    if (n < 0 || (size_t) n > CHAN_WIRE_MAX_KEY_LEN) {
        if (json_object_size(targets)) {
            note_refused(counts, source, key, row);
        }
        json_decref(targets);
        return;
    }
    const char *target;
    json_t *yes;
    json_object_foreach (targets, target, yes) {
        json_t *t = json_object_get(wanted, target);
        if (!t) {
            t = json_object();
            json_object_set_new(wanted, target, t);
        }
        json_object_set(t, relayed, (json_t *) row);
        add_count(counts, source, "relayed");
    }
    json_decref(targets);
}

json_t *
relay_compute(const struct relay_rule *rules, size_t n_rules,
              const json_t *published, const json_t *vms, json_t *counts)
{
    json_t *wanted = json_object();
    const char *source;
    const json_t *records;

    json_object_foreach ((json_t *) published, source, records) {
        const char *key;
        json_t *row;
        json_object_foreach ((json_t *) records, key, row) {
            if (strncmp(key, RELAY_FROM_PREFIX, strlen(RELAY_FROM_PREFIX))) {
                relay_record(rules, n_rules, source, key, row, published,
                             vms, wanted, counts);
            }
        }
    }
    return wanted;
}
