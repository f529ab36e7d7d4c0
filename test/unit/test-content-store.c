/* CUnit suite for lib/content-store: complete and partial content on disk,
 * checkpoints and resumption, verification, the cap and eviction.  Every
 * test works in a directory of its own under /tmp, removed at its end. */

#include <config.h>
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "content-store.h"
#include "util.h"

/* sha256("abc") and sha256(""). */
#define ABC_DIGEST \
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define EMPTY_DIGEST \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Ten bytes in chunks of 4: three chunks of 4, 4 and 2 bytes. */
static const char ten[] = "0123456789";
#define TEN_SIZE 10
#define TEN_CHUNK 4

/* Fixture helpers. */

/* Returns a new directory under /tmp (malloc'd, owned by the caller). */
static char *
make_tmpdir(void)
{
    char *dir = xstrdup("/tmp/test-content-store-XXXXXX");

    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    return dir;
}

static int
remove_entry(const char *path, const struct stat *st, int flag,
             struct FTW *ftw)
{
    return remove(path);
}

/* Removes 'dir' and everything in it, and frees 'dir'. */
static void
remove_tmpdir(char *dir)
{
    CU_ASSERT_EQUAL(nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(dir);
}

static void
write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_EQUAL(fwrite(data, 1, len, f), len);
    CU_ASSERT_EQUAL(fclose(f), 0);
}

/* Writes 'data' to DIR/NAME and returns that path (malloc'd, owned by the
 * caller). */
static char *
make_file(const char *dir, const char *name, const char *data)
{
    char *path = xasprintf("%s/%s", dir, name);

    write_file(path, data, strlen(data));
    return path;
}

static bool
exists(const char *path)
{
    return !access(path, F_OK);
}

/* Returns the length of 'path', or -1 if it has none. */
static long long
file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) ? -1 : (long long) st.st_size;
}

static void
set_mtime(const char *dir, const char *digest, time_t when)
{
    char *path = xasprintf("%s/%s", dir, digest);
    struct timespec times[2] = { { when, 0 }, { when, 0 } };

    CU_ASSERT_EQUAL(utimensat(AT_FDCWD, path, times, 0), 0);
    free(path);
}

static void
sha256_hex(const void *data, size_t len, char hex[CONTENT_DIGEST_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    CU_ASSERT_FATAL(EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL));
    CU_ASSERT_FATAL(md_len == 32);
    for (unsigned int i = 0; i < md_len; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
}

static struct content_store *
open_store(const char *dir, uint64_t cap)
{
    char *error = NULL;
    struct content_store *store = content_store_open(dir, cap, &error);

    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_FATAL(store != NULL);
    free(error);
    return store;
}

static struct content_partial *
open_partial(struct content_store *store, const char *digest, uint64_t size,
             uint32_t chunk_size)
{
    char *error = NULL;
    struct content_partial *p = content_partial_open(store, digest, size,
                                                     chunk_size, &error);

    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_FATAL(p != NULL);
    free(error);
    return p;
}

/* Writes chunk 'index' of 'ten' to 'p'. */
static int
write_ten_chunk(struct content_partial *p, uint64_t index)
{
    size_t ofs = index * TEN_CHUNK;
    size_t len = TEN_SIZE - ofs < TEN_CHUNK ? TEN_SIZE - ofs : TEN_CHUNK;

    return content_partial_write(p, index, ten + ofs, len);
}

/* The durable bitmap of 'p' as one byte, checking that it has one. */
static uint8_t
bitmap_byte(const struct content_partial *p)
{
    size_t n_bytes = 0;
    const uint8_t *bitmap = content_partial_bitmap(p, &n_bytes);

    CU_ASSERT_EQUAL_FATAL(n_bytes, 1);
    return bitmap[0];
}

static int
checkpoint_byte(struct content_partial *p, uint8_t byte)
{
    return content_partial_checkpoint(p, &byte, 1);
}

static void
free_digests(char **digests)
{
    if (digests) {
        for (char **d = digests; *d; d++) {
            free(*d);
        }
        free(digests);
    }
}

static size_t
count_digests(char **digests)
{
    size_t n = 0;

    while (digests && digests[n]) {
        n++;
    }
    return n;
}

/* Counts the entries of 'dir' other than "." and "..". */
static int
count_entries(const char *dir)
{
    char *cmd = xasprintf("ls -A '%s' | wc -l", dir);
    FILE *f = popen(cmd, "r");
    int n = -1;

    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_EQUAL(fscanf(f, "%d", &n), 1);
    pclose(f);
    free(cmd);
    return n;
}

/* Counts the entries of DIR/partial. */
static int
count_partial(const char *dir)
{
    char *partial = xasprintf("%s/partial", dir);
    int n = count_entries(partial);

    free(partial);
    return n;
}

/* in_use callbacks. */

static bool
nothing_in_use(const char *digest, void *aux)
{
    return false;
}

static bool
all_in_use(const char *digest, void *aux)
{
    return true;
}

/* 'aux' is a digest that is in use. */
static bool
one_in_use(const char *digest, void *aux)
{
    return !strcmp(digest, aux);
}

/* Tests. */

static void
test_open_creates_dirs(void)
{
    char *tmp = make_tmpdir();
    char *dir = xasprintf("%s/store", tmp);
    char *partial = xasprintf("%s/store/partial", tmp);
    struct content_store *store;
    char *error = NULL;
    struct stat st;

    CU_ASSERT_FALSE(exists(dir));
    store = open_store(dir, 1234);
    CU_ASSERT_EQUAL(stat(dir, &st), 0);
    CU_ASSERT_TRUE(S_ISDIR(st.st_mode));
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);
    CU_ASSERT_EQUAL(stat(partial, &st), 0);
    CU_ASSERT_TRUE(S_ISDIR(st.st_mode));
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);
    CU_ASSERT_STRING_EQUAL(content_store_dir(store), dir);
    CU_ASSERT_EQUAL(content_store_usage(store), 0);
    CU_ASSERT_EQUAL(content_store_cap(store), 1234);
    content_store_close(store);

    /* Opening again finds them. */
    store = open_store(dir, 0);
    CU_ASSERT_EQUAL(content_store_cap(store), 0);
    content_store_close(store);

    /* A store that cannot be made: its parent is missing. */
    free(dir);
    dir = xasprintf("%s/missing/store", tmp);
    CU_ASSERT_PTR_NULL(content_store_open(dir, 0, &error));
    CU_ASSERT_PTR_NOT_NULL(error);
    CU_ASSERT_PTR_NOT_NULL(error ? strstr(error, dir) : NULL);
    free(error);

    free(dir);
    free(partial);
    remove_tmpdir(tmp);
}

