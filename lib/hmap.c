/* Copyright (c) 2026 The chand authors.  See hmap.h. */

#include <config.h>
#include "hmap.h"

#include <ctype.h>
#include <stdlib.h>

/* Buckets of a new map. */
#define HMAP_INITIAL_BUCKETS 16

/* Initializes 'map', which the caller owns. */
void
hmap_init(struct hmap *map)
{
    map->buckets = xcalloc(HMAP_INITIAL_BUCKETS, sizeof *map->buckets);
    map->mask = HMAP_INITIAL_BUCKETS - 1;
    map->n = 0;
}

/* Frees the bucket array 'map' owns. */
void
hmap_destroy(struct hmap *map)
{
    if (map) {
        free(map->buckets);
        map->buckets = NULL;
        map->mask = 0;
        map->n = 0;
    }
}

/* Puts 'node' at the head of its bucket. */
static void
hmap_link(struct hmap *map, struct hmap_node *node)
{
    struct hmap_node **bucket = &map->buckets[node->hash & map->mask];

    node->next = *bucket;
    *bucket = node;
}

/* Doubles the buckets of 'map', which keeps its elements. */
static void
hmap_expand(struct hmap *map)
{
    struct hmap_node **old = map->buckets;
    size_t old_n = map->mask + 1;

    map->mask = 2 * old_n - 1;
    map->buckets = xcalloc(old_n * 2, sizeof *map->buckets);
    for (size_t i = 0; i < old_n; i++) {
        struct hmap_node *node, *next;

        for (node = old[i]; node; node = next) {
            next = node->next;
            hmap_link(map, node);
        }
    }
    free(old);
}

/* Inserts 'node' (still owned by the caller). */
void
hmap_insert(struct hmap *map, struct hmap_node *node, size_t hash)
{
    if (map->n >= map->mask + 1) {
        hmap_expand(map);
    }
    node->hash = hash;
    hmap_link(map, node);
    map->n++;
}

/* Unlinks 'node' (still owned by the caller). */
void
hmap_remove(struct hmap *map, struct hmap_node *node)
{
    struct hmap_node **p = &map->buckets[node->hash & map->mask];

    while (*p != node) {
        p = &(*p)->next;
    }
    *p = node->next;
    map->n--;
}

/* Returns the first node at or after 'node' with 'hash' (borrowed). */
static struct hmap_node *
next_with_hash(struct hmap_node *node, size_t hash)
{
    while (node && node->hash != hash) {
        node = node->next;
    }
    return node;
}

/* Returns the first node with 'hash', borrowed. */
struct hmap_node *
hmap_first_with_hash(const struct hmap *map, size_t hash)
{
    return next_with_hash(map->buckets[hash & map->mask], hash);
}

/* Returns the next node with the hash of 'node', borrowed. */
struct hmap_node *
hmap_next_with_hash(const struct hmap_node *node)
{
    return next_with_hash(node->next, node->hash);
}

/* Returns the first node of a bucket at or after 'start', borrowed. */
static struct hmap_node *
first_in_buckets(const struct hmap *map, size_t start)
{
    for (size_t i = start; i <= map->mask; i++) {
        if (map->buckets[i]) {
            return map->buckets[i];
        }
    }
    return NULL;
}

/* Returns the first node, borrowed. */
struct hmap_node *
hmap_first(const struct hmap *map)
{
    return first_in_buckets(map, 0);
}

/* Returns the node after 'node', borrowed. */
struct hmap_node *
hmap_next(const struct hmap *map, const struct hmap_node *node)
{
    return (node->next ? node->next
            : first_in_buckets(map, (node->hash & map->mask) + 1));
}

/* Returns the case-folded FNV-1a hash of 's' (borrowed). */
uint32_t
hash_string_nocase(const char *s)
{
    uint32_t h = 2166136261u;

    for (const char *p = s; *p; p++) {
        h = (h ^ (unsigned char) tolower((unsigned char) *p)) * 16777619u;
    }
    return h;
}
