/* Tests for chand-guest/kvp: the Hyper-V KVP pool format (golden bytes,
 * a pool written the way hv_kvp_daemon writes it), the limits, the fcntl
 * locks against another process, ownership, and the view over a real
 * datastore and real pool files. */

#include <config.h>
#include "unit.h"
#include "kvp.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "datastore.h"
#include "guest-fixture.h"
#include "poll-loop.h"
#include "util.h"

/* Returns the runs of nonzero bytes of 'buf' as "OFFSET:HEX" words after
 * "size=N": every byte not named is zero.  malloc()ed. */
static char *
nonzero_dump(const uint8_t *buf, size_t len)
{
    char *out = xasprintf("size=%zu", len);

    for (size_t i = 0; i < len; ) {
        if (!buf[i]) {
            i++;
            continue;
        }
        char *more = xasprintf("%s %zu:", out, i);
        free(out);
        out = more;
        for (; i < len && buf[i]; i++) {
            more = xasprintf("%s%02x", out, buf[i]);
            free(out);
            out = more;
        }
    }
    return out;
}

/* Reads the whole file 'path' into '*lenp' bytes (malloc()ed). */
static uint8_t *
slurp(const char *path, size_t *lenp)
{
    uint8_t *buf = (uint8_t *) read_file(path, lenp);

    CU_ASSERT_FATAL(buf != NULL);
    return buf;
}

/* Asserts that record 'i' of 'pool' is 'key' = 'value'. */
static void
assert_entry(const struct kvp_pool *pool, size_t i, const char *key,
             const char *value)
{
    const char *k, *v;
    size_t k_len, v_len;

    CU_ASSERT_FATAL(i < pool->n);
    kvp_pool_get(pool, i, &k, &k_len, &v, &v_len);
    CU_ASSERT_EQUAL(k_len, strlen(key));
    CU_ASSERT_EQUAL(v_len, strlen(value));
    CU_ASSERT(!memcmp(k, key, k_len));
    CU_ASSERT(!memcmp(v, value, v_len));
}

/* The format. */

static void
test_golden_bytes(void)
{
    struct scratch sc;
    char path[160];
    struct kvp_pool pool;
    size_t len;
    int fd;

    scratch_init(&sc, "kvp");
    scratch_file(&sc, ".kvp_pool_0", path, sizeof path);
    kvp_pool_init(&pool);
    kvp_pool_put(&pool, 0, "Key1", "Value1");
    kvp_pool_put(&pool, 1, "k2", "");
    kvp_pool_put(&pool, 2, "a", "{\"x\":1}");
    kvp_pool_put(&pool, 1, "k2", "v2");     /* In place. */
    CU_ASSERT_EQUAL(pool.n, 3);
    CU_ASSERT_EQUAL(kvp_pool_lock(path, true, true, &fd), 0);
    CU_ASSERT_EQUAL(kvp_pool_write(fd, &pool), 0);
    close(fd);

    uint8_t *buf = slurp(path, &len);
    char *dump = nonzero_dump(buf, len);
    /* 3 records of 512 + 2048 bytes: keys at 0, 2560, 5120, values 512
     * bytes further, NUL-padded. */
    CU_ASSERT_STRING_EQUAL(dump,
        "size=7680"
        " 0:4b657931"                   /* "Key1" */
        " 512:56616c756531"             /* "Value1" */
        " 2560:6b32"                    /* "k2" */
        " 3072:7632"                    /* "v2" */
        " 5120:61"                      /* "a" */
        " 5632:7b2278223a317d");        /* {"x":1} */
    free(dump);
    free(buf);

    /* Removing the middle one moves the last one up. */
    kvp_pool_remove(&pool, 1);
    CU_ASSERT_EQUAL(kvp_pool_lock(path, true, false, &fd), 0);
    CU_ASSERT_EQUAL(kvp_pool_write(fd, &pool), 0);
    close(fd);
    buf = slurp(path, &len);
    dump = nonzero_dump(buf, len);
    CU_ASSERT_STRING_EQUAL(dump, "size=5120 0:4b657931 512:56616c756531"
                           " 2560:61 3072:7b2278223a317d");
    free(dump);
    free(buf);
    kvp_pool_destroy(&pool);
    scratch_destroy(&sc);
}