static void
test_add_file_and_lookup(void)
{
    char *tmp = make_tmpdir();
    char *dir = xasprintf("%s/store", tmp);
    char *src = make_file(tmp, "src", "abc");
    char digest[CONTENT_DIGEST_LEN + 1];
    struct content_store *store = open_store(dir, 0);
    char *error = NULL;
    uint64_t size = 0;
    char *path, *data, *expected;
    size_t len;
    struct stat st;

    CU_ASSERT_EQUAL(content_hash_file(src, digest, &size), 0);
    CU_ASSERT_STRING_EQUAL(digest, ABC_DIGEST);
    CU_ASSERT_EQUAL(size, 3);

    CU_ASSERT_PTR_NULL(content_store_lookup(store, ABC_DIGEST));
    memset(digest, 'x', sizeof digest);
    size = 0;
    CU_ASSERT_EQUAL(content_store_add_file(store, src, nothing_in_use, NULL,
                                           digest, &size, &error), 0);
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_STRING_EQUAL(digest, ABC_DIGEST);
    CU_ASSERT_EQUAL(size, 3);
    CU_ASSERT_EQUAL(content_store_usage(store), 3);

    path = content_store_lookup(store, ABC_DIGEST);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    expected = xasprintf("%s/%s", dir, ABC_DIGEST);
    CU_ASSERT_STRING_EQUAL(path, expected);
    free(expected);
    data = read_file(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    CU_ASSERT_EQUAL(len, 3);
    CU_ASSERT_EQUAL(memcmp(data, "abc", 3), 0);
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0640);
    free(data);

    /* A copy, not a link: changing the source changes nothing. */
    write_file(src, "abd", 3);
    data = read_file(path, &len);
    CU_ASSERT_EQUAL(memcmp(data, "abc", 3), 0);
    free(data);
    write_file(src, "abc", 3);

    /* Adding it again counts it once. */
    CU_ASSERT_EQUAL(content_store_add_file(store, src, nothing_in_use, NULL,
                                           digest, &size, &error), 0);
    CU_ASSERT_STRING_EQUAL(digest, ABC_DIGEST);
    CU_ASSERT_EQUAL(content_store_usage(store), 3);
    /* Only the one file (and partial/): no temporary file left. */
    CU_ASSERT_EQUAL(count_entries(dir), 2);

    /* Lookups of what is not there, or not a digest. */
    CU_ASSERT_PTR_NULL(content_store_lookup(store, EMPTY_DIGEST));
    CU_ASSERT_PTR_NULL(content_store_lookup(store, "abc"));
    CU_ASSERT_PTR_NULL(content_store_lookup(store, "partial"));

    /* A missing source. */
    free(src);
    src = xasprintf("%s/missing", tmp);
    CU_ASSERT_EQUAL(content_store_add_file(store, src, nothing_in_use, NULL,
                                           digest, &size, &error), ENOENT);
    CU_ASSERT_PTR_NOT_NULL(error ? strstr(error, src) : NULL);
    free(error);
    error = NULL;

    /* Removal. */
    content_store_remove(store, ABC_DIGEST);
    CU_ASSERT_PTR_NULL(content_store_lookup(store, ABC_DIGEST));
    CU_ASSERT_FALSE(exists(path));
    CU_ASSERT_EQUAL(content_store_usage(store), 0);
    content_store_remove(store, ABC_DIGEST);
    CU_ASSERT_EQUAL(content_store_usage(store), 0);

    content_store_close(store);
    free(path);
    free(src);
    free(dir);
    remove_tmpdir(tmp);
}

