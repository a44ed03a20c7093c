/* SPDX-License-Identifier: MIT */
/* engine_demux: the multiplexed log stream decoder (see engine_demux.h). */
#include "config.h"

#include "engine_demux.h"

#include <string.h>

void ed_init(ed_demux *d, ed_out_fn out, void *opaque)
{
    memset(d, 0, sizeof(*d));
    d->out = out;
    d->opaque = opaque;
}

static int valid_header(const unsigned char *h)
{
    return h[0] <= 2 && h[1] == 0 && h[2] == 0 && h[3] == 0;
}

void ed_feed(ed_demux *d, const char *data, size_t len)
{
    while (len > 0) {
        if (d->raw) {
            d->out(d->opaque, 1, data, len);
            return;
        }
        if (d->remaining > 0) {
            size_t take = len < d->remaining ? len : d->remaining;
            d->out(d->opaque, d->stream, data, take);
            d->remaining -= (uint32_t)take;
            data += take;
            len -= take;
            continue;
        }
        /* collect a header */
        size_t take = sizeof(d->header) - d->have;
        if (take > len)
            take = len;
        memcpy(d->header + d->have, data, take);
        /* the first byte already tells a raw stream apart (a Tty container) */
        if (!d->started && d->have == 0 && (unsigned char)data[0] > 2) {
            d->raw = 1;
            continue;
        }
        d->have += take;
        data += take;
        len -= take;
        if (d->have < sizeof(d->header))
            return;
        if (!valid_header(d->header)) {
            /* not a frame: pass what was taken for a header through, then the rest raw */
            d->raw = 1;
            d->out(d->opaque, 1, (const char *)d->header, d->have);
            d->have = 0;
            continue;
        }
        d->started = 1;
        d->stream = d->header[0] == 2 ? 2 : 1;
        d->remaining = (uint32_t)d->header[4] << 24 | (uint32_t)d->header[5] << 16 |
                       (uint32_t)d->header[6] << 8 | (uint32_t)d->header[7];
        d->have = 0;
        d->frames++;
    }
}

int ed_incomplete(const ed_demux *d)
{
    return !d->raw && (d->have > 0 || d->remaining > 0);
}