/* hv_kvp_daemon's in-memory record (tools/hv/hv_kvp_daemon.c). */
struct ref_record {
    char key[512];
    char value[2048];
};

/* Writes 'n' records the way hv_kvp_daemon's kvp_key_add_or_modify()
 * and kvp_update_file() do: the key and value copied with their NUL into
 * a record whose other bytes are left as they were (here 0xEE), then
 * fwrite() of the array. */
static void
ref_write(const char *path, const char *const *kv, size_t n)
{
    struct ref_record *recs = xmalloc(n * sizeof *recs);
    FILE *f = fopen(path, "we");

    CU_ASSERT_FATAL(f != NULL);
    memset(recs, 0xee, n * sizeof *recs);
    for (size_t i = 0; i < n; i++) {
        memcpy(recs[i].key, kv[2 * i], strlen(kv[2 * i]) + 1);
        memcpy(recs[i].value, kv[2 * i + 1], strlen(kv[2 * i + 1]) + 1);
    }
    CU_ASSERT_EQUAL(fwrite(recs, sizeof *recs, n, f), n);
    fclose(f);
    free(recs);
}

static void
test_reference_writer(void)
{
    static const char *const kv[] = {
        "HostName", "hv-01.example.net",
        "VirtualMachineName", "vm1",
        "empty", "",
    };
    struct scratch sc;
    char path[160];
    struct kvp_pool pool;
    int fd;

    CU_ASSERT_EQUAL(sizeof(struct ref_record), KVP_RECORD_SIZE);
    scratch_init(&sc, "kvp");
    scratch_file(&sc, ".kvp_pool_3", path, sizeof path);
    ref_write(path, kv, 3);

    kvp_pool_init(&pool);
    CU_ASSERT_EQUAL(kvp_pool_lock(path, false, false, &fd), 0);
    CU_ASSERT_EQUAL(kvp_pool_read(fd, &pool), 0);
    close(fd);
    CU_ASSERT_EQUAL(pool.n, 3);
    CU_ASSERT_EQUAL(pool.extra, 0);
    assert_entry(&pool, 0, "HostName", "hv-01.example.net");
    assert_entry(&pool, 1, "VirtualMachineName", "vm1");
    assert_entry(&pool, 2, "empty", "");
    CU_ASSERT_EQUAL(kvp_pool_find(&pool, "VirtualMachineName"), 1);
    CU_ASSERT_EQUAL(kvp_pool_find(&pool, "Virtual"), -1);

    /* A partial record at the end is ignored, as fread() does. */
    FILE *f = fopen(path, "a");
    fputs("half a record", f);
    fclose(f);
    CU_ASSERT_EQUAL(kvp_pool_lock(path, false, false, &fd), 0);
    CU_ASSERT_EQUAL(kvp_pool_read(fd, &pool), 0);
    close(fd);
    CU_ASSERT_EQUAL(pool.n, 3);
    CU_ASSERT_EQUAL(pool.extra, 13);

    /* A field without its NUL is cut at the field's end. */
    uint8_t rec[KVP_RECORD_SIZE];
    const char *k, *v;
    size_t k_len, v_len;
    memset(rec, 'x', sizeof rec);
    kvp_pool_parse(&pool, rec, sizeof rec);
    kvp_pool_get(&pool, 0, &k, &k_len, &v, &v_len);
    CU_ASSERT_EQUAL(k_len, KVP_KEY_SIZE);
    CU_ASSERT_EQUAL(v_len, KVP_VALUE_SIZE);
    kvp_pool_destroy(&pool);
    scratch_destroy(&sc);
}