/* A partial resumes exactly what its last checkpoint made durable, across
 * closing the partial and the store, and then finishes. */
static void
test_partial_resume(void)
{
    char *tmp = make_tmpdir();
    char *dir = xasprintf("%s/store", tmp);
    char digest[CONTENT_DIGEST_LEN + 1];
    struct content_store *store = open_store(dir, 0);
    struct content_partial *p;
    char *ppath, *mpath, *path, *data, *error = NULL;
    size_t len;

    sha256_hex(ten, TEN_SIZE, digest);
    ppath = xasprintf("%s/partial/%s", dir, digest);
    mpath = xasprintf("%s.map", ppath);

    p = open_partial(store, digest, TEN_SIZE, TEN_CHUNK);
    CU_ASSERT_EQUAL(bitmap_byte(p), 0);
    CU_ASSERT_EQUAL(content_partial_durable(p), 0);
    CU_ASSERT_TRUE(exists(ppath));
    CU_ASSERT_EQUAL(content_store_usage(store), TEN_SIZE);

    /* The same partial cannot be open twice. */
    CU_ASSERT_PTR_NULL(content_partial_open(store, digest, TEN_SIZE,
                                            TEN_CHUNK, &error));
    CU_ASSERT_PTR_NOT_NULL(error);
    free(error);
    error = NULL;

    CU_ASSERT_EQUAL(write_ten_chunk(p, 0), 0);
    /* A chunk not written cannot be made durable, nor a bitmap of the
     * wrong length. */
    CU_ASSERT_EQUAL(checkpoint_byte(p, 0x03), EINVAL);
    CU_ASSERT_EQUAL(content_partial_checkpoint(p, (const uint8_t *) "\1\0",
                                               2), EINVAL);
    CU_ASSERT_FALSE(exists(mpath));
    CU_ASSERT_EQUAL(checkpoint_byte(p, 0x01), 0);
    CU_ASSERT_TRUE(exists(mpath));
    CU_ASSERT_EQUAL(bitmap_byte(p), 0x01);
    CU_ASSERT_EQUAL(content_partial_durable(p), 1);
    /* Chunk 2 is written but never checkpointed. */
    CU_ASSERT_EQUAL(write_ten_chunk(p, 2), 0);
    content_partial_close(p);
    CU_ASSERT_TRUE(exists(ppath));
    CU_ASSERT_TRUE(exists(mpath));
    CU_ASSERT_EQUAL(content_store_usage(store), TEN_SIZE);
    content_store_close(store);

    store = open_store(dir, 0);
    CU_ASSERT_EQUAL(content_store_usage(store), TEN_SIZE);
    p = open_partial(store, digest, TEN_SIZE, TEN_CHUNK);
    CU_ASSERT_EQUAL(bitmap_byte(p), 0x01);
    CU_ASSERT_EQUAL(content_partial_durable(p), 1);
    CU_ASSERT_EQUAL(content_store_usage(store), TEN_SIZE);

    /* A second checkpoint, then closing without one more. */
    CU_ASSERT_EQUAL(write_ten_chunk(p, 2), 0);
    CU_ASSERT_EQUAL(checkpoint_byte(p, 0x05), 0);
    CU_ASSERT_EQUAL(bitmap_byte(p), 0x05);
    CU_ASSERT_EQUAL(content_partial_durable(p), 2);
    CU_ASSERT_EQUAL(write_ten_chunk(p, 1), 0);
    content_partial_close(p);
    p = open_partial(store, digest, TEN_SIZE, TEN_CHUNK);
    CU_ASSERT_EQUAL(bitmap_byte(p), 0x05);

    /* Finish. */
    CU_ASSERT_EQUAL(write_ten_chunk(p, 1), 0);
    CU_ASSERT_EQUAL(content_partial_finish(p, &error), 0);
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_FALSE(exists(ppath));
    CU_ASSERT_FALSE(exists(mpath));
    CU_ASSERT_EQUAL(count_partial(dir), 0);
    path = content_store_lookup(store, digest);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    data = read_file(path, &len);
    CU_ASSERT_EQUAL(len, TEN_SIZE);
    CU_ASSERT_EQUAL(memcmp(data, ten, TEN_SIZE), 0);
    CU_ASSERT_EQUAL(content_store_usage(store), TEN_SIZE);
    free(data);
    free(path);
    content_store_close(store);

    store = open_store(dir, 0);
    CU_ASSERT_EQUAL(content_store_usage(store), TEN_SIZE);
    content_store_close(store);

    free(ppath);
    free(mpath);
    free(dir);
    remove_tmpdir(tmp);
}

