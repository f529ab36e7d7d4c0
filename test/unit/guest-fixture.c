/* Copyright (c) 2026 The chand authors.  See guest-fixture.h. */

#include <config.h>
#include "guest-fixture.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datastore.h"
#include "unit.h"

/* Makes a new directory for 'sc' (owned by the caller). */
void
scratch_init(struct scratch *sc, const char *tag)
{
    snprintf(sc->dir, sizeof sc->dir, "/tmp/chand-%s-XXXXXX", tag);
    CU_ASSERT_FATAL(mkdtemp(sc->dir) != NULL);
    snprintf(sc->path, sizeof sc->path, "%s/guest.db", sc->dir);
}

/* Writes the path of 'name' in 'sc' to 'buf' (owned by the caller). */
void
scratch_file(const struct scratch *sc, const char *name, char *buf,
             size_t size)
{
    snprintf(buf, size, "%s/%s", sc->dir, name);
}

/* Removes 'sc''s directory and its files; 'sc' itself stays the
 * caller's. */
void
scratch_destroy(struct scratch *sc)
{
    DIR *d = opendir(sc->dir);
    struct dirent *de;

    if (!d) {
        return;
    }
    while ((de = readdir(d)) != NULL) {
        char file[512];

        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) {
            continue;
        }
        snprintf(file, sizeof file, "%s/%s", sc->dir, de->d_name);
        unlink(file);
    }
    closedir(d);
    rmdir(sc->dir);
}

/* Returns the datastore at 'path', opened; the caller closes it. */
struct datastore *
open_ds(const char *path)
{
    struct datastore *ds = NULL;
    int error = datastore_open(path, &ds);

    if (error) {
        fprintf(stderr, "datastore_open: %s\n", datastore_last_error());
    }
    CU_ASSERT_FATAL(error == 0);
    CU_ASSERT_FATAL(ds != NULL);
    return ds;
}

/* Checks one record of 'ds' (borrowed). */
void
assert_record(struct datastore *ds, const char *key, const char *value,
              int64_t version)
{
    char *got = NULL;
    int64_t got_version = -12345;
    int error = datastore_get(ds, key, &got, &got_version);

    if (!value) {
        CU_ASSERT_EQUAL(error, ENOENT);
        CU_ASSERT_PTR_NULL(got);
        CU_ASSERT_EQUAL(got_version, -12345);
        return;
    }
    CU_ASSERT_EQUAL_FATAL(error, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, value);
    CU_ASSERT_EQUAL(got_version, version);
    free(got);
}

void
deliver_record(struct datastore *ds, uint64_t *seqp, const char *key,
               const char *value, int64_t version)
{
    struct ds_record r = {
        .op = value ? DS_PUT : DS_DELETE,
        .key = key,
        .value = value,
        .version = version,
    };

    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_FATAL(datastore_apply(ds, 1, ++*seqp, &r, 1, NULL) == 0);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
}
