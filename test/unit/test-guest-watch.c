/* Tests for chand-guest/watch: the incremental hasher on real files, and a
 * watch of a real directory (inotify) registering objects in a real
 * datastore. */

#include <config.h>
#include "unit.h"
#include "watch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datastore.h"
#include "guest-fixture.h"
#include "util.h"

#define SHA_ABC \
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_EMPTY \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_XYZ \
    "3608bca1e44ea6c4d268eb6db02260269892c0b42b86bbf1e77a6fa16c3c9282"

/* A scratch directory with the datastore and the watched directory "w"
 * in it. */
struct wfix {
    struct scratch sc;
    char dir[160];
    struct datastore *ds;
};

static void
wfix_init(struct wfix *f)
{
    scratch_init(&f->sc, "watch");
    scratch_file(&f->sc, "w", f->dir, sizeof f->dir);
    CU_ASSERT_FATAL(mkdir(f->dir, 0700) == 0);
    f->ds = open_ds(f->sc.path);
}

/* Returns the path of 'name' in the watched directory (malloc()ed, owned
 * by the caller). */
static char *
wpath(const struct wfix *f, const char *name)
{
    return xasprintf("%s/%s", f->dir, name);
}

static void
write_text(const struct wfix *f, const char *name, const char *text)
{
    char *path = wpath(f, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, text, strlen(text)) == (ssize_t) strlen(text));
    close(fd);
    free(path);
}

/* Removes everything in the watched directory (one level, and the empty
 * subdirectories), then the scratch directory. */
static void
wfix_destroy(struct wfix *f)
{
    datastore_close(f->ds);
    char *cmd = xasprintf("rm -rf '%s'", f->dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
    free(cmd);
    scratch_destroy(&f->sc);
}

/* Hashes 'path' to its end in 'budget'-byte steps; returns the result and
 * the number of steps. */
static enum watch_hash_result
hash_all(const char *path, size_t budget, struct watch_hasher *h,
         int *stepsp)
{
    enum watch_hash_result r;
    int error;

    CU_ASSERT_EQUAL_FATAL(watch_hasher_open(h, path), 0);
    *stepsp = 0;
    do {
        r = watch_hasher_step(h, budget, &error);
        ++*stepsp;
    } while (r == WATCH_HASH_MORE);
    return r;
}

static void
test_hasher(void)
{
    struct watch_hasher h;
    struct wfix f;
    int steps, error;

    wfix_init(&f);
    write_text(&f, "abc", "abc");
    write_text(&f, "empty", "");
    char *abc = wpath(&f, "abc"), *empty = wpath(&f, "empty");

    CU_ASSERT_EQUAL(hash_all(abc, WATCH_CHUNK, &h, &steps), WATCH_HASH_DONE);
    CU_ASSERT_STRING_EQUAL(h.digest, SHA_ABC);
    CU_ASSERT_EQUAL(h.done, 3);
    CU_ASSERT_EQUAL(steps, 1);
    watch_hasher_close(&h);
    watch_hasher_close(&h);                     /* Twice is fine. */

    /* One byte a step: one step per byte, and one to see the end. */
    CU_ASSERT_EQUAL(hash_all(abc, 1, &h, &steps), WATCH_HASH_DONE);
    CU_ASSERT_STRING_EQUAL(h.digest, SHA_ABC);
    CU_ASSERT_EQUAL(steps, 4);
    watch_hasher_close(&h);

    CU_ASSERT_EQUAL(hash_all(empty, 1, &h, &steps), WATCH_HASH_DONE);
    CU_ASSERT_STRING_EQUAL(h.digest, SHA_EMPTY);
    CU_ASSERT_EQUAL(h.done, 0);
    watch_hasher_close(&h);

    /* A file that changes while it is hashed. */
    CU_ASSERT_EQUAL_FATAL(watch_hasher_open(&h, abc), 0);
    CU_ASSERT_EQUAL(watch_hasher_step(&h, 1, &error), WATCH_HASH_MORE);
    write_text(&f, "abc", "abcd");
    enum watch_hash_result r;
    do {
        r = watch_hasher_step(&h, 1, &error);
    } while (r == WATCH_HASH_MORE);
    CU_ASSERT_EQUAL(r, WATCH_HASH_CHANGED);
    watch_hasher_close(&h);

    /* What is not a regular file. */
    char *link = wpath(&f, "link"), *fifo = wpath(&f, "fifo");
    char *sub = wpath(&f, "sub"), *none = wpath(&f, "none");
    CU_ASSERT_FATAL(symlink(abc, link) == 0);
    CU_ASSERT_FATAL(mkfifo(fifo, 0600) == 0);
    CU_ASSERT_FATAL(mkdir(sub, 0700) == 0);
    CU_ASSERT_EQUAL(watch_hasher_open(&h, link), ELOOP);
    CU_ASSERT_EQUAL(watch_hasher_open(&h, fifo), EINVAL);   /* No block. */
    CU_ASSERT_EQUAL(watch_hasher_open(&h, sub), EINVAL);
    CU_ASSERT_EQUAL(watch_hasher_open(&h, none), ENOENT);
    CU_ASSERT_EQUAL(h.fd, -1);
    free(link);
    free(fifo);
    free(sub);
    free(none);
    free(abc);
    free(empty);
    wfix_destroy(&f);
}

/* Runs 'w' until it is idle; returns the number of runs. */
static int
run_idle(struct watch *w)
{
    int n = 0;

    do {
        watch_run(w);
        n++;
    } while (!watch_is_idle(w) && n < 100000);
    CU_ASSERT(watch_is_idle(w));
    return n;
}

/* Asserts that 'name' in the watched directory is registered with
 * 'digest', or not registered if 'digest' is NULL. */
struct found {
    const char *path;
    char digest[65];
    bool found;
};

static int
find_cb(void *found_, const struct ds_object *o)
{
    struct found *found = found_;

    if (!strcmp(o->path, found->path)) {
        found->found = true;
        snprintf(found->digest, sizeof found->digest, "%s", o->digest);
    }
    return 0;
}

static void
assert_registered(const struct wfix *f, const char *name,
                  const char *digest)
{
    char *path = wpath(f, name);
    struct found found = { .path = path };

    CU_ASSERT_EQUAL(datastore_list_objects(f->ds, NULL, find_cb, &found), 0);
    if (found.found != (digest != NULL)
        || (digest && strcmp(found.digest, digest))) {
        fprintf(stderr, "%s: %s, expected %s\n", path,
                found.found ? found.digest : "not registered",
                digest ? digest : "not registered");
        CU_FAIL("registration");
    }
    free(path);
}

/* One expected registration: 'digest' NULL for none. */
struct registration {
    const char *name;
    const char *digest;
};

static void
assert_registrations(const struct wfix *f, const struct registration *r,
                     size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_registered(f, r[i].name, r[i].digest);
    }
}

