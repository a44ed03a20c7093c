/* SPDX-License-Identifier: MIT */
/* The scan cache of pygraph (see scancache.h). Native byte order: the file never leaves the
 * machine, and a byte-order marker after the magic rejects a foreign one. */
#include "scancache.h"

#include "st_file.h"

#include <selftest/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SC_MAGIC "st-pyscan-cache 1\n"
#define SC_ORDER 0x01020304u
#define SC_MAX_BYTES (256u << 20)
#define SC_MAX_STR 65536u

/* ---- reading ---------------------------------------------------------------------------------- */

typedef struct rd {
    const unsigned char *p, *end;
    int bad;
} rd;

static void take(rd *r, void *out, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p, n);
    r->p += n;
}

static uint32_t take_u32(rd *r)
{
    uint32_t v;
    take(r, &v, sizeof v);
    return v;
}

static uint64_t take_u64(rd *r)
{
    uint64_t v;
    take(r, &v, sizeof v);
    return v;
}

static uint8_t take_u8(rd *r)
{
    uint8_t v;
    take(r, &v, 1);
    return v;
}

static char *take_str(rd *r)
{
    uint32_t n = take_u32(r);
    if (r->bad || n > SC_MAX_STR || (size_t)(r->end - r->p) < n || memchr(r->p, 0, n)) {
        r->bad = 1;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        r->bad = 1;
        return NULL;
    }
    memcpy(s, r->p, n);
    s[n] = '\0';
    r->p += n;
    return s;
}

static void record_free(sc_record *x)
{
    free(x->module);
    free(x->package);
    for (uint32_t i = 0; x->names && i < x->n_names; i++)
        free(x->names[i]);
    free(x->names);
}

void sc_entry_free(sc_entry *e)
{
    for (uint32_t i = 0; i < e->n_recs; i++)
        record_free(&e->recs[i]);
    free(e->recs);
    free(e->rel);
    memset(e, 0, sizeof *e);
}

void sc_free(sc_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        sc_entry_free(&c->e[i]);
    free(c->e);
    memset(c, 0, sizeof *c);
}

static int take_entry(rd *r, sc_entry *e)
{
    memset(e, 0, sizeof *e);
    e->rel = take_str(r);
    e->size = take_u64(r);
    e->mtime_ns = take_u64(r);
    e->ctime_ns = take_u64(r);
    e->ino = take_u64(r);
    uint32_t n = take_u32(r);
    /* a record takes at least 19 bytes: a count beyond what is left is corrupt */
    if (r->bad || n > (size_t)(r->end - r->p) / 19)
        return ST_ERR_MALFORMED;
    e->recs = calloc(n ? n : 1, sizeof *e->recs);
    if (!e->recs)
        return ST_ERR_NOMEM;
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        sc_record *x = &e->recs[e->n_recs++];
        x->kind = take_u8(r);
        x->star = take_u8(r);
        x->has_package = take_u8(r);
        x->level = take_u32(r);
        x->line = take_u32(r);
        x->module = take_str(r);
        if (x->has_package)
            x->package = take_str(r);
        uint32_t k = take_u32(r);
        if (r->bad || k > (size_t)(r->end - r->p) / 4 ||
            x->kind > ST_PYIMPORT_IMPORTLIB || x->star > 1 || x->has_package > 1)
            return ST_ERR_MALFORMED;
        x->names = calloc(k ? k : 1, sizeof *x->names);
        if (!x->names)
            return ST_ERR_NOMEM;
        for (; x->n_names < k && !r->bad; x->n_names++)
            x->names[x->n_names] = take_str(r);
    }
    return r->bad ? ST_ERR_MALFORMED : ST_OK;
}

void sc_load(sc_cache *c, const char *path)
{
    memset(c, 0, sizeof *c);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    unsigned char *buf = NULL;
    size_t got = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (uint64_t)st.st_size <= SC_MAX_BYTES && (buf = malloc((size_t)st.st_size))) {
        while (got < (size_t)st.st_size) {
            ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
    }
    close(fd);
    if (!buf)
        return;
    rd r = {buf, buf + got, 0};
    char magic[sizeof SC_MAGIC - 1];
    take(&r, magic, sizeof magic);
    uint64_t n = 0;
    if (!r.bad && memcmp(magic, SC_MAGIC, sizeof magic) == 0 && take_u32(&r) == SC_ORDER)
        n = take_u64(&r);
    if (r.bad || n == 0 || n > got / 48 || !(c->e = calloc((size_t)n, sizeof *c->e))) {
        free(buf);
        return;
    }
    c->cap = (size_t)n;
    for (uint64_t i = 0; i < n; i++) {
        int rc = take_entry(&r, &c->e[c->n]);
        c->n++;
        /* sorted and unique, so sc_find may search */
        if (rc < 0 || (c->n > 1 && strcmp(c->e[c->n - 2].rel, c->e[c->n - 1].rel) >= 0)) {
            r.bad = 1;
            break;
        }
    }
    if (r.bad || r.p != r.end)
        sc_free(c);
    free(buf);
}

static uint64_t ns_of(const struct timespec *t)
{
    return (uint64_t)t->tv_sec * 1000000000u + (uint64_t)t->tv_nsec;
}

