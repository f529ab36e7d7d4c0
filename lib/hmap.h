/*
 * hmap: an intrusive hash map, after Open vSwitch's hmap.
 *
 * Elements embed a 'struct hmap_node' and are inserted with a hash the
 * caller computes; lookups walk the nodes with one hash and compare keys
 * themselves (HMAP_FOR_EACH_WITH_HASH).  The map owns only its bucket
 * array: the caller allocates and frees the elements, and removes an
 * element before freeing it.  The number of buckets is a power of 2 that
 * doubles when the map holds as many elements as buckets.
 */
#ifndef HMAP_H
#define HMAP_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct hmap_node {
    size_t hash;
    struct hmap_node *next;     /* In the same bucket. */
};

struct hmap {
    struct hmap_node **buckets; /* Owned. */
    size_t mask;                /* Number of buckets minus 1. */
    size_t n;                   /* Number of elements. */
};

/* Makes 'map' (caller-owned) an empty map.  hmap_destroy() frees what it
 * allocates. */
void hmap_init(struct hmap *map);

/* Frees the buckets of 'map', not its elements (which the caller owns and
 * must have freed, or still refer to elsewhere).  NULL is ignored. */
void hmap_destroy(struct hmap *map);

/* Inserts 'node' (owned by the caller) with 'hash'. */
void hmap_insert(struct hmap *map, struct hmap_node *node, size_t hash);

/* Removes 'node', which must be in 'map'.  The caller still owns it. */
void hmap_remove(struct hmap *map, struct hmap_node *node);

/* Returns the number of elements in 'map'. */
static inline size_t
hmap_count(const struct hmap *map)
{
    return map->n;
}

/* Returns the first node in 'map' with 'hash', or NULL.  Borrowed. */
struct hmap_node *hmap_first_with_hash(const struct hmap *map, size_t hash);

/* Returns the node after 'node' with the same hash, or NULL.  Borrowed. */
struct hmap_node *hmap_next_with_hash(const struct hmap_node *node);

/* Returns the first node of 'map' in no particular order, or NULL. */
struct hmap_node *hmap_first(const struct hmap *map);

/* Returns the node after 'node' in 'map', or NULL at the end. */
struct hmap_node *hmap_next(const struct hmap *map,
                            const struct hmap_node *node);

/* Returns a hash of the NUL-terminated string 's' (FNV-1a), with ASCII
 * letters folded to lower case, so that strings that compare equal with
 * strcasecmp() hash alike. */
uint32_t hash_string_nocase(const char *s);

/* The element of type TYPE whose member MEMBER is NODE, or NULL if NODE is
 * NULL. */
#define HMAP_ELEM(NODE, TYPE, MEMBER)                                   \
    ((NODE) ? CONTAINER_OF(NODE, TYPE, MEMBER) : NULL)

/* Iterates NODE (a pointer to the element type) over the elements of HMAP
 * with hash HASH, whose node is their member MEMBER. */
#define HMAP_FOR_EACH_WITH_HASH(NODE, MEMBER, HASH, HMAP)               \
    for ((NODE) = HMAP_ELEM(hmap_first_with_hash(HMAP, HASH),           \
                            __typeof__(*(NODE)), MEMBER);               \
         (NODE) != NULL;                                                \
         (NODE) = HMAP_ELEM(hmap_next_with_hash(&(NODE)->MEMBER),       \
                            __typeof__(*(NODE)), MEMBER))

/* Iterates NODE over every element of HMAP; the body may remove (and free)
 * NODE. */
#define HMAP_FOR_EACH_SAFE(NODE, MEMBER, HMAP)                          \
    for (struct hmap_node *NODE##_node__ = hmap_first(HMAP),            \
             *NODE##_next__ = (NODE##_node__                            \
                               ? hmap_next(HMAP, NODE##_node__) : NULL); \
         (NODE##_node__                                                 \
          ? ((NODE) = CONTAINER_OF(NODE##_node__, __typeof__(*(NODE)),  \
                                   MEMBER), true)                       \
          : false);                                                     \
         NODE##_node__ = NODE##_next__,                                 \
             NODE##_next__ = (NODE##_node__                             \
                              ? hmap_next(HMAP, NODE##_node__) : NULL))

#endif /* hmap.h */