static void
test_watch_scan_and_events(void)
{
    struct watch_stats st;
    struct watch *w;
    struct wfix f;

    wfix_init(&f);
    write_text(&f, "a", "abc");
    write_text(&f, "b", "abc");
    write_text(&f, "c", "");
    char *a = wpath(&f, "a"), *link = wpath(&f, "link");
    char *sub = wpath(&f, "sub"), *gone = wpath(&f, "gone");
    CU_ASSERT_FATAL(symlink(a, link) == 0);
    CU_ASSERT_FATAL(mkdir(sub, 0700) == 0);
    /* Registered, then deleted while nobody watched; and a path outside
     * the directory, which the watch leaves alone. */
    CU_ASSERT_EQUAL(datastore_object_add(f.ds, gone, SHA_XYZ, 3, NULL,
                                         NULL), 0);
    CU_ASSERT_EQUAL(datastore_object_add(f.ds, "/elsewhere/x", SHA_XYZ, 3,
                                         NULL, NULL), 0);

    w = watch_create(f.dir, f.ds);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_STRING_EQUAL(watch_get_dir(w), f.dir);
    CU_ASSERT_FALSE(watch_is_idle(w));          /* The scan is due. */
    run_idle(w);
    static const struct registration after_scan[] = {
        { "a", SHA_ABC }, { "b", SHA_ABC }, { "c", SHA_EMPTY },
        { "link", NULL }, { "sub", NULL }, { "gone", NULL },
    };
    assert_registrations(&f, after_scan, 6);
    char *value = NULL;
    CU_ASSERT_EQUAL(datastore_get_published(f.ds, "obj/" SHA_XYZ, &value,
                                            NULL, NULL, NULL), 0);
    CU_ASSERT(value && strstr(value, "/elsewhere/x"));
    free(value);
    CU_ASSERT_EQUAL(datastore_get_published(f.ds, "obj/" SHA_ABC, &value,
                                            NULL, NULL, NULL), 0);
    char *expect = xasprintf("{\"size\":3,\"paths\":[\"%s/a\",\"%s/b\"],"
                             "\"flags\":[],\"params\":{}}", f.dir, f.dir);
    CU_ASSERT_STRING_EQUAL(value, expect);
    free(expect);
    free(value);
    watch_get_stats(w, &st);
    CU_ASSERT(st.scans == 1 && st.hashed == 3 && st.added == 3
              && st.removed == 1 && st.errors == 0);

    /* A new file, a changed one, a rename, a deletion, a new symlink. */
    write_text(&f, "d", "xyz");
    write_text(&f, "a", "xyz");
    char *d = wpath(&f, "d"), *e = wpath(&f, "e"), *b = wpath(&f, "b");
    char *link2 = wpath(&f, "link2");
    CU_ASSERT_FATAL(rename(d, e) == 0);
    CU_ASSERT_FATAL(unlink(b) == 0);
    CU_ASSERT_FATAL(symlink(a, link2) == 0);
    run_idle(w);
    static const struct registration after_events[] = {
        { "a", SHA_XYZ }, { "b", NULL }, { "d", NULL }, { "e", SHA_XYZ },
        { "link2", NULL },
    };
    assert_registrations(&f, after_events, 5);
    bool deleted = false;
    CU_ASSERT_EQUAL(datastore_get_published(f.ds, "obj/" SHA_ABC, NULL,
                                            NULL, NULL, &deleted), 0);
    CU_ASSERT(deleted);
    watch_get_stats(w, &st);
    CU_ASSERT(st.events >= 4);

    json_t *status = watch_status_json(w);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(status, "dir")),
                           f.dir);
    CU_ASSERT(json_is_null(json_object_get(status, "hashing")));
    json_decref(status);

    watch_destroy(w);
    free(a);
    free(b);
    free(d);
    free(e);
    free(link);
    free(link2);
    free(sub);
    free(gone);
    wfix_destroy(&f);
}

