/*
 * fuzz: helpers shared by chand's libFuzzer targets (test/fuzz/fuzz-*.c).
 *
 * Each target defines LLVMFuzzerTestOneInput() and is built by test/fuzz/run
 * with clang -fsanitize=fuzzer,address,undefined.  A target must never
 * crash, leak, hang or trip a sanitizer on any input; on top of that, each
 * checks invariants of the code it drives with FUZZ_CHECK(), which aborts
 * (and so makes libFuzzer save the input as a crash) when one is broken.
 *
 * struct fuzz_input is a cursor over the fuzzer's input for targets that
 * take a few bytes of "knobs" (flags, lengths) before the data proper.
 * Every pull is bounds checked: past the end it returns zeros, so that any
 * input is usable.
 */
#ifndef FUZZ_H
#define FUZZ_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Aborts with a message naming the broken invariant. */
#define FUZZ_CHECK(COND)                                                \
    do {                                                                \
        if (!(COND)) {                                                  \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n",       \
                    __FILE__, __LINE__, #COND);                         \
            abort();                                                    \
        }                                                               \
    } while (0)

struct fuzz_input {
    const uint8_t *data;
    size_t size;
};

static inline uint8_t
fuzz_u8(struct fuzz_input *in)
{
    if (!in->size) {
        return 0;
    }
    uint8_t x = in->data[0];
    in->data++;
    in->size--;
    return x;
}

static inline uint16_t
fuzz_be16(struct fuzz_input *in)
{
    uint16_t hi = fuzz_u8(in);
    return (uint16_t) ((hi << 8) | fuzz_u8(in));
}

static inline uint32_t
fuzz_be32(struct fuzz_input *in)
{
    uint32_t hi = fuzz_be16(in);
    return (hi << 16) | fuzz_be16(in);
}

/* Takes up to 'n' bytes from 'in': stores a pointer to them (into the
 * input, borrowed) in '*p' and returns how many were taken. */
static inline size_t
fuzz_take(struct fuzz_input *in, size_t n, const uint8_t **p)
{
    if (n > in->size) {
        n = in->size;
    }
    *p = in->data;
    in->data += n;
    in->size -= n;
    return n;
}

/* Returns 'n' zeroed bytes (at least 1 allocated) from calloc(), so that
 * AddressSanitizer catches a write or read past 'n'; the caller frees it.
 * Never NULL (aborts if out of memory). */
static inline void *
fuzz_alloc(size_t n)
{
    void *p = calloc(n ? n : 1, 1);
    if (!p) {
        abort();
    }
    return p;
}

/* Returns a malloc()ed copy of exactly 'n' bytes of 'p' (the caller frees
 * it), so that AddressSanitizer catches a read even one byte past 'n'.
 * Never NULL (aborts if out of memory). */
static inline uint8_t *
fuzz_dup(const void *p, size_t n)
{
    uint8_t *copy = fuzz_alloc(n);
    if (n) {
        memcpy(copy, p, n);
    }
    return copy;
}

/* Like fuzz_dup() but adds a terminating NUL after the 'n' bytes. */
static inline char *
fuzz_strdup(const void *p, size_t n)
{
    char *copy = malloc(n + 1);
    if (!copy) {
        abort();
    }
    if (n) {
        memcpy(copy, p, n);
    }
    copy[n] = '\0';
    return copy;
}

/* Flags in the first byte of a fuzz-frame input (see fuzz-frame.c). */
#define FUZZ_FRAME_FIX_CSUM     0x01
#define FUZZ_FRAME_RESIGN       0x02
#define FUZZ_FRAME_REQUIRE_CSUM 0x04
#define FUZZ_FRAME_SMALL_REASM  0x08

/* Keys of fuzz-frame (gen-seeds.c signs its seeds with the same ones): a
 * fixed 32-byte key, and the "selected" key whose length the input picks
 * and whose bytes are a fixed pattern. */
static const uint8_t fuzz_frame_fixed_key[32]
    = "chand-fuzz-fixed-key-0123456789";

static inline void
fuzz_frame_key(uint8_t *key, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        key[i] = (uint8_t) (i * 7 + 1);
    }
}

/* Steps of a fuzz-upstream script (see fuzz-upstream.c): the low 3 bits of
 * a step's first byte, and option bits above them. */
#define FUZZ_UP_SYNC   0
#define FUZZ_UP_DATA   1
#define FUZZ_UP_HELLO  2
#define FUZZ_UP_TAKE   3        /* upstream_next_batch() */
#define FUZZ_UP_DONE   4        /* upstream_batch_done() */
#define FUZZ_UP_COMMIT 5        /* TAKE then DONE */
#define FUZZ_UP_LIMITS 6
#define FUZZ_UP_TIME   7

#define FUZZ_UP_OK            0x08  /* DONE, COMMIT: the transaction
                                     * commits (else it fails). */
#define FUZZ_UP_DATA_RAW      0x08  /* DATA: payload bytes from the input. */
#define FUZZ_UP_DATA_REUSE    0x10  /* DATA: the previous message again. */
#define FUZZ_UP_DATA_SNAPSHOT 0x20  /* DATA: SNAPSHOT flag. */
#define FUZZ_UP_DATA_ALL      0x40  /* DATA: the chunks from the index to
                                     * the last, at consecutive seqs. */
#define FUZZ_UP_ACK_VALID     0x80  /* DATA, SYNC: ACK_VALID flag. */

/* Epoch selectors (low 3 bits of an epoch byte). */
#define FUZZ_UP_EPOCH_CURRENT 0     /* upstream_epoch(), or A if none. */
#define FUZZ_UP_EPOCH_A       1
#define FUZZ_UP_EPOCH_B       2
#define FUZZ_UP_EPOCH_C       3
#define FUZZ_UP_EPOCH_MAX     4
#define FUZZ_UP_EPOCH_PRIOR   5     /* The one the upstream was created in. */
#define FUZZ_UP_EPOCH_INPUT   6     /* 4 more bytes. */

/* Steps of a fuzz-xfer engine script (see fuzz-xfer.c): the low 3 bits of
 * a step's byte; the 5 bits above them are its argument. */
#define FUZZ_XFER_ENGINE   0x01 /* First byte: an engine script follows. */
#define FUZZ_XFER_CHUNK    0
#define FUZZ_XFER_GET      1
#define FUZZ_XFER_TIME     2
#define FUZZ_XFER_WAKEUP   3
#define FUZZ_XFER_HAVE     4
#define FUZZ_XFER_LOST     5
#define FUZZ_XFER_RESTART  6
#define FUZZ_XFER_DELIVER  7
#define FUZZ_XFER_STEP(STEP, ARG) ((uint8_t) ((STEP) | (ARG) << 3))

/* The prototype libFuzzer expects; declared here for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif /* fuzz.h */
