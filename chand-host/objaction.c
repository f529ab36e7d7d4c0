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