static void
test_limits(void)
{
    char key[KVP_KEY_SIZE + 1], value[KVP_VALUE_SIZE + 1];
    char *text;
    size_t len;

    memset(key, 'k', sizeof key);
    memset(value, 'v', sizeof value);
    CU_ASSERT_PTR_NULL(kvp_check_entry(key, KVP_KEY_MAX, value,
                                       KVP_VALUE_MAX));
    CU_ASSERT_PTR_NOT_NULL(kvp_check_entry(key, KVP_KEY_MAX + 1, value, 1));
    CU_ASSERT_PTR_NOT_NULL(kvp_check_entry(key, 1, value,
                                           KVP_VALUE_MAX + 1));
    CU_ASSERT_PTR_NOT_NULL(kvp_check_entry(key, 0, value, 1));
    CU_ASSERT_PTR_NOT_NULL(kvp_check_entry("a\0b", 3, "v", 1));
    CU_ASSERT_PTR_NOT_NULL(kvp_check_entry("k", 1, "a\0b", 3));
    CU_ASSERT_PTR_NULL(kvp_check_entry("k", 1, "", 0));

    /* Values: a string's characters, else the JSON without space. */
    CU_ASSERT_EQUAL(kvp_value_text("\"blue \\\"sky\\\"\"", &text, &len), 0);
    CU_ASSERT_STRING_EQUAL(text, "blue \"sky\"");
    free(text);
    CU_ASSERT_EQUAL(kvp_value_text("{ \"a b\" : [1, 2.50,\n true] }",
                                   &text, &len), 0);
    CU_ASSERT_STRING_EQUAL(text, "{\"a b\":[1,2.50,true]}");
    free(text);
    CU_ASSERT_EQUAL(kvp_value_text("1e3", &text, &len), 0);
    CU_ASSERT_STRING_EQUAL(text, "1e3");
    free(text);
    CU_ASSERT_EQUAL(kvp_value_text("\"a\\u0000b\"", &text, &len), 0);
    CU_ASSERT_EQUAL(len, 3);
    CU_ASSERT_PTR_NOT_NULL(kvp_check_entry("k", 1, text, len));
    free(text);
    CU_ASSERT_EQUAL(kvp_value_text("{nope", &text, &len), EINVAL);

    CU_ASSERT_PTR_NULL(kvp_check_prefix("kvp/"));
    CU_ASSERT_PTR_NOT_NULL(kvp_check_prefix(""));
    CU_ASSERT_PTR_NOT_NULL(kvp_check_prefix("result/kvp/"));
    CU_ASSERT_PTR_NOT_NULL(kvp_check_prefix("from/"));
}

/* Locks. */

/* Forks a child that takes lock 'type' over all of 'path' with a
 * descriptor of its own (flock() LOCK_EX if 'type' is HOLD_FLOCK) and
 * holds it until killed.  Returns its pid once it holds the lock. */
#define HOLD_FLOCK (-1)
static pid_t
hold_lock(const char *path, short type)
{
    int pipefd[2];
    pid_t pid;
    char c;

    CU_ASSERT_FATAL(pipe(pipefd) == 0);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (!pid) {
        struct flock fl = { .l_type = type, .l_whence = SEEK_SET };
        int fd = open(path, type == F_RDLCK ? O_RDONLY : O_RDWR);

        if (fd < 0 || (type != HOLD_FLOCK ? fcntl(fd, F_SETLKW, &fl)
                       : flock(fd, LOCK_EX))) {
            _exit(1);
        }
        if (write(pipefd[1], "x", 1) != 1) {
            _exit(1);
        }
        for (;;) {
            pause();
        }
    }
    close(pipefd[1]);
    CU_ASSERT_FATAL(read(pipefd[0], &c, 1) == 1);
    close(pipefd[0]);
    return pid;
}

static void
release_lock(pid_t pid)
{
    int status;

    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
}

