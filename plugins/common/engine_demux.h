/* SPDX-License-Identifier: MIT */
/* engine_demux: decodes the multiplexed log stream of a container created with Tty=false
 * (Docker Engine API "stdcopy" format, also Podman's): frames of an 8-byte header (stream 1 or 2,
 * three zero bytes, big-endian uint32 payload length) and the payload. Frames do not follow line
 * boundaries and may arrive split across reads (Podman sends 1-byte frames for pytest's dots):
 * the decoder buffers the header and hands payload bytes on as they arrive. */
#ifndef ST_ENGINE_DEMUX_H
#define ST_ENGINE_DEMUX_H

#include <stddef.h>
#include <stdint.h>

/* stream: 1 stdout, 2 stderr (0, stdin, is passed as 1). */
typedef void (*ed_out_fn)(void *opaque, int stream, const char *data, size_t len);

typedef struct ed_demux {
    unsigned char header[8];
    size_t have;        /* bytes of header buffered */
    uint32_t remaining; /* payload bytes still due of the current frame */
    int stream;         /* stream of the current frame */
    int raw;            /* the input is not multiplexed (a Tty container): pass it through */
    int started;
    ed_out_fn out;
    void *opaque;
    unsigned long long frames;
} ed_demux;

void ed_init(ed_demux *d, ed_out_fn out, void *opaque);

/* Feeds len bytes. Never fails: input that does not start with a valid header is treated as a
 * raw (Tty) stream and passed through as stdout. */
void ed_feed(ed_demux *d, const char *data, size_t len);

/* 1 when the stream ended in the middle of a frame (a truncated log). */
int ed_incomplete(const ed_demux *d);

#endif
