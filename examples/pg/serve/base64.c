/* Base64 (RFC 4648, standard alphabet) and data: URIs, for request images. */
#include "serve.h"

#include <stdlib.h>
#include <string.h>

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62; /* '-' and '_': the URL-safe alphabet, also seen */
    if (c == '/' || c == '_') return 63;
    return -1;
}

unsigned char *srv_base64_decode(const char *s, size_t len, size_t *out_len)
{
    unsigned char *out = malloc(len / 4 * 3 + 4);
    if (!out) return NULL;
    size_t n = 0, pad = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') { pad++; continue; }
        int v = b64_value(c);
        if (v < 0 || pad) { free(out); return NULL; } /* bad character, or data after '=' */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    /* a lone trailing character carries under 8 bits: the input was cut */
    if (bits >= 6 || pad > 2 || n == 0) { free(out); return NULL; }
    *out_len = n;
    return out;
}

const char *srv_data_uri_payload(const char *s, size_t *len)
{
    if (strncmp(s, "data:", 5) != 0) return NULL;
    const char *comma = strchr(s, ',');
    if (!comma) return NULL;
    *len = strlen(comma + 1);
    return comma + 1;
}