static void
test_locks(void)
{
    struct scratch sc;
    char path[160];
    int fd;
    pid_t pid;

    scratch_init(&sc, "kvp");
    scratch_file(&sc, ".kvp_pool_1", path, sizeof path);
    CU_ASSERT_EQUAL(kvp_pool_lock(path, false, false, &fd), ENOENT);
    CU_ASSERT_EQUAL(kvp_pool_lock(path, true, true, &fd), 0);
    close(fd);

    /* A writer (hv_kvp_daemon's F_WRLCK) keeps out readers and writers. */
    pid = hold_lock(path, F_WRLCK);
    CU_ASSERT_EQUAL(kvp_pool_lock(path, true, false, &fd), EAGAIN);
    CU_ASSERT_EQUAL(kvp_pool_lock(path, false, false, &fd), EAGAIN);
    release_lock(pid);
    CU_ASSERT_EQUAL(kvp_pool_lock(path, true, false, &fd), 0);
    close(fd);

    /* A reader's F_RDLCK lets readers in, keeps writers out. */
    pid = hold_lock(path, F_RDLCK);
    CU_ASSERT_EQUAL(kvp_pool_lock(path, false, false, &fd), 0);
    close(fd);
    CU_ASSERT_EQUAL(kvp_pool_lock(path, true, false, &fd), EAGAIN);
    release_lock(pid);

    /* cloud-init's flock(LOCK_EX) keeps chand out too. */
    pid = hold_lock(path, HOLD_FLOCK);
    CU_ASSERT_EQUAL(kvp_pool_lock(path, true, false, &fd), EAGAIN);
    CU_ASSERT_EQUAL(kvp_pool_lock(path, false, false, &fd), EAGAIN);
    release_lock(pid);

    /* While chand holds its lock, another process cannot take one. */
    CU_ASSERT_EQUAL(kvp_pool_lock(path, true, false, &fd), 0);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (!pid) {
        struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
        int fd2 = open(path, O_RDONLY);
        _exit(fd2 >= 0 && fcntl(fd2, F_SETLK, &fl) && (errno == EAGAIN
                                                       || errno == EACCES)
              ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fd);
    scratch_destroy(&sc);
}

/* Ownership. */

static void
test_merge(void)
{
    struct kvp_pool pool;
    struct kvp_merge_counts c;
    json_t *want, *owned, *new_owned, *conflicts;
    uint8_t foreign[KVP_RECORD_SIZE];

    /* A foreign record with bytes after its NULs: kept byte for byte. */
    memset(foreign, 0xee, sizeof foreign);
    memcpy(foreign, "theirs", 7);
    memcpy(foreign + KVP_KEY_SIZE, "t", 2);
    kvp_pool_init(&pool);
    kvp_pool_parse(&pool, foreign, sizeof foreign);

    want = json_pack("{s:s, s:s}", "mine", "1", "theirs", "x");
    owned = json_object();
    new_owned = json_object();
    conflicts = json_object();
    CU_ASSERT(kvp_merge(&pool, want, owned, new_owned, conflicts, &c));
    CU_ASSERT_EQUAL(pool.n, 2);
    CU_ASSERT(!memcmp(pool.recs, foreign, sizeof foreign));
    assert_entry(&pool, 1, "mine", "1");
    CU_ASSERT_EQUAL(c.written, 1);
    CU_ASSERT(json_object_get(conflicts, "theirs") != NULL);
    CU_ASSERT_EQUAL(json_object_size(new_owned), 1);

    /* Changing mine: in place; the foreign one still first. */
    json_decref(owned);
    owned = new_owned;
    json_object_set_new(want, "mine", json_string("2"));
    new_owned = json_object();
    json_object_clear(conflicts);
    CU_ASSERT(kvp_merge(&pool, want, owned, new_owned, conflicts, &c));
    assert_entry(&pool, 1, "mine", "2");
    CU_ASSERT(!memcmp(pool.recs, foreign, sizeof foreign));

    /* Someone else changes mine: given up, not written over. */
    json_decref(owned);
    owned = new_owned;
    kvp_pool_put(&pool, 1, "mine", "changed by a tool");
    json_object_set_new(want, "mine", json_string("3"));
    new_owned = json_object();
    json_object_clear(conflicts);
    CU_ASSERT(!kvp_merge(&pool, want, owned, new_owned, conflicts, &c));
    CU_ASSERT_EQUAL(c.given_up, 1);
    assert_entry(&pool, 1, "mine", "changed by a tool");
    CU_ASSERT(json_object_get(conflicts, "mine") != NULL);
    CU_ASSERT_EQUAL(json_object_size(new_owned), 0);

    /* The tool removes it: chand writes it again. */
    json_decref(owned);
    owned = new_owned;
    kvp_pool_remove(&pool, 1);
    new_owned = json_object();
    json_object_clear(conflicts);
    CU_ASSERT(kvp_merge(&pool, want, owned, new_owned, conflicts, &c));
    assert_entry(&pool, 1, "mine", "3");

    /* Unwanted: removed; the foreign one stays. */
    json_decref(owned);
    owned = new_owned;
    json_object_clear(want);
    new_owned = json_object();
    json_object_clear(conflicts);
    CU_ASSERT(kvp_merge(&pool, want, owned, new_owned, conflicts, &c));
    CU_ASSERT_EQUAL(c.removed, 1);
    CU_ASSERT_EQUAL(pool.n, 1);
    CU_ASSERT(!memcmp(pool.recs, foreign, sizeof foreign));

    /* Either value of a write under way is recognized. */
    kvp_pool_put(&pool, 1, "mine", "old");
    json_decref(owned);
    owned = json_pack("{s:[s, s]}", "mine", "old", "new");
    CU_ASSERT(kvp_is_owned(&pool, 1, owned));
    CU_ASSERT(!kvp_is_owned(&pool, 0, owned));

    json_decref(want);
    json_decref(owned);
    json_decref(new_owned);
    json_decref(conflicts);
    kvp_pool_destroy(&pool);
}

/* The view over a real datastore. */

struct vfix {
    struct scratch sc;
    char dir[160];
    struct datastore *ds;
    struct kvp *kvp;
    uint64_t seq;
    long long skew;             /* Added to time_msec(): the view's clock. */
};

static long long
vnow(const struct vfix *f)
{
    return time_msec() + f->skew;
}

static void
vchanged(void *f_, const struct ds_change *change)
{
    struct vfix *f = f_;

    if (f->kvp) {
        kvp_record_changed(f->kvp, change);
    }
}

static void
vstart(struct vfix *f)
{
    struct kvp_config c = { .dir = f->dir, .prefix = "kvp/" };

    f->kvp = kvp_create(&c, f->ds);
    CU_ASSERT_FATAL(f->kvp != NULL);
}

static void
vfix_init(struct vfix *f)
{
    memset(f, 0, sizeof *f);
    scratch_init(&f->sc, "kvp");
    scratch_file(&f->sc, "hyperv", f->dir, sizeof f->dir);
    f->ds = open_ds(f->sc.path);
    datastore_set_change_cb(f->ds, vchanged, f);
    CU_ASSERT_FATAL(datastore_begin(f->ds) == 0);
    CU_ASSERT_FATAL(datastore_rebase(f->ds, 1, 0) == 0);
    CU_ASSERT_FATAL(datastore_commit(f->ds) == 0);
    vstart(f);
}

static void
vfix_destroy(struct vfix *f)
{
    char *cmd = xasprintf("rm -rf %s", f->sc.dir);

    kvp_destroy(f->kvp);
    datastore_close(f->ds);
    CU_ASSERT(system(cmd) == 0);
    free(cmd);
}

static void
vdeliver(struct vfix *f, const char *key, const char *value)
{
    struct ds_record r = {
        .op = value ? DS_PUT : DS_DELETE,
        .key = key,
        .value = value,
        .version = (int64_t) f->seq + 1,
    };

    CU_ASSERT_FATAL(datastore_begin(f->ds) == 0);
    CU_ASSERT_FATAL(datastore_apply(f->ds, 1, ++f->seq, &r, 1, NULL) == 0);
    CU_ASSERT_FATAL(datastore_commit(f->ds) == 0);
}

/* Runs the view until it is idle (at most a second of retries). */
static void
vrun(struct vfix *f)
{
    long long deadline = time_msec() + 1000;

    kvp_run(f->kvp, vnow(f));
    while (!kvp_is_idle(f->kvp) && time_msec() < deadline) {
        usleep(10 * 1000);
        kvp_run(f->kvp, vnow(f));
    }
}

/* Reads pool 'p' of the view's directory (empty if missing). */
static void
vread(const struct vfix *f, int p, struct kvp_pool *pool)
{
    char *path = kvp_pool_path(f->dir, p);
    int fd;

    kvp_pool_init(pool);
    if (!kvp_pool_lock(path, false, false, &fd)) {
        CU_ASSERT(kvp_pool_read(fd, pool) == 0);
        close(fd);
    }
    free(path);
}

/* Returns the published value of 'key' (malloc()ed), or NULL. */
static char *
published(struct vfix *f, const char *key)
{
    char *value = NULL;

    datastore_get_published(f->ds, key, &value, NULL, NULL, NULL);
    return value;
}

/* Changes the file of pool 'p' the way a guest tool does: under an
 * F_WRLCK, entry 'key' set to 'value' (NULL: removed). */
static void
tool_set(const struct vfix *f, int p, const char *key, const char *value)
{
    char *path = kvp_pool_path(f->dir, p);
    struct kvp_pool pool;
    int fd;

    kvp_pool_init(&pool);
    CU_ASSERT_FATAL(kvp_pool_lock(path, true, true, &fd) == 0);
    CU_ASSERT(kvp_pool_read(fd, &pool) == 0);
    long i = kvp_pool_find(&pool, key);
    if (value) {
        kvp_pool_put(&pool, i < 0 ? pool.n : (size_t) i, key, value);
    } else if (i >= 0) {
        kvp_pool_remove(&pool, i);
    }
    CU_ASSERT(kvp_pool_write(fd, &pool) == 0);
    close(fd);
    kvp_pool_destroy(&pool);
    free(path);
}

/* Lets KVP_POLL_MS pass on the view's clock, so that it looks at the
 * files, and runs it. */
static void
vpoll(struct vfix *f)
{
    f->skew += KVP_POLL_MS;
    vrun(f);
}

/* Restarts the view. */
static void
vrestart(struct vfix *f)
{
    kvp_destroy(f->kvp);
    f->kvp = NULL;
    vstart(f);
    vrun(f);
}

static void
test_view_down(void)
{
    struct vfix f;
    struct kvp_pool pool;
    struct kvp_stats st;
    char *v;

    vfix_init(&f);
    CU_ASSERT_EQUAL(mkdir(f.dir, 0755), 0);
    tool_set(&f, 0, "Foreign", "kept");
    vdeliver(&f, "kvp/0/color", "\"blue\"");
    vdeliver(&f, "kvp/0/dns", "{\"servers\": [\"10.0.0.53\"]}");
    vdeliver(&f, "kvp/3/HostInfo", "42");
    vrun(&f);
    vread(&f, 0, &pool);
    CU_ASSERT_EQUAL(pool.n, 3);
    assert_entry(&pool, 0, "Foreign", "kept");
    assert_entry(&pool, 1, "color", "blue");
    assert_entry(&pool, 2, "dns", "{\"servers\":[\"10.0.0.53\"]}");
    kvp_pool_destroy(&pool);
    vread(&f, 3, &pool);
    CU_ASSERT_EQUAL(pool.n, 1);
    assert_entry(&pool, 0, "HostInfo", "42");
    kvp_pool_destroy(&pool);

    /* Update, delete. */
    vdeliver(&f, "kvp/0/color", "\"green\"");
    vdeliver(&f, "kvp/3/HostInfo", NULL);
    vrun(&f);
    vread(&f, 0, &pool);
    assert_entry(&pool, 1, "color", "green");
    kvp_pool_destroy(&pool);
    vread(&f, 3, &pool);
    CU_ASSERT_EQUAL(pool.n, 0);
    kvp_pool_destroy(&pool);

    /* hv_kvp_daemon writes back what it read before that update: chand's
     * previous value is still chand's, and put right. */
    tool_set(&f, 0, "color", "blue");
    vpoll(&f);
    vread(&f, 0, &pool);
    assert_entry(&pool, 1, "color", "green");
    kvp_pool_destroy(&pool);
    kvp_get_stats(f.kvp, &st);
    CU_ASSERT_EQUAL(st.given_up, 0);

    /* Too big for KVP: refused, reported, whole in the store. */
    char *big = xmalloc(3003);
    big[0] = '"';
    memset(big + 1, 'x', 3000);
    strcpy(big + 3001, "\"");
    vdeliver(&f, "kvp/0/big", big);
    vdeliver(&f, "kvp/9/nopool", "1");
    vrun(&f);
    vread(&f, 0, &pool);
    CU_ASSERT_EQUAL(pool.n, 3);
    CU_ASSERT_EQUAL(kvp_pool_find(&pool, "big"), -1);
    kvp_pool_destroy(&pool);
    assert_record(f.ds, "kvp/0/big", big, (int64_t) f.seq - 1);
    v = published(&f, "result/kvp/0/big");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT(strstr(v, "\"status\":\"failed\"") != NULL);
    CU_ASSERT(strstr(v, "over KVP's limit of 2047 bytes") != NULL);
    CU_ASSERT(strstr(v, "value 3000 bytes") != NULL);
    free(v);
    v = published(&f, "result/kvp/9/nopool");
    CU_ASSERT(v && strstr(v, "not a KVP record") != NULL);
    free(v);
    kvp_get_stats(f.kvp, &st);
    CU_ASSERT_EQUAL(st.refused, 2);

    /* Fixed: shown, the result withdrawn. */
    vdeliver(&f, "kvp/0/big", "\"small now\"");
    vrun(&f);
    v = published(&f, "result/kvp/0/big");
    CU_ASSERT_PTR_NULL(v);
    free(v);
    vread(&f, 0, &pool);
    assert_entry(&pool, 3, "big", "small now");
    kvp_pool_destroy(&pool);

    /* A name a tool holds: a conflict, the tool's entry untouched. */
    tool_set(&f, 0, "taken", "the tool's");
    vdeliver(&f, "kvp/0/taken", "\"chand's\"");
    vrun(&f);
    vread(&f, 0, &pool);
    assert_entry(&pool, 4, "taken", "the tool's");
    kvp_pool_destroy(&pool);
    kvp_get_stats(f.kvp, &st);
    CU_ASSERT_EQUAL(st.conflicts, 1);
    v = published(&f, "result/kvp/0/taken");
    CU_ASSERT(v && strstr(v, "conflict") != NULL);
    free(v);

    /* The tool lets go of it: chand takes it. */
    tool_set(&f, 0, "taken", NULL);
    vpoll(&f);
    vread(&f, 0, &pool);
    assert_entry(&pool, 4, "taken", "chand's");
    kvp_pool_destroy(&pool);
    CU_ASSERT_PTR_NULL(published(&f, "result/kvp/0/taken"));

    /* Restart: the view recognizes its own entries, writes nothing. */
    vrestart(&f);
    kvp_get_stats(f.kvp, &st);
    CU_ASSERT_EQUAL(st.conflicts, 0);
    CU_ASSERT_EQUAL(st.writes, 0);
    CU_ASSERT_EQUAL(st.refused, 1);         /* kvp/9/nopool */

    /* Deleting everything leaves the foreign entry alone. */
    vdeliver(&f, "kvp/0/color", NULL);
    vdeliver(&f, "kvp/0/dns", NULL);
    vdeliver(&f, "kvp/0/big", NULL);
    vdeliver(&f, "kvp/0/taken", NULL);
    vdeliver(&f, "kvp/9/nopool", NULL);
    vrun(&f);
    vread(&f, 0, &pool);
    CU_ASSERT_EQUAL(pool.n, 1);
    assert_entry(&pool, 0, "Foreign", "kept");
    kvp_pool_destroy(&pool);
    CU_ASSERT_PTR_NULL(published(&f, "result/kvp/9/nopool"));
    free(big);
    vfix_destroy(&f);
}

static void
test_view_up(void)
{
    struct vfix f;
    struct kvp_stats st;
    char *v;

    vfix_init(&f);
    vrun(&f);
    CU_ASSERT_EQUAL(mkdir(f.dir, 0755), 0);
    tool_set(&f, KVP_POOL_GUEST, "GuestStatus", "ready");
    tool_set(&f, KVP_POOL_GUEST, "bad", "\xff\xfe");
    vdeliver(&f, "kvp/1/fromhost", "\"h\"");
    vpoll(&f);
    v = published(&f, "kvp/1/GuestStatus");
    CU_ASSERT_STRING_EQUAL(v ? v : "", "\"ready\"");
    free(v);
    CU_ASSERT_PTR_NULL(published(&f, "kvp/1/fromhost"));   /* chand's */
    CU_ASSERT_PTR_NULL(published(&f, "kvp/1/bad"));
    kvp_get_stats(f.kvp, &st);
    CU_ASSERT_EQUAL(st.publish_errors, 1);

    /* Changed, then gone: republished, withdrawn. */
    tool_set(&f, KVP_POOL_GUEST, "GuestStatus", "busy");
    vpoll(&f);
    v = published(&f, "kvp/1/GuestStatus");
    CU_ASSERT_STRING_EQUAL(v ? v : "", "\"busy\"");
    free(v);
    tool_set(&f, KVP_POOL_GUEST, "GuestStatus", NULL);
    vpoll(&f);
    CU_ASSERT_PTR_NULL(published(&f, "kvp/1/GuestStatus"));

    /* A busy lock: tried again, not waited for. */
    char *path = kvp_pool_path(f.dir, 0);
    int fd;
    CU_ASSERT_EQUAL(kvp_pool_lock(path, true, true, &fd), 0);
    close(fd);
    pid_t pid = hold_lock(path, F_WRLCK);
    vdeliver(&f, "kvp/0/later", "\"x\"");
    long long start = time_msec();
    kvp_run(f.kvp, vnow(&f));
    CU_ASSERT(time_msec() - start < 500);
    CU_ASSERT(!kvp_is_idle(f.kvp));
    kvp_get_stats(f.kvp, &st);
    CU_ASSERT(st.lock_busy >= 1);
    release_lock(pid);
    vrun(&f);
    CU_ASSERT(kvp_is_idle(f.kvp));
    struct kvp_pool pool;
    vread(&f, 0, &pool);
    assert_entry(&pool, 0, "later", "x");
    kvp_pool_destroy(&pool);
    free(path);
    vfix_destroy(&f);
}

static const struct unit_test tests[] = {
    { "golden bytes", test_golden_bytes },
    { "a pool written as hv_kvp_daemon writes it", test_reference_writer },
    { "limits and values", test_limits },
    { "fcntl locks against another process", test_locks },
    { "ownership", test_merge },
    { "view: records to pools", test_view_down },
    { "view: guest pool published", test_view_up },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("guest-kvp", tests);
}