/* Hashing goes a chunk a run; a file rewritten meanwhile is hashed again;
 * nothing is written while another transaction is open. */
static void
test_watch_incremental(void)
{
    struct watch_stats st;
    struct watch *w;
    struct wfix f;

    wfix_init(&f);
    w = watch_create(f.dir, f.ds);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    run_idle(w);
    watch_set_chunk(w, 1);

    write_text(&f, "f", "abcabcabcabc");
    for (int i = 0; i < 5; i++) {
        watch_run(w);
    }
    json_t *status = watch_status_json(w);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(status,
                                                             "hashing")),
                           "f");
    json_decref(status);
    write_text(&f, "f", "abc");                 /* Rewritten meanwhile. */
    int runs = run_idle(w);
    CU_ASSERT(runs >= 4);
    assert_registered(&f, "f", SHA_ABC);
    watch_get_stats(w, &st);
    CU_ASSERT_EQUAL(st.rehashed, 1);
    CU_ASSERT_EQUAL(st.hashed, 1);

    /* While a transaction is open, the watch waits. */
    CU_ASSERT_FATAL(datastore_begin(f.ds) == 0);
    write_text(&f, "g", "");
    for (int i = 0; i < 10; i++) {
        watch_run(w);
    }
    CU_ASSERT_FALSE(watch_is_idle(w));
    datastore_rollback(f.ds);
    run_idle(w);
    assert_registered(&f, "g", SHA_EMPTY);

    /* A watch that cannot start. */
    char *none = wpath(&f, "none");
    CU_ASSERT_PTR_NULL(watch_create(none, f.ds));
    free(none);

    watch_destroy(w);
    wfix_destroy(&f);
}

static const struct unit_test tests[] = {
    { "hasher", test_hasher },
    { "scan and events", test_watch_scan_and_events },
    { "incremental hashing", test_watch_incremental },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("watch", tests);
}
