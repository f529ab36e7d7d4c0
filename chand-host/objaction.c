/* objaction: records that ask VMs to act on objects.  See objaction.h. */

#include <config.h>
#include "objaction.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* True if the array of strings 'flags' holds 'flag'. */
static bool
has_flag(const json_t *flags, const char *flag)
{
    size_t i;
    const json_t *f;
    json_array_foreach (flags, i, f) {
        if (json_is_string(f) && !strcmp(json_string_value(f), flag)) {
            return true;
        }
    }
    return false;
}

static const char *
param(const json_t *object, const char *name)
{
    return json_string_value(json_object_get(json_object_get(object,
                                                             "params"),
                                             name));
}

/* Adds 'key' with the JSON 'value' (stolen), rendered compactly with
 * sorted members, to 'vm''s records in 'wanted'. */
static void
want(json_t *wanted, const char *vm, const char *key, json_t *value)
{
    json_t *records = json_object_get(wanted, vm);
    if (!records) {
        records = json_object();
        json_object_set_new(wanted, vm, records);
    }
    char *text = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) {
        out_of_memory();
    }
    json_object_set_new(records, key, json_string(text));
    free(text);
    json_decref(value);
}

static void
add_verdict(json_t *wanted, const char *vm, const char *digest,
            const json_t *object, const json_t *paths, const char *source)
{
    const char *action = param(object, "action");
    if (!action || strcmp(action, "delete")) {
        action = "quarantine";
    }
    char *key = xasprintf("%s%s", OBJACTION_VERDICT_PREFIX, digest);
    json_t *value = json_pack("{ss ss ss sO}", "digest", digest,
                              "verdict", "infected", "action", action,
                              "paths", paths);
    if (source) {
        json_object_set_new(value, "source", json_string(source));
    }
    want(wanted, vm, key, value);
    free(key);
}

/* The size of the superseding object, or -1 if unknown. */
static json_int_t
new_size(const json_t *objects, const json_t *object, const char *new)
{
    const json_t *size = json_object_get(json_object_get(objects, new),
                                         "size");
    if (json_is_integer(size)) {
        return json_integer_value(size);
    }
    const char *s = param(object, "new_size");
    char *end;
    if (s && *s >= '0' && *s <= '9') {
        long long n = strtoll(s, &end, 10);
        if (!*end && n >= 0) {
            return n;
        }
    }
    return -1;
}

static void
add_notice(json_t *wanted, const char *vm, const char *digest,
           const json_t *objects, const json_t *object, const json_t *paths)
{
    const char *new = param(object, "superseded_by");
    json_int_t size = new ? new_size(objects, object, new) : -1;
    if (size < 0 || !strcmp(new, digest)) {
        return;
    }
    char *key = xasprintf("%s%s", OBJACTION_NOTICE_PREFIX, digest);
    want(wanted, vm, key, json_pack("{ss ss sI sO}", "digest", digest,
                                    "superseded_by", new, "size", size,
                                    "paths", paths));
    free(key);
}

json_t *
objaction_compute(const json_t *objects, const json_t *refs,
                  const json_t *scanned)
{
    json_t *wanted = json_object();
    const char *vm;
    const json_t *held;

    json_object_foreach ((json_t *) refs, vm, held) {
        const char *digest;
        const json_t *paths;
        json_object_foreach ((json_t *) held, digest, paths) {
            const json_t *object = json_object_get(objects, digest);
            if (!object) {
                continue;
            }
            const char *scanner = json_string_value(
                json_object_get(scanned, digest));
            if (has_flag(json_object_get(object, "flags"), "infected")) {
                add_verdict(wanted, vm, digest, object, paths, NULL);
            } else if (scanner) {
                add_verdict(wanted, vm, digest, object, paths, scanner);
            }
            add_notice(wanted, vm, digest, objects, object, paths);
        }
    }
    return wanted;
}

const char *
objaction_parse_scan(const char *key, const char *value_text)
{
    size_t n = strlen(OBJACTION_VERDICT_PREFIX);
    const char *digest = key + n;
    if (strncmp(key, OBJACTION_VERDICT_PREFIX, n) || strlen(digest) != 64
        || strspn(digest, "0123456789abcdef") != 64) {
        return NULL;
    }
    json_t *v = value_text ? json_loads(value_text, 0, NULL) : NULL;
    const char *verdict = json_string_value(json_object_get(v, "verdict"));
    bool infected = verdict && !strcmp(verdict, "infected");
    json_decref(v);
    return infected ? digest : NULL;
}

