/*
 * fuzz-payload: the JSON payload decoders of lib/chan-wire, which see the
 * bytes of every reassembled message: chan_batch_decode() (the record batch
 * of a DATA message) and chan_payload_decode_object() (HELLO, SYNC,
 * HEARTBEAT and ACK payloads).
 *
 * Input layout:
 *
 *     byte 0    if bit 0 is set, bytes 1 and 2 give the limits (below);
 *               otherwise the defaults apply
 *     byte 1    max_records = byte % 16 (0: default)
 *     byte 2    max_depth = byte % 40 (0: default)
 *     then      the payload
 *
 * Invariants checked besides memory safety: whatever decodes encodes again
 * under the same limits (the encoders promise to accept exactly what the
 * decoders accept), and the encoded text decodes to the same batch or
 * object; a decoded batch respects max_records.
 */
#include <config.h>
#include "fuzz.h"

#include "chan-wire.h"

static void
check_batch_equal(const struct chan_batch *a, const struct chan_batch *b)
{
    FUZZ_CHECK(a->n == b->n);
    for (size_t i = 0; i < a->n; i++) {
        const struct chan_record *x = &a->records[i];
        const struct chan_record *y = &b->records[i];
        FUZZ_CHECK(x->op == y->op);
        FUZZ_CHECK(!strcmp(x->key, y->key));
        FUZZ_CHECK(x->version == y->version);
        FUZZ_CHECK(!x->value == !y->value);
        FUZZ_CHECK(!x->value || json_equal(x->value, y->value));
    }
}

static void
fuzz_batch(const uint8_t *data, size_t size,
           const struct chan_wire_limits *limits)
{
    struct chan_batch batch;
    chan_batch_init(&batch);

    enum chan_wire_error error = chan_batch_decode(data, size, limits,
                                                   &batch);
    if (error) {
        FUZZ_CHECK(error < CHAN_WIRE_N_ERRORS);
        FUZZ_CHECK(batch.n == 0);
        chan_batch_destroy(&batch);
        return;
    }

    size_t max = (limits && limits->max_records
                  ? limits->max_records : CHAN_WIRE_DEFAULT_MAX_RECORDS);
    FUZZ_CHECK(batch.n <= max);
    for (size_t i = 0; i < batch.n; i++) {
        const struct chan_record *rec = &batch.records[i];
        size_t key_len = strlen(rec->key);
        FUZZ_CHECK(key_len >= 1 && key_len <= CHAN_WIRE_MAX_KEY_LEN);
        FUZZ_CHECK(rec->version >= 0);
        FUZZ_CHECK(rec->op == CHAN_OP_PUT ? rec->value != NULL
                   : rec->op == CHAN_OP_DELETE && rec->value == NULL);
    }

    char *text;
    size_t len;
    error = chan_batch_encode(&batch, limits, &text, &len);
    if (error) {
        fprintf(stderr, "chan_batch_encode: %s\n",
                chan_wire_error_name(error));
    }
    FUZZ_CHECK(error == CHAN_WIRE_OK);
    FUZZ_CHECK(strlen(text) == len);

    struct chan_batch again;
    chan_batch_init(&again);
    error = chan_batch_decode(text, len, limits, &again);
    if (error) {
        fprintf(stderr, "chan_batch_decode(encoded): %s\n",
                chan_wire_error_name(error));
    }
    FUZZ_CHECK(error == CHAN_WIRE_OK);
    check_batch_equal(&batch, &again);

    chan_batch_destroy(&again);
    free(text);
    chan_batch_destroy(&batch);
}

static void
fuzz_object(const uint8_t *data, size_t size,
            const struct chan_wire_limits *limits)
{
    json_t *obj;
    enum chan_wire_error error = chan_payload_decode_object(data, size,
                                                            limits, &obj);
    if (error) {
        FUZZ_CHECK(error < CHAN_WIRE_N_ERRORS);
        FUZZ_CHECK(obj == NULL);
        return;
    }
    FUZZ_CHECK(json_is_object(obj));

    char *text;
    size_t len;
    error = chan_payload_encode_object(obj, limits, &text, &len);
    if (error) {
        fprintf(stderr, "chan_payload_encode_object: %s\n",
                chan_wire_error_name(error));
    }
    FUZZ_CHECK(error == CHAN_WIRE_OK);
    FUZZ_CHECK(text ? strlen(text) == len : len == 0);

    json_t *again;
    error = chan_payload_decode_object(text, len, limits, &again);
    FUZZ_CHECK(error == CHAN_WIRE_OK);
    FUZZ_CHECK(json_equal(obj, again));

    json_decref(again);
    free(text);
    json_decref(obj);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size };
    uint8_t flags = fuzz_u8(&in);
    uint8_t records = fuzz_u8(&in);
    uint8_t depth = fuzz_u8(&in);
    struct chan_wire_limits limits = {
        .max_records = records % 16,
        .max_depth = depth % 40,
    };
    const struct chan_wire_limits *lp = flags & 1 ? &limits : NULL;

    /* The payload in a buffer of its own, so that a read past it is
     * caught. */
    uint8_t *payload = fuzz_dup(in.data, in.size);
    fuzz_batch(payload, in.size, lp);
    fuzz_object(payload, in.size, lp);
    free(payload);
    return 0;
}
