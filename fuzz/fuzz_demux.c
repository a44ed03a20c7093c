/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the engine log demultiplexer (plugins/common/engine_demux.c): the
 * multiplexed log stream of a container, as an engine sends it. The input's first byte seeds
 * how the rest is cut into reads (engines split frames anywhere, down to 1 byte). Any bytes
 * must decode without a crash or a sanitizer report, hand on no more bytes than came in, only
 * as stream 1 or 2, and decode the same whichever way the stream was cut. */
#include "config.h"

#include "fuzz_common.h"

#include "engine_demux.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

typedef struct sink {
    unsigned char *bytes; /* each byte handed on, then its stream */
    size_t n, cap;
} sink;

static void on_out(void *opaque, int stream, const char *data, size_t len)
{
    sink *s = opaque;
    if (stream != 1 && stream != 2)
        abort();
    if (len == 0)
        abort(); /* no empty calls */
    if (s->n + 2 * len > s->cap)
        abort(); /* more out than in */
    for (size_t i = 0; i < len; i++) {
        s->bytes[s->n++] = (unsigned char)data[i];
        s->bytes[s->n++] = (unsigned char)stream;
    }
}

static void decode(const char *data, size_t size, unsigned seed, sink *s, int *incomplete,
                   unsigned long long *frames)
{
    ed_demux d;
    ed_init(&d, on_out, s);
    unsigned state = seed;
    while (size > 0) {
        size_t take = size;
        if (seed) {
            state = state * 1103515245u + 12345u;
            take = 1 + (state >> 16) % (seed & 1 ? 3 : 64);
            if (take > size)
                take = size;
        }
        /* an exactly sized copy of each read, so ASan sees a read past its end */
        char *chunk = malloc(take);
        if (!chunk)
            abort();
        memcpy(chunk, data, take);
        ed_feed(&d, chunk, take);
        free(chunk);
        data += take;
        size -= take;
    }
    *incomplete = ed_incomplete(&d);
    *frames = d.frames;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned seed = data[0];
    data++;
    size--;
    sink whole = {malloc(2 * size + 1), 0, 2 * size};
    sink cut = {malloc(2 * size + 1), 0, 2 * size};
    if (!whole.bytes || !cut.bytes)
        abort();
    int inc1, inc2;
    unsigned long long fr1, fr2;
    decode((const char *)data, size, 0, &whole, &inc1, &fr1);
    decode((const char *)data, size, seed + 1u, &cut, &inc2, &fr2);
    if (whole.n != cut.n || memcmp(whole.bytes, cut.bytes, whole.n) != 0 || inc1 != inc2 ||
        fr1 != fr2)
        abort(); /* the way the stream was cut changed what was decoded */
    free(whole.bytes);
    free(cut.bytes);
    return 0;
}