static bool
is_digest(const char *s)
{
    return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

const char *
objaction_parse_restore(const char *key, const char *value_text,
                        json_int_t *atp)
{
    size_t n = strlen(OBJACTION_RESTORE_PREFIX);
    const char *digest = key + n;
    if (strncmp(key, OBJACTION_RESTORE_PREFIX, n) || !is_digest(digest)
        || !value_text) {
        return NULL;
    }
    json_t *v = json_loads(value_text, 0, NULL);
    const char *d = json_string_value(json_object_get(v, "digest"));
    const json_t *at = json_object_get(v, "at");
    bool ok = (d && !strcmp(d, digest)
               && json_is_string(json_object_get(v, "path"))
               && json_is_integer(at));
    if (ok) {
        *atp = json_integer_value(at);
    }
    json_decref(v);
    return ok ? digest : NULL;
}

/* True if 'vm' is in the array of strings 'vms'. */
static bool
has_vm(const json_t *vms, const char *vm)
{
    return has_flag(vms, vm);
}

/* Returns a new array of the VMs of 'refs' that hold a clean copy of
 * 'digest', 'requester' excluded, sorted. */
static json_t *
clean_holders(const json_t *refs, const char *digest, const char *requester)
{
    json_t *candidates = json_array();
    const char *vm;
    const json_t *held;
    json_object_foreach ((json_t *) refs, vm, held) {
        const json_t *flags = json_object_get(held, digest);
        if (flags && strcmp(vm, requester)
            && !has_flag(flags, "infected")
            && !has_flag(flags, "quarantined")) {
            json_array_append_new(candidates, json_string(vm));
        }
    }
    /* Sort by name: a simple insertion sort over a short array. */
    for (size_t i = 1; i < json_array_size(candidates); i++) {
        for (size_t j = i; j > 0; j--) {
            json_t *a = json_array_get(candidates, j - 1);
            json_t *b = json_array_get(candidates, j);
            if (strcmp(json_string_value(a), json_string_value(b)) <= 0) {
                break;
            }
            json_incref(a);
            json_array_set(candidates, j - 1, b);
            json_array_set_new(candidates, j, a);
        }
    }
    return candidates;
}

/* True if 'candidates' names a VM that 'tried' (an array of names) does
 * not. */
static bool
untried(const json_t *candidates, const json_t *tried)
{
    size_t i;
    const json_t *vm;
    json_array_foreach (candidates, i, vm) {
        if (!has_vm(tried, json_string_value(vm))) {
            return true;
        }
    }
    return false;
}

static void
answer_error(json_t *wanted, const char *vm, const char *digest,
             const json_t *at, char *error)
{
    char *key = xasprintf("%s%s", OBJACTION_RESTORE_PREFIX, digest);
    want(wanted, vm, key, json_pack("{ss sO ss}", "digest", digest,
                                    "request", at, "error", error));
    free(key);
    free(error);
}

/* True if 'records' (key -> value_text, one VM's computed records) holds
 * an update notice whose "superseded_by" is 'digest'. */
static bool
noticed(const json_t *records, const char *digest)
{
    const char *key;
    const json_t *text;
    json_object_foreach ((json_t *) records, key, text) {
        if (strncmp(key, OBJACTION_NOTICE_PREFIX,
                    strlen(OBJACTION_NOTICE_PREFIX))) {
            continue;
        }
        json_t *v = json_loads(json_string_value(text), 0, NULL);
        const char *new = json_string_value(json_object_get(
                                                v, "superseded_by"));
        bool match = new && !strcmp(new, digest);
        json_decref(v);
        if (match) {
            return true;
        }
    }
    return false;
}

unsigned int
objaction_restore(const json_t *objects, const json_t *refs,
                  const json_t *requests, const json_t *content,
                  json_t *wanted, json_t *needs)
{
    unsigned int refused = 0;
    const char *vm;
    const json_t *asked;

    json_object_foreach ((json_t *) requests, vm, asked) {
        const char *digest;
        const json_t *at;
        json_object_foreach ((json_t *) asked, digest, at) {
            const json_t *object = json_object_get(objects, digest);
            const json_t *state = json_object_get(content, digest);
            bool holds = json_object_get(json_object_get(refs, vm),
                                         digest) != NULL;
            bool told = noticed(json_object_get(wanted, vm), digest);
            if (!object) {
                refused++;
                answer_error(wanted, vm, digest, at, xasprintf(
                                 "not entitled: no VM ever reported object "
                                 "%.12s", digest));
                continue;
            }
            if (!holds && !told
                && !has_vm(json_object_get(object, "held_by"), vm)) {
                refused++;
                answer_error(wanted, vm, digest, at, xasprintf(
                                 "not entitled: VM %s never held object "
                                 "%.12s", vm, digest));
                continue;
            }
            if (has_flag(json_object_get(object, "flags"), "infected")) {
                answer_error(wanted, vm, digest, at, xasprintf(
                                 "object %.12s is flagged infected", digest));
                continue;
            }
            if (json_is_string(state)) {
                char *key = xasprintf("%s%s", OBJACTION_RESTORE_PREFIX,
                                      digest);
                want(wanted, vm, key, json_pack(
                         "{ss sO sO}", "digest", digest, "request", at,
                         "size", json_object_get(object, "size")));
                free(key);
                continue;
            }
            const char *error = json_string_value(json_object_get(state,
                                                                  "error"));
            json_t *candidates = clean_holders(refs, digest, vm);
            if (error && !untried(candidates,
                                  json_object_get(state, "tried"))) {
                answer_error(wanted, vm, digest, at, xstrdup(error));
            } else if (!json_array_size(candidates)) {
                answer_error(wanted, vm, digest, at, xasprintf(
                                 "no other VM holds a clean copy of object "
                                 "%.12s", digest));
            } else {
                json_t *need = json_object_get(needs, digest);
                if (!need) {
                    json_object_set_new(needs, digest, json_pack(
                                            "{sO sO}", "size",
                                            json_object_get(object, "size"),
                                            "candidates", candidates));
                }
            }
            json_decref(candidates);
        }
    }
    return refused;
}

void
objaction_allow(const json_t *allow, const json_t *vms, json_t *wanted)
{
    size_t i;
    const json_t *vm;
    json_array_foreach (vms, i, vm) {
        const char *digest;
        const json_t *name;
        json_object_foreach ((json_t *) allow, digest, name) {
            char *key = xasprintf("%s%s", OBJACTION_ALLOW_PREFIX, digest);
            want(wanted, json_string_value(vm), key,
                 json_pack("{ss sO}", "digest", digest, "name", name));
            free(key);
        }
    }
}
