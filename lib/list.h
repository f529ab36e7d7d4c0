/*
 * list: an intrusive doubly linked list, after Open vSwitch's ovs_list.
 *
 * A 'struct list' is both the head of a list and the node that an element
 * embeds; CONTAINER_OF (util.h) gets from a node back to its element.  The
 * list owns nothing: its user allocates and frees the elements, and must
 * remove an element before freeing it.  An empty head points at itself, and
 * so does a removed node, so list_remove() on a node twice is harmless.
 */
#ifndef LIST_H
#define LIST_H 1

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

struct list {
    struct list *prev, *next;
};

/* Makes 'list' (caller-owned) an empty list, or a node in no list. */
static inline void
list_init(struct list *list)
{
    list->prev = list->next = list;
}

/* True if 'list' has no elements (or the node 'list' is in no list). */
static inline bool
list_is_empty(const struct list *list)
{
    return list->next == list;
}

/* Inserts 'elem' (owned by the caller) just before 'before'. */
static inline void
list_insert(struct list *before, struct list *elem)
{
    elem->prev = before->prev;
    elem->next = before;
    before->prev->next = elem;
    before->prev = elem;
}

/* Appends 'elem' (owned by the caller) to 'list'. */
static inline void
list_push_back(struct list *list, struct list *elem)
{
    list_insert(list, elem);
}

/* Inserts 'elem' (owned by the caller) at the front of 'list'. */
static inline void
list_push_front(struct list *list, struct list *elem)
{
    list_insert(list->next, elem);
}

/* Removes 'elem' from its list and leaves it in none (self-linked).  The
 * caller still owns the element. */
static inline void
list_remove(struct list *elem)
{
    elem->prev->next = elem->next;
    elem->next->prev = elem->prev;
    list_init(elem);
}

/* Returns the first node of nonempty 'list' (borrowed). */
static inline struct list *
list_front(const struct list *list)
{
    return list->next;
}

/* Returns the number of elements in 'list', in linear time. */
static inline size_t
list_size(const struct list *list)
{
    size_t n = 0;

    for (const struct list *e = list->next; e != list; e = e->next) {
        n++;
    }
    return n;
}

/* Returns the element of type 'TYPE' whose member 'MEMBER' is 'NODE'. */
#define LIST_ELEM(NODE, TYPE, MEMBER) CONTAINER_OF(NODE, TYPE, MEMBER)

/* Iterates ITER (a pointer to the element type) over LIST's elements,
 * whose node is their member MEMBER.  The body must not remove ITER. */
#define LIST_FOR_EACH(ITER, MEMBER, LIST)                               \
    for (struct list *ITER##_node__ = (LIST)->next;                     \
         (ITER##_node__ != (LIST)                                       \
          ? ((ITER) = LIST_ELEM(ITER##_node__, __typeof__(*(ITER)),     \
                                MEMBER), true)                          \
          : false);                                                     \
         ITER##_node__ = ITER##_node__->next)

/* Like LIST_FOR_EACH, but the body may remove (and free) ITER. */
#define LIST_FOR_EACH_SAFE(ITER, MEMBER, LIST)                          \
    for (struct list *ITER##_node__ = (LIST)->next,                     \
             *ITER##_next__ = ITER##_node__->next;                      \
         (ITER##_node__ != (LIST)                                       \
          ? ((ITER) = LIST_ELEM(ITER##_node__, __typeof__(*(ITER)),     \
                                MEMBER), true)                          \
          : false);                                                     \
         ITER##_node__ = ITER##_next__,                                 \
             ITER##_next__ = ITER##_node__->next)

#endif /* list.h */
