/* CUnit suite for lib/util: the allocators, xasprintf(), read_file() and
 * hexit_value(). */

#include <config.h>
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* A zero-size allocation still gives a distinct block that can be freed. */
static void
test_zero_sizes(void)
{
    void *a = xmalloc(0), *b = xcalloc(0, 8), *c = xrealloc(NULL, 0);
    void *d = xmemdup(NULL, 0);

    CU_ASSERT_PTR_NOT_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(b);
    CU_ASSERT_PTR_NOT_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(d);
    CU_ASSERT_PTR_NOT_EQUAL(a, b);
    free(a);
    free(b);
    free(c);
    free(d);
}

static void
test_zeroed(void)
{
    unsigned char *p = xzalloc(100);
    unsigned int *q = xcalloc(10, sizeof *q);
    size_t i;

    for (i = 0; i < 100; i++) {
        CU_ASSERT_EQUAL(p[i], 0);
    }
    for (i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL(q[i], 0);
    }
    free(p);
    free(q);
}

static void
test_realloc_keeps(void)
{
    char *p = xstrdup("abc");

    p = xrealloc(p, 100000);
    CU_ASSERT_STRING_EQUAL(p, "abc");
    p = xrealloc(p, 4);
    CU_ASSERT_STRING_EQUAL(p, "abc");
    free(p);
}

static void
test_dups(void)
{
    const char bytes[] = { 1, 0, 2, 0 };
    char *s = xstrdup("hello");
    char *m = xmemdup(bytes, sizeof bytes);

    CU_ASSERT_STRING_EQUAL(s, "hello");
    CU_ASSERT_EQUAL(memcmp(m, bytes, sizeof bytes), 0);
    free(s);
    free(m);
}

static void
test_asprintf(void)
{
    char *s = xasprintf("%s-%d-%05.1f", "x", 42, 2.5);
    char big[5000];
    char *t;

    CU_ASSERT_STRING_EQUAL(s, "x-42-002.5");
    free(s);
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    t = xasprintf("<%s>", big);
    CU_ASSERT_EQUAL(strlen(t), sizeof big + 1);
    CU_ASSERT_EQUAL(t[0], '<');
    CU_ASSERT_EQUAL(t[sizeof big], '>');
    free(t);
}

/* Writes 'len' bytes of 'data' to a new temporary file; stores its name
 * in 'name' (at least 32 bytes). */
static void
write_temp(char *name, const void *data, size_t len)
{
    strcpy(name, "/tmp/chand-util-XXXXXX");
    int fd = mkstemp(name);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, data, len) == (ssize_t) len);
    close(fd);
}

/* Asserts that read_file() gives back the 'n' bytes at 'data', with a NUL
 * after them. */
static void
check_read_file(const char *data, size_t n)
{
    size_t len = n + 99;
    char name[32];
    char *buf;

    write_temp(name, data, n);
    buf = read_file(name, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT_EQUAL(len, n);
    CU_ASSERT_EQUAL(memcmp(buf, data, n), 0);
    CU_ASSERT_EQUAL(buf[n], '\0');
    free(buf);
    unlink(name);
}

static void
test_read_file(void)
{
    char name[32];
    char *buf;

    check_read_file("one\0two\n", 8);
    check_read_file("", 0);

    /* The length is optional. */
    write_temp(name, "one\0two\n", 8);
    buf = read_file(name, NULL);
    CU_ASSERT_STRING_EQUAL(buf, "one");
    free(buf);
    unlink(name);
}

/* Files bigger than the first buffer, and exactly its size, are whole. */
static void
test_read_file_big(void)
{
    static const size_t sizes[] = { 8191, 8192, 8193, 16384, 100000 };

    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char *data = xmalloc(sizes[i]);

        for (size_t j = 0; j < sizes[i]; j++) {
            data[j] = 'a' + j % 26;
        }
        check_read_file(data, sizes[i]);
        free(data);
    }
}

static void
test_read_file_errors(void)
{
    size_t len = 99;

    errno = 0;
    CU_ASSERT_PTR_NULL(read_file("/nonexistent/chand/file", &len));
    CU_ASSERT_EQUAL(errno, ENOENT);
    CU_ASSERT_EQUAL(len, 0);
    errno = 0;
    CU_ASSERT_PTR_NULL(read_file(NULL, &len));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_PTR_NULL(read_file("/", &len));  /* A directory. */
    CU_ASSERT_NOT_EQUAL(errno, 0);
}

static void
test_hexit_value(void)
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 0; i < 16; i++) {
        CU_ASSERT_EQUAL(hexit_value(digits[i]), i);
        CU_ASSERT_EQUAL(hexit_value(digits[i] >= 'a'
                                    ? digits[i] - 'a' + 'A'
                                    : digits[i]), i);
    }
    CU_ASSERT_EQUAL(hexit_value('g'), -1);
    CU_ASSERT_EQUAL(hexit_value('G'), -1);
    CU_ASSERT_EQUAL(hexit_value('/'), -1);
    CU_ASSERT_EQUAL(hexit_value(':'), -1);
    CU_ASSERT_EQUAL(hexit_value('@'), -1);
    CU_ASSERT_EQUAL(hexit_value('`'), -1);
    CU_ASSERT_EQUAL(hexit_value('\0'), -1);
    CU_ASSERT_EQUAL(hexit_value((char) 0xe9), -1);
}

struct container {
    int a;
    double member;
};

static void
test_container_of(void)
{
    struct container c;

    CU_ASSERT_PTR_EQUAL(CONTAINER_OF(&c.member, struct container, member),
                        &c);
}

static const struct unit_test tests[] = {
    { "zero sizes", test_zero_sizes },
    { "zeroed", test_zeroed },
    { "realloc keeps contents", test_realloc_keeps },
    { "strdup and memdup", test_dups },
    { "asprintf", test_asprintf },
    { "read_file", test_read_file },
    { "read_file big", test_read_file_big },
    { "read_file errors", test_read_file_errors },
    { "hexit_value", test_hexit_value },
    { "CONTAINER_OF", test_container_of },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("util", tests);
}
