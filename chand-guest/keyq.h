/*
 * keyq: a queue of record keys waiting to be looked at, each at most once,
 * in the order they were first queued.  For the runners that act on
 * delivered records (handler.h, call.h).
 */
#ifndef KEYQ_H
#define KEYQ_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "list.h"

struct keyq_entry {
    struct hmap_node node;      /* In 'index', by hash of 'key'. */
    struct list list_node;      /* In 'order'. */
    char *key;                  /* Owned. */
};

struct keyq {
    struct hmap index;          /* struct keyq_entry, all in 'order'. */
    struct list order;
};

void keyq_init(struct keyq *);

/* Frees every entry. */
void keyq_destroy(struct keyq *);

/* Queues 'key' (borrowed, copied) unless it is queued already. */
void keyq_push(struct keyq *, const char *key);

/* Takes 'e' off the queue and frees it. */
void keyq_remove(struct keyq *, struct keyq_entry *e);

static inline bool
keyq_is_empty(const struct keyq *q)
{
    return list_is_empty(&q->order);
}

static inline size_t
keyq_size(const struct keyq *q)
{
    return list_size(&q->order);
}

/* A datastore_list_cb (datastore.h) that queues every key listed in the
 * keyq 'q'. */
int keyq_push_record_cb(void *q, const char *key, const char *value,
                        int64_t version);

#endif /* keyq.h */