/* Makes a partial of 'ten' in 'store' with chunks 0 and 1 durable and
 * closes it. */
static void
make_checkpointed(struct content_store *store, const char *digest)
{
    struct content_partial *p = open_partial(store, digest, TEN_SIZE,
                                             TEN_CHUNK);

    CU_ASSERT_EQUAL(write_ten_chunk(p, 0), 0);
    CU_ASSERT_EQUAL(write_ten_chunk(p, 1), 0);
    CU_ASSERT_EQUAL(checkpoint_byte(p, 0x03), 0);
    content_partial_close(p);
}

/* Flips one bit of byte 'ofs' of the file 'path'. */
static void
flip_byte(const char *path, size_t ofs)
{
    size_t len;
    char *data = read_file(path, &len);

    CU_ASSERT_FATAL(data != NULL && ofs < len);
    data[ofs] ^= 0x10;
    write_file(path, data, len);
    free(data);
}

/* A damaged map starts the partial afresh, wherever the damage is. */
static void
test_partial_damaged_map(void)
{
    static const size_t offsets[] = { 0, 7, 15, 19, 23, 30, 56 };
    char *tmp = make_tmpdir();
    char *dir = xasprintf("%s/store", tmp);
    char digest[CONTENT_DIGEST_LEN + 1];
    struct content_store *store = open_store(dir, 0);
    char *ppath, *mpath;

    sha256_hex(ten, TEN_SIZE, digest);
    ppath = xasprintf("%s/partial/%s", dir, digest);
    mpath = xasprintf("%s.map", ppath);

    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        struct content_partial *p;

        make_checkpointed(store, digest);
        CU_ASSERT_EQUAL(file_size(mpath), 57);
        CU_ASSERT_EQUAL(file_size(ppath), 8);

        /* Undamaged, it resumes. */
        p = open_partial(store, digest, TEN_SIZE, TEN_CHUNK);
        CU_ASSERT_EQUAL(bitmap_byte(p), 0x03);
        content_partial_close(p);

        /* Damaged behind the store's back: a store opened now counts the
         * partial's file, no longer its map. */
        flip_byte(mpath, offsets[i]);
        content_store_close(store);
        store = open_store(dir, 0);
        CU_ASSERT_EQUAL(content_store_usage(store), 8);
        p = open_partial(store, digest, TEN_SIZE, TEN_CHUNK);
        CU_ASSERT_EQUAL(bitmap_byte(p), 0);
        CU_ASSERT_EQUAL(content_partial_durable(p), 0);
        CU_ASSERT_EQUAL(file_size(ppath), 0);
        CU_ASSERT_FALSE(exists(mpath));
        CU_ASSERT_EQUAL(content_store_usage(store), TEN_SIZE);
        content_partial_abort(p);
        CU_ASSERT_FALSE(exists(ppath));
        CU_ASSERT_EQUAL(content_store_usage(store), 0);
    }

    /* A truncated map, and one with a byte too many. */
    make_checkpointed(store, digest);
    CU_ASSERT_EQUAL(truncate(mpath, 56), 0);
    struct content_partial *p = open_partial(store, digest, TEN_SIZE,
                                             TEN_CHUNK);
    CU_ASSERT_EQUAL(bitmap_byte(p), 0);
    content_partial_close(p);
    make_checkpointed(store, digest);
    CU_ASSERT_EQUAL(truncate(mpath, 58), 0);
    p = open_partial(store, digest, TEN_SIZE, TEN_CHUNK);
    CU_ASSERT_EQUAL(bitmap_byte(p), 0);
    content_partial_close(p);

    /* A map naming chunks its file does not hold. */
    make_checkpointed(store, digest);
    CU_ASSERT_EQUAL(truncate(ppath, 7), 0);
    p = open_partial(store, digest, TEN_SIZE, TEN_CHUNK);
    CU_ASSERT_EQUAL(bitmap_byte(p), 0);
    content_partial_abort(p);

    content_store_close(store);
    free(ppath);
    free(mpath);
    free(dir);
    remove_tmpdir(tmp);
}