const sc_entry *sc_find(const sc_cache *c, const char *rel, const struct stat *st)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(c->e[mid].rel, rel);
        if (cmp == 0) {
            const sc_entry *e = &c->e[mid];
            return e->size == (uint64_t)st->st_size && e->mtime_ns == ns_of(&st->st_mtim) &&
                           e->ctime_ns == ns_of(&st->st_ctim) && e->ino == (uint64_t)st->st_ino
                       ? e
                       : NULL;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int sc_replay(const sc_entry *e, st_pyscan_cb cb, void *userdata)
{
    for (uint32_t i = 0; i < e->n_recs; i++) {
        const sc_record *x = &e->recs[i];
        st_pyimport imp = {.kind = (st_pyimport_kind)x->kind,
                           .module = x->module,
                           .level = x->level,
                           .package = x->has_package ? x->package : NULL,
                           .names = (const char *const *)x->names,
                           .n_names = x->n_names,
                           .star = x->star != 0,
                           .line = x->line};
        int rc = cb(&imp, userdata);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- building entries ------------------------------------------------------------------------ */

int sc_entry_init(sc_entry *e, const char *rel, const struct stat *st)
{
    memset(e, 0, sizeof *e);
    e->rel = strdup(rel);
    e->size = (uint64_t)st->st_size;
    e->mtime_ns = ns_of(&st->st_mtim);
    e->ctime_ns = ns_of(&st->st_ctim);
    e->ino = (uint64_t)st->st_ino;
    return e->rel ? ST_OK : ST_ERR_NOMEM;
}

int sc_entry_add(sc_entry *e, const st_pyimport *imp)
{
    if ((e->n_recs & (e->n_recs - 1)) == 0) { /* 0, 1, 2, 4, ...: grow to the next power */
        sc_record *g = realloc(e->recs, (e->n_recs ? 2 * (size_t)e->n_recs : 1) * sizeof *g);
        if (!g)
            return ST_ERR_NOMEM;
        e->recs = g;
    }
    sc_record *x = &e->recs[e->n_recs];
    memset(x, 0, sizeof *x);
    x->kind = (uint8_t)imp->kind;
    x->star = imp->star ? 1 : 0;
    x->has_package = imp->package ? 1 : 0;
    x->level = imp->level;
    x->line = imp->line;
    x->module = strdup(imp->module ? imp->module : "");
    x->package = imp->package ? strdup(imp->package) : NULL;
    x->names = calloc(imp->n_names ? imp->n_names : 1, sizeof *x->names);
    int ok = x->module && (!imp->package || x->package) && x->names &&
             imp->n_names <= UINT32_MAX;
    for (size_t i = 0; ok && i < imp->n_names; i++, x->n_names++)
        ok = (x->names[i] = strdup(imp->names[i])) != NULL;
    e->n_recs++; /* freed with the entry either way */
    return ok ? ST_OK : ST_ERR_NOMEM;
}

/* ---- writing --------------------------------------------------------------------------------- */

typedef struct wr {
    unsigned char *p;
    size_t n, cap;
    int oom;
} wr;

static void put(wr *w, const void *data, size_t n)
{
    if (w->oom)
        return;
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 65536;
        while (cap < w->n + n)
            cap *= 2;
        unsigned char *g = realloc(w->p, cap);
        if (!g) {
            w->oom = 1;
            return;
        }
        w->p = g;
        w->cap = cap;
    }
    memcpy(w->p + w->n, data, n);
    w->n += n;
}

static void put_u32(wr *w, uint32_t v)
{
    put(w, &v, sizeof v);
}

static void put_u64(wr *w, uint64_t v)
{
    put(w, &v, sizeof v);
}

static void put_u8(wr *w, uint8_t v)
{
    put(w, &v, 1);
}

static void put_str(wr *w, const char *s)
{
    size_t n = strlen(s);
    if (n > SC_MAX_STR) {
        w->oom = 1; /* cannot be read back: write nothing */
        return;
    }
    put_u32(w, (uint32_t)n);
    put(w, s, n);
}

int sc_save(const char *path, const sc_entry *const *entries, size_t n)
{
    wr w = {0};
    put(&w, SC_MAGIC, sizeof SC_MAGIC - 1);
    put_u32(&w, SC_ORDER);
    put_u64(&w, (uint64_t)n);
    for (size_t i = 0; i < n; i++) {
        const sc_entry *e = entries[i];
        put_str(&w, e->rel);
        put_u64(&w, e->size);
        put_u64(&w, e->mtime_ns);
        put_u64(&w, e->ctime_ns);
        put_u64(&w, e->ino);
        put_u32(&w, e->n_recs);
        for (uint32_t k = 0; k < e->n_recs; k++) {
            const sc_record *x = &e->recs[k];
            put_u8(&w, x->kind);
            put_u8(&w, x->star);
            put_u8(&w, x->has_package);
            put_u32(&w, x->level);
            put_u32(&w, x->line);
            put_str(&w, x->module);
            if (x->has_package)
                put_str(&w, x->package);
            put_u32(&w, x->n_names);
            for (uint32_t j = 0; j < x->n_names; j++)
                put_str(&w, x->names[j]);
        }
    }
    if (w.oom) {
        free(w.p);
        errno = ENOMEM;
        return ST_ERR_NOMEM;
    }
    int rc = st_write_file_atomic(path, (const char *)w.p, w.n, 0644);
    free(w.p);
    if (rc < 0) {
        errno = -rc;
        return st_status_of_errno(rc);
    }
    return ST_OK;
}
