/* A queue of record keys: see keyq.h. */

#include <config.h>
#include "keyq.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

void
keyq_init(struct keyq *q)
{
    hmap_init(&q->index);
    list_init(&q->order);
}

void
keyq_destroy(struct keyq *q)
{
    struct keyq_entry *e;

    LIST_FOR_EACH_SAFE (e, list_node, &q->order) {
        keyq_remove(q, e);
    }
    hmap_destroy(&q->index);
}

static struct keyq_entry *
find(const struct keyq *q, const char *key)
{
    struct keyq_entry *e;

    HMAP_FOR_EACH_WITH_HASH (e, node, hash_string_nocase(key), &q->index) {
        if (!strcmp(e->key, key)) {
            return e;
        }
    }
    return NULL;
}

void
keyq_push(struct keyq *q, const char *key)
{
    if (!find(q, key)) {
        struct keyq_entry *e = xmalloc(sizeof *e);

        e->key = xstrdup(key);
        hmap_insert(&q->index, &e->node, hash_string_nocase(key));
        list_push_back(&q->order, &e->list_node);
    }
}

void
keyq_remove(struct keyq *q, struct keyq_entry *e)
{
    hmap_remove(&q->index, &e->node);
    list_remove(&e->list_node);
    free(e->key);
    free(e);
}

int
keyq_push_record_cb(void *q, const char *key, const char *value,
                    int64_t version)
{
    (void) value;
    (void) version;
    keyq_push(q, key);
    return 0;
}