/* A map of another size or chunk size starts the partial afresh. */
static void
test_partial_other_map(void)
{
    char *tmp = make_tmpdir();
    char *dir = xasprintf("%s/store", tmp);
    char digest[CONTENT_DIGEST_LEN + 1];
    struct content_store *store = open_store(dir, 0);
    struct content_partial *p;
    char *ppath, *mpath;
    size_t n_bytes;

    sha256_hex(ten, TEN_SIZE, digest);
    ppath = xasprintf("%s/partial/%s", dir, digest);
    mpath = xasprintf("%s.map", ppath);

    /* Another chunk size. */
    make_checkpointed(store, digest);
    p = open_partial(store, digest, TEN_SIZE, 2);
    content_partial_bitmap(p, &n_bytes);
    CU_ASSERT_EQUAL(n_bytes, 1);
    CU_ASSERT_EQUAL(bitmap_byte(p), 0);
    CU_ASSERT_EQUAL(file_size(ppath), 0);
    CU_ASSERT_FALSE(exists(mpath));
    content_partial_abort(p);

    /* Another size. */
    make_checkpointed(store, digest);
    p = open_partial(store, digest, TEN_SIZE + 1, TEN_CHUNK);
    CU_ASSERT_EQUAL(bitmap_byte(p), 0);
    CU_ASSERT_EQUAL(file_size(ppath), 0);
    CU_ASSERT_EQUAL(content_store_usage(store), TEN_SIZE + 1);
    content_partial_abort(p);
    CU_ASSERT_EQUAL(content_store_usage(store), 0);

    /* A map with many chunks: 20 chunks of 1 byte, 3 bitmap bytes. */
    p = open_partial(store, digest, 20, 1);
    content_partial_bitmap(p, &n_bytes);
    CU_ASSERT_EQUAL(n_bytes, 3);
    for (uint64_t i = 0; i < 20; i++) {
        CU_ASSERT_EQUAL(content_partial_write(p, i, "x", 1), 0);
    }
    CU_ASSERT_EQUAL(content_partial_checkpoint(
                        p, (const uint8_t *) "\x81\x00\xff", 3), 0);
    content_partial_close(p);
    CU_ASSERT_EQUAL(file_size(mpath), 56 + 3);
    p = open_partial(store, digest, 20, 1);
    const uint8_t *bitmap = content_partial_bitmap(p, &n_bytes);
    CU_ASSERT_EQUAL(n_bytes, 3);
    /* The bits past chunk 19 are not chunks, and are dropped. */
    CU_ASSERT_EQUAL(bitmap[0], 0x81);
    CU_ASSERT_EQUAL(bitmap[1], 0x00);
    CU_ASSERT_EQUAL(bitmap[2], 0x0f);
    CU_ASSERT_EQUAL(content_partial_durable(p), 6);
    content_partial_abort(p);
    CU_ASSERT_EQUAL(count_partial(dir), 0);

    content_store_close(store);
    free(ppath);
    free(mpath);
    free(dir);
    remove_tmpdir(tmp);
}

/* Content that does not match its digest is removed. */
static void
test_partial_bad_content(void)
{
    char *tmp = make_tmpdir();
    char *dir = xasprintf("%s/store", tmp);
    char digest[CONTENT_DIGEST_LEN + 1];
    struct content_store *store = open_store(dir, 0);
    struct content_partial *p;
    char *error = NULL;
    char prefix[16];

    sha256_hex(ten, TEN_SIZE, digest);

    /* Wrong bytes. */
    p = open_partial(store, digest, TEN_SIZE, TEN_CHUNK);
    CU_ASSERT_EQUAL(write_ten_chunk(p, 0), 0);
    CU_ASSERT_EQUAL(content_partial_write(p, 1, "4567", 4), 0);
    CU_ASSERT_EQUAL(content_partial_write(p, 2, "8!", 2), 0);
    CU_ASSERT_EQUAL(checkpoint_byte(p, 0x07), 0);
    CU_ASSERT_EQUAL(content_partial_finish(p, &error), EBADMSG);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error,
                                  "content does not match its digest"));
    snprintf(prefix, sizeof prefix, "%.12s...", digest);
    CU_ASSERT_PTR_NOT_NULL(strstr(error, prefix));
    free(error);
    error = NULL;
    CU_ASSERT_EQUAL(count_partial(dir), 0);
    CU_ASSERT_PTR_NULL(content_store_lookup(store, digest));
    CU_ASSERT_EQUAL(content_store_usage(store), 0);

    /* A chunk never written: the content is too short. */
    p = open_partial(store, digest, TEN_SIZE, TEN_CHUNK);
    CU_ASSERT_EQUAL(write_ten_chunk(p, 0), 0);
    CU_ASSERT_EQUAL(write_ten_chunk(p, 1), 0);
    CU_ASSERT_EQUAL(content_partial_finish(p, &error), EBADMSG);
    free(error);
    error = NULL;
    CU_ASSERT_EQUAL(count_partial(dir), 0);
    CU_ASSERT_PTR_NULL(content_store_lookup(store, digest));
    CU_ASSERT_EQUAL(content_store_usage(store), 0);

    /* The right bytes under another size. */
    p = open_partial(store, digest, TEN_SIZE + 2, TEN_CHUNK);
    CU_ASSERT_EQUAL(write_ten_chunk(p, 0), 0);
    CU_ASSERT_EQUAL(write_ten_chunk(p, 1), 0);
    CU_ASSERT_EQUAL(content_partial_write(p, 2, "89", 2), EINVAL);
    CU_ASSERT_EQUAL(content_partial_finish(p, &error), EBADMSG);
    free(error);
    CU_ASSERT_EQUAL(count_partial(dir), 0);
    CU_ASSERT_PTR_NULL(content_store_lookup(store, digest));
    CU_ASSERT_EQUAL(content_store_usage(store), 0);

    content_store_close(store);
    free(dir);
    remove_tmpdir(tmp);
}

