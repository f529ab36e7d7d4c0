/* base64: see base64.h. */

#include <config.h>
#include "base64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
base64_encode(const void *data_, size_t len)
{
    const uint8_t *data = data_;
    char *out = xmalloc((len + 2) / 3 * 4 + 1);
    char *p = out;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t) data[i] << 16;

        v |= i + 1 < len ? (uint32_t) data[i + 1] << 8 : 0;
        v |= i + 2 < len ? data[i + 2] : 0;
        *p++ = alphabet[v >> 18];
        *p++ = alphabet[(v >> 12) & 63];
        *p++ = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        *p++ = i + 2 < len ? alphabet[v & 63] : '=';
    }
    *p = '\0';
    return out;
}

/* Returns the value of base64 digit 'c', or -1. */
static int
digit(char c)
{
    const char *p = c ? strchr(alphabet, c) : NULL;

    return p ? (int) (p - alphabet) : -1;
}

bool
base64_decode(const char *text, void **datap, size_t *lenp)
{
    size_t len = strlen(text), n = 0;
    uint8_t *out;

    if (len % 4) {
        return false;
    }
    out = xmalloc(len / 4 * 3 + 1);
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        int pad = (last && text[i + 3] == '=') + (last && text[i + 2] == '=');
        int d[4];

        for (int j = 0; j < 4; j++) {
            d[j] = j >= 4 - pad ? 0 : digit(text[i + j]);
            if (d[j] < 0) {
                free(out);
                return false;
            }
        }
        uint32_t v = (d[0] << 18) | (d[1] << 12) | (d[2] << 6) | d[3];
        out[n++] = v >> 16;
        if (pad < 2) {
            out[n++] = (v >> 8) & 0xff;
        }
        if (pad < 1) {
            out[n++] = v & 0xff;
        }
    }
    out[n] = '\0';
    *datap = out;
    *lenp = n;
    return true;
}
