/* CUnit suite for lib/hmap: the intrusive hash map, checked against a
 * plain array with random inserts and removals. */

#include <config.h>
#include "unit.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

struct elem {
    struct hmap_node node;
    int key;
    bool in_map;
};

/* A poor hash on purpose, so that keys collide. */
static size_t
hash_key(int key)
{
    return key % 7;
}

static struct elem *
find(const struct hmap *map, int key)
{
    struct elem *e;

    HMAP_FOR_EACH_WITH_HASH (e, node, hash_key(key), map) {
        if (e->key == key) {
            return e;
        }
    }
    return NULL;
}

/* Asserts that 'map' holds exactly the elements of 'elems' marked
 * 'in_map'. */
static void
check_map(struct hmap *map, struct elem *elems, size_t n)
{
    size_t n_in = 0, n_seen = 0;
    struct elem *e;

    for (size_t i = 0; i < n; i++) {
        if (elems[i].in_map) {
            n_in++;
            CU_ASSERT_PTR_EQUAL(find(map, elems[i].key), &elems[i]);
        } else {
            CU_ASSERT_PTR_NULL(find(map, elems[i].key));
        }
    }
    CU_ASSERT_EQUAL(hmap_count(map), n_in);
    HMAP_FOR_EACH_SAFE (e, node, map) {
        CU_ASSERT_TRUE(e->in_map);
        n_seen++;
    }
    CU_ASSERT_EQUAL(n_seen, n_in);
}

static void
test_empty(void)
{
    struct hmap map;

    hmap_init(&map);
    CU_ASSERT_EQUAL(hmap_count(&map), 0);
    CU_ASSERT_PTR_NULL(hmap_first(&map));
    CU_ASSERT_PTR_NULL(hmap_first_with_hash(&map, 3));
    hmap_destroy(&map);
    hmap_destroy(NULL);
}

/* Inserts past several expansions, removes in another order. */
static void
test_grow_and_shrink(void)
{
    enum { N = 1000 };
    struct elem *elems = calloc(N, sizeof *elems);
    struct hmap map;

    CU_ASSERT_PTR_NOT_NULL_FATAL(elems);
    hmap_init(&map);
    for (int i = 0; i < N; i++) {
        elems[i].key = i;
        elems[i].in_map = true;
        hmap_insert(&map, &elems[i].node, hash_key(i));
        if (i % 97 == 0) {
            check_map(&map, elems, i + 1);
        }
    }
    check_map(&map, elems, N);
    for (int i = N - 1; i >= 0; i -= 2) {
        hmap_remove(&map, &elems[i].node);
        elems[i].in_map = false;
    }
    check_map(&map, elems, N);
    hmap_destroy(&map);
    free(elems);
}

/* Random inserts and removals against the array's idea of membership. */
static void
test_random(void)
{
    enum { N = 200 };
    uint64_t seed = 0x5eed, state = seed;
    struct elem elems[N];
    struct hmap map;

    memset(elems, 0, sizeof elems);
    for (int i = 0; i < N; i++) {
        elems[i].key = i * 31;
    }
    hmap_init(&map);
    for (int round = 0; round < 5000; round++) {
        struct elem *e = &elems[unit_random(&state) % N];
        if (e->in_map) {
            hmap_remove(&map, &e->node);
        } else {
            hmap_insert(&map, &e->node, hash_key(e->key));
        }
        e->in_map = !e->in_map;
        if (round % 500 == 0) {
            check_map(&map, elems, N);
        }
    }
    check_map(&map, elems, N);
    if (CU_get_number_of_failures()) {
        fprintf(stderr, "hmap random: seed %#"PRIx64"\n", seed);
    }
    hmap_destroy(&map);
}

/* HMAP_FOR_EACH_SAFE lets the body remove every element. */
static void
test_safe_removal(void)
{
    struct elem elems[50];
    struct hmap map;
    struct elem *e;

    hmap_init(&map);
    for (int i = 0; i < 50; i++) {
        elems[i].key = i;
        elems[i].in_map = true;
        hmap_insert(&map, &elems[i].node, hash_key(i));
    }
    HMAP_FOR_EACH_SAFE (e, node, &map) {
        hmap_remove(&map, &e->node);
        e->in_map = false;
    }
    check_map(&map, elems, 50);
    hmap_destroy(&map);
}

static void
test_hash_string_nocase(void)
{
    CU_ASSERT_EQUAL(hash_string_nocase("AbC-0"), hash_string_nocase("abc-0"));
    CU_ASSERT_NOT_EQUAL(hash_string_nocase("abc"), hash_string_nocase("abd"));
    CU_ASSERT_EQUAL(hash_string_nocase(""), 2166136261u);  /* FNV basis. */
}

static const struct unit_test tests[] = {
    { "empty", test_empty },
    { "grow and shrink", test_grow_and_shrink },
    { "random", test_random },
    { "safe removal", test_safe_removal },
    { "hash_string_nocase", test_hash_string_nocase },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("hmap", tests);
}