static void
test_partial_bad_write(void)
{
    char *tmp = make_tmpdir();
    char *dir = xasprintf("%s/store", tmp);
    char digest[CONTENT_DIGEST_LEN + 1];
    struct content_store *store = open_store(dir, 0);
    struct content_partial *p;
    char *error = NULL, *ppath;

    sha256_hex(ten, TEN_SIZE, digest);
    p = open_partial(store, digest, TEN_SIZE, TEN_CHUNK);
    CU_ASSERT_EQUAL(content_partial_write(p, 3, "xx", 2), EINVAL);
    CU_ASSERT_EQUAL(content_partial_write(p, UINT64_MAX, "xx", 2), EINVAL);
    CU_ASSERT_EQUAL(content_partial_write(p, 0, "012", 3), EINVAL);
    CU_ASSERT_EQUAL(content_partial_write(p, 0, "01234", 5), EINVAL);
    CU_ASSERT_EQUAL(content_partial_write(p, 2, "89xx", 4), EINVAL);
    CU_ASSERT_EQUAL(content_partial_write(p, 2, "8", 1), EINVAL);
    /* Nothing was written, so nothing can be made durable. */
    CU_ASSERT_EQUAL(checkpoint_byte(p, 0x04), EINVAL);
    ppath = xasprintf("%s/partial/%s", dir, digest);
    CU_ASSERT_EQUAL(file_size(ppath), 0);
    free(ppath);
    content_partial_abort(p);

    /* Invalid partials. */
    CU_ASSERT_PTR_NULL(content_partial_open(store, "abc", 10, 4, &error));
    CU_ASSERT_PTR_NOT_NULL(error);
    free(error);
    error = NULL;
    CU_ASSERT_PTR_NULL(content_partial_open(store, digest, 10, 0, &error));
    CU_ASSERT_PTR_NOT_NULL(error);
    free(error);
    CU_ASSERT_EQUAL(content_store_usage(store), 0);

    content_store_close(store);
    free(dir);
    remove_tmpdir(tmp);
}

/* An empty object is one empty chunk. */
static void
test_empty_object(void)
{
    char *tmp = make_tmpdir();
    char *dir = xasprintf("%s/store", tmp);
    char digest[CONTENT_DIGEST_LEN + 1];
    struct content_store *store = open_store(dir, 0);
    struct content_partial *p;
    char *path, *src, *error = NULL;
    uint64_t size = 99;

    p = open_partial(store, EMPTY_DIGEST, 0, TEN_CHUNK);
    CU_ASSERT_EQUAL(bitmap_byte(p), 0);
    CU_ASSERT_EQUAL(content_partial_write(p, 1, "", 0), EINVAL);
    CU_ASSERT_EQUAL(content_partial_write(p, 0, "x", 1), EINVAL);
    CU_ASSERT_EQUAL(content_partial_write(p, 0, "", 0), 0);
    CU_ASSERT_EQUAL(checkpoint_byte(p, 0x01), 0);
    content_partial_close(p);
    p = open_partial(store, EMPTY_DIGEST, 0, TEN_CHUNK);
    CU_ASSERT_EQUAL(bitmap_byte(p), 0x01);
    CU_ASSERT_EQUAL(content_partial_durable(p), 1);
    CU_ASSERT_EQUAL(content_partial_finish(p, &error), 0);
    CU_ASSERT_PTR_NULL(error);
    path = content_store_lookup(store, EMPTY_DIGEST);
    CU_ASSERT_PTR_NOT_NULL(path);
    CU_ASSERT_EQUAL(path ? file_size(path) : -1, 0);
    CU_ASSERT_EQUAL(count_partial(dir), 0);
    CU_ASSERT_EQUAL(content_store_usage(store), 0);
    free(path);

    /* And through add_file(). */
    content_store_remove(store, EMPTY_DIGEST);
    CU_ASSERT_PTR_NULL(content_store_lookup(store, EMPTY_DIGEST));
    src = make_file(tmp, "empty", "");
    CU_ASSERT_EQUAL(content_store_add_file(store, src, nothing_in_use, NULL,
                                           digest, &size, &error), 0);
    CU_ASSERT_STRING_EQUAL(digest, EMPTY_DIGEST);
    CU_ASSERT_EQUAL(size, 0);
    path = content_store_lookup(store, EMPTY_DIGEST);
    CU_ASSERT_PTR_NOT_NULL(path);
    free(path);
    free(src);

    content_store_close(store);
    free(dir);
    remove_tmpdir(tmp);
}

/* Adds a file holding 'data' to 'store' and stores its digest in
 * 'digest'. */
