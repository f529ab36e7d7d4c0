/* CUnit suite for lib/list: the intrusive doubly linked list. */

#include <config.h>
#include "unit.h"

#include <stdlib.h>

#include "list.h"

struct elem {
    int value;
    struct list node;
};

/* Asserts that 'list' holds the 'n' values in 'values', in order, both
 * forwards and backwards. */
static void
check_list(const struct list *list, const int *values, size_t n)
{
    const struct elem *e;
    size_t i = 0;

    LIST_FOR_EACH (e, node, list) {
        CU_ASSERT_FATAL(i < n);
        CU_ASSERT_EQUAL(e->value, values[i]);
        i++;
    }
    CU_ASSERT_EQUAL(i, n);
    CU_ASSERT_EQUAL(list_size(list), n);
    CU_ASSERT_EQUAL(list_is_empty(list), n == 0);

    const struct list *p = list->prev;
    for (i = n; i > 0; i--, p = p->prev) {
        CU_ASSERT_EQUAL(LIST_ELEM(p, struct elem, node)->value,
                        values[i - 1]);
    }
    CU_ASSERT_PTR_EQUAL(p, list);
}

static void
test_empty(void)
{
    struct list list;

    list_init(&list);
    check_list(&list, NULL, 0);
    CU_ASSERT_PTR_EQUAL(list_front(&list), &list);
}

static void
test_push(void)
{
    struct elem e[4] = { { 1 }, { 2 }, { 3 }, { 4 } };
    struct list list;

    list_init(&list);
    list_push_back(&list, &e[1].node);
    list_push_back(&list, &e[2].node);
    list_push_front(&list, &e[0].node);
    list_push_back(&list, &e[3].node);
    check_list(&list, (int[]) { 1, 2, 3, 4 }, 4);
    CU_ASSERT_PTR_EQUAL(list_front(&list), &e[0].node);
}

static void
test_remove(void)
{
    struct elem e[4] = { { 1 }, { 2 }, { 3 }, { 4 } };
    struct list list;

    list_init(&list);
    for (int i = 0; i < 4; i++) {
        list_push_back(&list, &e[i].node);
    }
    list_remove(&e[2].node);
    check_list(&list, (int[]) { 1, 2, 4 }, 3);
    CU_ASSERT_TRUE(list_is_empty(&e[2].node));  /* Self-linked. */
    list_remove(&e[2].node);                      /* Harmless twice. */
    check_list(&list, (int[]) { 1, 2, 4 }, 3);
    list_remove(&e[0].node);
    list_remove(&e[3].node);
    check_list(&list, (int[]) { 2 }, 1);
    list_remove(&e[1].node);
    check_list(&list, NULL, 0);
}

/* LIST_FOR_EACH_SAFE allows removing and freeing the current element. */
static void
test_safe_removal(void)
{
    struct list list;
    struct elem *e;

    list_init(&list);
    for (int i = 0; i < 10; i++) {
        e = calloc(1, sizeof *e);
        CU_ASSERT_PTR_NOT_NULL_FATAL(e);
        e->value = i;
        list_push_back(&list, &e->node);
    }
    LIST_FOR_EACH_SAFE (e, node, &list) {
        if (e->value % 2) {
            list_remove(&e->node);
            free(e);
        }
    }
    check_list(&list, (int[]) { 0, 2, 4, 6, 8 }, 5);
    LIST_FOR_EACH_SAFE (e, node, &list) {
        list_remove(&e->node);
        free(e);
    }
    check_list(&list, NULL, 0);
}

/* Moving every element to another list, as a queue is detached. */
static void
test_move(void)
{
    struct elem e[3] = { { 1 }, { 2 }, { 3 } };
    struct list a, b;
    struct elem *iter;

    list_init(&a);
    list_init(&b);
    for (int i = 0; i < 3; i++) {
        list_push_back(&a, &e[i].node);
    }
    LIST_FOR_EACH_SAFE (iter, node, &a) {
        if (iter->value != 2) {
            list_remove(&iter->node);
            list_push_back(&b, &iter->node);
        }
    }
    check_list(&a, (int[]) { 2 }, 1);
    check_list(&b, (int[]) { 1, 3 }, 2);
}

static const struct unit_test tests[] = {
    { "empty", test_empty },
    { "push", test_push },
    { "remove", test_remove },
    { "safe removal", test_safe_removal },
    { "move", test_move },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("list", tests);
}
