/* Copyright (c) 2026 The chand authors.  See chan-mtu.h. */

#include <config.h>
#include "chan-mtu.h"

#include <stdlib.h>
#include <string.h>

#include "chan-wire.h"

/* Bytes of a frame's payload left for the batch's own JSON ("records",
 * brackets) beyond the per-record estimate of the batcher. */
#define BATCH_MARGIN 40

const char *
chan_mtu_parse(const char *text, unsigned int *mtup)
{
    if (!text || !*text) {
        return "empty value";
    } else if (!strcmp(text, "auto")) {
        *mtup = 0;
        return NULL;
    }
    unsigned long v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9') {
            return "not \"auto\" or a decimal number";
        }
        v = v * 10 + (*p - '0');
        if (v > CHAN_WIRE_MAX_MTU) {
            return "out of range (576..65535)";
        }
    }
    if (text[0] == '0') {
        return text[1] ? "has leading zeros" : "out of range (576..65535)";
    } else if (v < CHAN_WIRE_MIN_MTU) {
        return "out of range (576..65535)";
    }
    *mtup = v;
    return NULL;
}

static unsigned int
clamp(unsigned int mtu)
{
    return (mtu < CHAN_WIRE_MIN_MTU ? CHAN_WIRE_MIN_MTU
            : mtu > CHAN_WIRE_MAX_MTU ? CHAN_WIRE_MAX_MTU : mtu);
}

unsigned int
chan_mtu_local(unsigned int configured, unsigned int detected,
               unsigned int limit)
{
    unsigned int mtu = (configured ? configured
                        : detected ? detected : CHAN_WIRE_DEFAULT_MTU);
    if (detected && detected < mtu) {
        mtu = detected;
    }
    if (limit && limit < mtu) {
        mtu = limit;
    }
    return clamp(mtu);
}

unsigned int
chan_mtu_from_json(const json_t *obj)
{
    const json_t *v = obj ? json_object_get(obj, CHAN_MTU_MEMBER) : NULL;
    if (!json_is_integer(v) || json_integer_value(v) < CHAN_WIRE_MIN_MTU) {
        return CHAN_WIRE_DEFAULT_MTU;
    }
    json_int_t mtu = json_integer_value(v);
    return mtu > CHAN_WIRE_MAX_MTU ? CHAN_WIRE_MAX_MTU : (unsigned int) mtu;
}

void
chan_mtu_to_json(json_t *obj, unsigned int mtu)
{
    json_object_set_new(obj, CHAN_MTU_MEMBER, json_integer(mtu));
}

unsigned int
chan_mtu_effective(unsigned int local, unsigned int peer)
{
    local = local ? clamp(local) : CHAN_WIRE_DEFAULT_MTU;
    peer = peer ? clamp(peer) : CHAN_WIRE_DEFAULT_MTU;
    return local < peer ? local : peer;
}

size_t
chan_mtu_batch_budget(unsigned int mtu)
{
    return chan_wire_max_payload(clamp(mtu)) - BATCH_MARGIN;
}