static void
add_data(struct content_store *store, const char *tmp, const char *data,
         char digest[CONTENT_DIGEST_LEN + 1])
{
    char *src = make_file(tmp, "src", data);
    char *error = NULL;
    uint64_t size;

    CU_ASSERT_EQUAL(content_store_add_file(store, src, nothing_in_use, NULL,
                                           digest, &size, &error), 0);
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_EQUAL(size, strlen(data));
    free(error);
    free(src);
}

static bool
has(const struct content_store *store, const char *digest)
{
    char *path = content_store_lookup(store, digest);

    free(path);
    return path != NULL;
}

static void
test_reserve(void)
{
    char *tmp = make_tmpdir();
    char *dir = xasprintf("%s/store", tmp);
    char a[CONTENT_DIGEST_LEN + 1], b[CONTENT_DIGEST_LEN + 1];
    char c[CONTENT_DIGEST_LEN + 1], d[CONTENT_DIGEST_LEN + 1];
    struct content_store *store = open_store(dir, 30);
    char **evicted = NULL;
    char *error = NULL, *src;
    uint64_t size;

    add_data(store, tmp, "aaaaaaaaaa", a);
    add_data(store, tmp, "bbbbbbbbbb", b);
    add_data(store, tmp, "cccccccccc", c);
    CU_ASSERT_EQUAL(content_store_usage(store), 30);
    set_mtime(dir, a, 1000);
    set_mtime(dir, b, 2000);
    set_mtime(dir, c, 3000);
    content_store_touch(store, a);      /* Now a is the newest. */

    /* Room without evicting. */
    CU_ASSERT_EQUAL(content_store_reserve(store, 0, nothing_in_use, NULL,
                                          &evicted, &error), 0);
    CU_ASSERT_PTR_NOT_NULL(evicted);
    CU_ASSERT_EQUAL(count_digests(evicted), 0);

    /* The least recently used goes: b. */
    CU_ASSERT_EQUAL(content_store_reserve(store, 10, nothing_in_use, NULL,
                                          &evicted, &error), 0);
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_EQUAL_FATAL(count_digests(evicted), 1);
    CU_ASSERT_STRING_EQUAL(evicted[0], b);
    CU_ASSERT_FALSE(has(store, b));
    CU_ASSERT_TRUE(has(store, a));
    CU_ASSERT_TRUE(has(store, c));
    CU_ASSERT_EQUAL(content_store_usage(store), 20);

    /* Everything in use: ENOSPC, and nothing evicted. */
    CU_ASSERT_EQUAL(content_store_reserve(store, 20, all_in_use, NULL,
                                          &evicted, &error), ENOSPC);
    CU_ASSERT_PTR_NOT_NULL(error);
    free(error);
    error = NULL;
    CU_ASSERT_EQUAL(count_digests(evicted), 1);
    CU_ASSERT_TRUE(has(store, a));
    CU_ASSERT_TRUE(has(store, c));
    CU_ASSERT_EQUAL(content_store_usage(store), 20);

    /* Not enough free to evict: nothing evicted either. */
    CU_ASSERT_EQUAL(content_store_reserve(store, 30, one_in_use, a,
                                          &evicted, &error), ENOSPC);
    free(error);
    error = NULL;
    CU_ASSERT_TRUE(has(store, c));

    /* c is older than a but in use: a goes, appended to 'evicted'. */
    CU_ASSERT_EQUAL(content_store_reserve(store, 20, one_in_use, c,
                                          &evicted, &error), 0);
    CU_ASSERT_EQUAL_FATAL(count_digests(evicted), 2);
    CU_ASSERT_STRING_EQUAL(evicted[0], b);
    CU_ASSERT_STRING_EQUAL(evicted[1], a);
    CU_ASSERT_FALSE(has(store, a));
    CU_ASSERT_TRUE(has(store, c));
    CU_ASSERT_EQUAL(content_store_usage(store), 10);
    free_digests(evicted);
    evicted = NULL;

    /* More than the cap. */
    CU_ASSERT_EQUAL(content_store_reserve(store, 31, nothing_in_use, NULL,
                                          NULL, &error), ENOSPC);
    CU_ASSERT_PTR_NOT_NULL(error);
    free(error);
    error = NULL;
    CU_ASSERT_TRUE(has(store, c));

    /* A partial counts its whole size at once. */
    struct content_partial *p = open_partial(store, a, 10, 4);
    CU_ASSERT_EQUAL(content_store_usage(store), 20);

    /* add_file() makes room, but not from content in use. */
    src = make_file(tmp, "src", "dddddddddddd");
    CU_ASSERT_EQUAL(content_store_add_file(store, src, all_in_use, NULL,
                                           d, &size, &error), ENOSPC);
    CU_ASSERT_PTR_NOT_NULL(error);
    free(error);
    error = NULL;
    CU_ASSERT_FALSE(has(store, d));
    CU_ASSERT_EQUAL(count_entries(dir), 2);     /* c, partial/. */
    CU_ASSERT_EQUAL(content_store_usage(store), 20);
    CU_ASSERT_EQUAL(content_store_add_file(store, src, nothing_in_use, NULL,
                                           d, &size, &error), 0);
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_TRUE(has(store, d));
    CU_ASSERT_FALSE(has(store, c));
    CU_ASSERT_EQUAL(content_store_usage(store), 22);
    free(src);
    content_partial_abort(p);
    CU_ASSERT_EQUAL(content_store_usage(store), 12);
    content_store_close(store);

    /* No cap: any size fits. */
    store = open_store(dir, 0);
    CU_ASSERT_EQUAL(content_store_reserve(store, UINT64_MAX, all_in_use,
                                          NULL, NULL, &error), 0);
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_TRUE(has(store, d));
    content_store_close(store);

    free(dir);
    remove_tmpdir(tmp);
}

