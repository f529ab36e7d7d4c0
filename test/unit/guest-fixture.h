/*
 * Test helpers shared by the suites that run chand-guest's datastore for
 * real (test-datastore, test-guest-receiver, test-guest-publisher): a
 * scratch directory that holds the datastore file, opening the datastore,
 * and checking one record.  Every helper fails the current test (fatally,
 * where going on makes no sense) instead of returning an error.
 */
#ifndef GUEST_FIXTURE_H
#define GUEST_FIXTURE_H 1

#include <stddef.h>
#include <stdint.h>

struct datastore;

/* A scratch directory under /tmp, with the datastore file's path in it. */
struct scratch {
    char dir[64];
    char path[128];             /* dir/guest.db */
};

/* Creates a new directory /tmp/chand-TAG-XXXXXX for 'sc' (caller-owned).
 * scratch_destroy() removes it. */
void scratch_init(struct scratch *sc, const char *tag);

/* Stores the path of file 'name' in 'sc''s directory in 'buf'. */
void scratch_file(const struct scratch *sc, const char *name, char *buf,
                  size_t size);

/* Removes the files in 'sc''s directory, then the directory. */
void scratch_destroy(struct scratch *sc);

/* Opens the datastore at 'path'; the caller closes it with
 * datastore_close(). */
struct datastore *open_ds(const char *path);

/* Asserts that 'key' holds 'value' at 'version' in 'ds' (borrowed), or is
 * absent, with datastore_get() leaving its outputs alone, if 'value' is
 * NULL. */
void assert_record(struct datastore *ds, const char *key, const char *value,
                   int64_t version);

/* Applies, in a transaction of its own, a frame of host epoch 1 and seq
 * ++'*seqp' that puts 'key' = 'value' at 'version' into 'ds' (NULL
 * 'value': deletes it), as the receiver would. */
void deliver_record(struct datastore *ds, uint64_t *seqp, const char *key,
                    const char *value, int64_t version);

#endif /* guest-fixture.h */