/* What the store counts, as it changes and as a reopened store finds it. */
static void
test_usage(void)
{
    char *tmp = make_tmpdir();
    char *dir = xasprintf("%s/store", tmp);
    char a[CONTENT_DIGEST_LEN + 1], ten_digest[CONTENT_DIGEST_LEN + 1];
    char *other = xasprintf("%s/partial/%s", dir, EMPTY_DIGEST);
    struct content_store *store = open_store(dir, 0);
    struct content_partial *p;
    char *junk;

    add_data(store, tmp, "0123456789abcdefghij", a);       /* 20 bytes. */
    CU_ASSERT_EQUAL(content_store_usage(store), 20);

    /* Not content: left alone and not counted. */
    junk = make_file(dir, "notes.txt", "not a digest");
    free(junk);
    junk = make_file(dir, "ABC", "upper case");
    free(junk);
    junk = xasprintf("%s/%.63s", dir, EMPTY_DIGEST);
    write_file(junk, "short", 5);
    free(junk);
    junk = xasprintf("%s/partial/%s.map.tmp", dir, EMPTY_DIGEST);
    write_file(junk, "tmp", 3);
    free(junk);
    junk = xasprintf("%s/%sx", dir, EMPTY_DIGEST);
    write_file(junk, "long", 4);
    free(junk);

    /* A checkpointed partial counts its size (10), one never checkpointed
     * the bytes it has on disk (here 4 of 100, plus 2 at offset 8: 10). */
    sha256_hex(ten, TEN_SIZE, ten_digest);
    make_checkpointed(store, ten_digest);
    CU_ASSERT_EQUAL(content_store_usage(store), 30);
    p = open_partial(store, EMPTY_DIGEST, 100, 4);
    CU_ASSERT_EQUAL(content_store_usage(store), 130);
    CU_ASSERT_EQUAL(content_partial_write(p, 0, "wxyz", 4), 0);
    CU_ASSERT_EQUAL(content_partial_write(p, 2, "wxyz", 4), 0);
    content_partial_close(p);
    CU_ASSERT_EQUAL(file_size(other), 12);
    CU_ASSERT_EQUAL(content_store_usage(store), 42);
    content_store_close(store);

    store = open_store(dir, 0);
    CU_ASSERT_EQUAL(content_store_usage(store), 42);

    /* Reopening a partial counts its size in place of what it counted. */
    p = open_partial(store, EMPTY_DIGEST, 100, 4);
    CU_ASSERT_EQUAL(content_store_usage(store), 130);
    content_partial_abort(p);
    CU_ASSERT_EQUAL(content_store_usage(store), 30);
    p = open_partial(store, ten_digest, TEN_SIZE, TEN_CHUNK);
    CU_ASSERT_EQUAL(content_store_usage(store), 30);
    CU_ASSERT_EQUAL(write_ten_chunk(p, 2), 0);
    CU_ASSERT_EQUAL(content_partial_finish(p, NULL), 0);
    CU_ASSERT_EQUAL(content_store_usage(store), 30);
    content_store_remove(store, a);
    CU_ASSERT_EQUAL(content_store_usage(store), 10);
    content_store_close(store);

    store = open_store(dir, 0);
    CU_ASSERT_EQUAL(content_store_usage(store), 10);
    content_store_close(store);

    /* The files that are not content are still there. */
    junk = xasprintf("%s/notes.txt", dir);
    CU_ASSERT_TRUE(exists(junk));
    free(junk);

    free(other);
    free(dir);
    remove_tmpdir(tmp);
}

static const struct unit_test tests[] = {
    { "open creates its directories", test_open_creates_dirs },
    { "add_file and lookup", test_add_file_and_lookup },
    { "partial resumes its checkpoint", test_partial_resume },
    { "damaged map starts afresh", test_partial_damaged_map },
    { "other map starts afresh", test_partial_other_map },
    { "content not matching its digest", test_partial_bad_content },
    { "bad chunk writes", test_partial_bad_write },
    { "empty object", test_empty_object },
    { "reserve and eviction", test_reserve },
    { "usage", test_usage },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("content-store", tests);
}
