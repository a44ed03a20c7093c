/* SPDX-License-Identifier: MIT */
/* engine_multi (see engine_multi.h). */
#include "config.h"

#include "engine_multi.h"

#include "st_time.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* how often a lost engine is asked whether it is back */
#define EM_RECHECK_S 2.0

typedef struct em_engine {
    void *rt;            /* engine_runtime instance */
    char addr[400];
    unsigned workers;    /* executions at once (each of its request's workers) */
    unsigned busy;       /* workers in use */
    double load_s;       /* expected seconds of what runs there, summed */
    unsigned long last_pick; /* m->picks when it was last chosen (0: never) */
    int down;            /* lost: takes no work until it answers and is cleaned */
    int ever_lost;       /* lost at some point: stop() removes what is left there */
    double last_check;
    int prepared;
} em_engine;

typedef struct em_waiter {
    double expected;
    unsigned long arrival;
    struct em_waiter *next;
} em_waiter;

typedef struct em_runtime {
    const er_flavor *fl;
    const st_host *host;
    st_instance *self;
    int multi;           /* hosts given: several engines (even one) */
    em_engine *e;
    size_t n;
    em_place_view *view; /* n, for em_place (under the lock) */
    unsigned long picks; /* placements so far */
    unsigned long arrivals; /* requests that asked for an engine so far */
    struct em_waiter *waiting; /* requests not placed yet (under the lock) */
    pthread_mutex_t lock;
    pthread_cond_t cond;
} em_runtime;

int em_parse_entry(const char *entry, char *addr, size_t addr_len, unsigned *workers)
{
    const char *q = strstr(entry, "?workers=");
    size_t len = q ? (size_t)(q - entry) : strlen(entry);
    *workers = 0;
    if (len == 0 || len >= addr_len)
        return -1;
    memcpy(addr, entry, len);
    addr[len] = '\0';
    if (q) {
        char *end;
        errno = 0;
        long w = strtol(q + 9, &end, 10);
        if (errno || *end || end == q + 9 || w < 1 || w > 10000)
            return -1;
        *workers = (unsigned)w;
    }
    return 0;
}

int em_create(const er_flavor *fl, const st_host *host, st_instance *self,
              const st_config_node *cfg, void **ctx)
{
    em_runtime *m = calloc(1, sizeof(*m));
    if (!m)
        return ST_ERR_NOMEM;
    m->fl = fl;
    m->host = host;
    m->self = self;
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    *ctx = m;
    const char *const *hosts = NULL;
    long long workers = 0;
    int rc = host->cfg_string_list(self, cfg, "hosts", &hosts);
    int rw = host->cfg_int(self, cfg, "workers", &workers);
    if (rc < 0 || rw < 0) {
        em_destroy(m);
        return ST_ERR_INVALID;
    }
    if (rw == ST_CFG_FOUND && (workers < 1 || workers > 10000)) {
        host->log(self, ST_LOG_ERROR, "%s: 'workers' must be from 1 to 10000",
                  host->cfg_where(self, cfg, "workers"));
        em_destroy(m);
        return ST_ERR_INVALID;
    }
    size_t n = 0;
    while (hosts && hosts[n])
        n++;
    if (rc == ST_CFG_FOUND && n == 0) {
        host->log(self, ST_LOG_ERROR, "%s: 'hosts' is empty (leave it out for one engine)",
                  host->cfg_where(self, cfg, "hosts"));
        em_destroy(m);
        return ST_ERR_INVALID;
    }
    m->multi = n > 0;
    m->e = calloc(n ? n : 1, sizeof(*m->e));
    m->view = calloc(n ? n : 1, sizeof(*m->view));
    if (!m->e || !m->view) {
        em_destroy(m);
        return ST_ERR_NOMEM;
    }
    if (!m->multi) { /* the one engine of host / the environment / the default socket */
        int r = er_create(fl, host, self, cfg, &m->e[0].rt);
        if (r != ST_OK) {
            em_destroy(m);
            return r;
        }
        m->n = 1;
        snprintf(m->e[0].addr, sizeof(m->e[0].addr), "%s", er_address(m->e[0].rt));
        return ST_OK;
    }
    const char *where = host->cfg_where(self, cfg, "hosts");
    for (size_t i = 0; i < n; i++) {
        em_engine *e = &m->e[i];
        unsigned w = 0;
        if (em_parse_entry(hosts[i], e->addr, sizeof(e->addr), &w) < 0) {
            host->log(self, ST_LOG_ERROR, "%s: hosts entry '%s' must be an engine address, "
                      "optionally followed by ?workers=N (1 to 10000)", where, hosts[i]);
            em_destroy(m);
            return ST_ERR_INVALID;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->e[j].addr, e->addr) == 0) {
                host->log(self, ST_LOG_ERROR, "%s: hosts names %s twice", where, e->addr);
                em_destroy(m);
                return ST_ERR_INVALID;
            }
        char src[500];
        snprintf(src, sizeof(src), "%s (hosts entry %zu)", where, i + 1);
        int r = er_create_at(fl, host, self, cfg, e->addr, src, &e->rt);
        if (r != ST_OK) {
            em_destroy(m);
            return r;
        }
        m->n++;
        snprintf(e->addr, sizeof(e->addr), "%s", er_address(e->rt));
        e->workers = w ? w : rw == ST_CFG_FOUND ? (unsigned)workers : 0; /* 0: asked at prepare */
    }
    return ST_OK;
}

/* Removes what this run left on engine e after it was lost (it answers again). 0 when the
 * engine is clean, -1 when it still is not (logged). */
static int clean_lost(em_runtime *m, em_engine *e)
{
    st_cleanup_report rep = {sizeof(rep), 0, 0, 0};
    int rc = er_remove_run(e->rt, &rep);
    if (rc != ST_OK) {
        m->host->log(m->self, ST_LOG_WARNING, "engine %s is back but the containers this run "
                     "left there could not all be removed (%u of %u); `selftest-core cleanup` "
                     "removes them", e->addr, rep.removed, rep.listed);
        return -1;
    }
    m->host->log(m->self, ST_LOG_WARNING, "engine %s is back: removed %u container%s this run "
                 "left there; it takes work again", e->addr, rep.removed,
                 rep.removed == 1 ? "" : "s");
    return 0;
}

int em_stop(void *ctx)
{
    em_runtime *m = ctx;
    for (size_t i = 0; i < m->n; i++) {
        em_engine *e = &m->e[i];
        if (m->multi && e->ever_lost) {
            char err[300];
            if (er_ping(e->rt, 3, err, sizeof(err)) == ST_OK)
                clean_lost(m, e);
            else
                m->host->log(m->self, ST_LOG_WARNING, "engine %s is still lost (%s): the "
                             "containers this run left there stay until `selftest-core "
                             "cleanup`", e->addr, err);
        }
        er_stop(e->rt);
    }
    return ST_OK;
}

void em_destroy(void *ctx)
{
    em_runtime *m = ctx;
    if (!m)
        return;
    for (size_t i = 0; m->e && i < m->n; i++)
        er_destroy(m->e[i].rt);
    free(m->e);
    free(m->view);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cond);
    free(m);
}

/* Takes engine i out of the placement (logged once). Called with the lock held. */
static void mark_down(em_runtime *m, em_engine *e, const char *why)
{
    if (e->down)
        return;
    e->down = 1;
    e->ever_lost = 1;
    e->last_check = st_monotonic();
    m->host->log(m->self, ST_LOG_WARNING, "engine %s lost (%s): its work goes to the other "
                 "engines", e->addr, why);
}

int em_probe(void *ctx)
{
    em_runtime *m = ctx;
    if (!m->multi)
        return er_probe(m->e[0].rt);
    size_t up = 0;
    for (size_t i = 0; i < m->n; i++) {
        char err[400];
        if (er_ping(m->e[i].rt, 0, err, sizeof(err)) == ST_OK) {
            up++;
        } else {
            pthread_mutex_lock(&m->lock);
            mark_down(m, &m->e[i], err);
            pthread_mutex_unlock(&m->lock);
        }
    }
    if (!up) {
        m->host->log(m->self, ST_LOG_ERROR, "none of the %zu engines of hosts answers", m->n);
        return ST_ERR_UNAVAILABLE;
    }
    return ST_OK;
}

int em_prepare(void *ctx)
{
    em_runtime *m = ctx;
    if (!m->multi)
        return er_prepare(m->e[0].rt);
    size_t ok = 0;
    for (size_t i = 0; i < m->n; i++) {
        em_engine *e = &m->e[i];
        if (e->down)
            continue;
        if (er_prepare(e->rt) != ST_OK) {
            pthread_mutex_lock(&m->lock);
            mark_down(m, e, "it could not prepare the image");
            pthread_mutex_unlock(&m->lock);
            continue;
        }
        e->prepared = 1;
        if (!e->workers) {
            long cpus = er_engine_cpus(e->rt);
            e->workers = cpus > 0 ? (unsigned)cpus : 1;
        }
        ok++;
    }
    if (!ok) {
        m->host->log(m->self, ST_LOG_ERROR, "no engine of hosts could prepare the image");
        return ST_ERR_UNAVAILABLE;
    }
    for (size_t i = 0; i < m->n; i++)
        m->host->log(m->self, ST_LOG_INFO, "engine %s: %s, %u worker%s", m->e[i].addr,
                     m->e[i].down ? "lost" : "ready", m->e[i].workers,
                     m->e[i].workers == 1 ? "" : "s");
    return ST_OK;
}

unsigned em_slots(void *ctx)
{
    em_runtime *m = ctx;
    if (!m->multi)
        return 0;
    unsigned s = 0;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n; i++)
        if (!m->e[i].down)
            s += m->e[i].workers ? m->e[i].workers : 1;
    pthread_mutex_unlock(&m->lock);
    return s ? s : 1;
}

/* Lost engines that answer again are cleaned and put back. Called without the lock. */
static void recheck_lost(em_runtime *m)
{
    for (size_t i = 0; i < m->n; i++) {
        em_engine *e = &m->e[i];
        pthread_mutex_lock(&m->lock);
        int due = e->down && e->busy == 0 && st_monotonic() - e->last_check >= EM_RECHECK_S;
        if (due)
            e->last_check = st_monotonic();
        pthread_mutex_unlock(&m->lock);
        if (!due)
            continue;
        char err[300];
        if (er_ping(e->rt, 2, err, sizeof(err)) != ST_OK || clean_lost(m, e) < 0)
            continue;
        if (!e->prepared && er_prepare(e->rt) != ST_OK)
            continue;
        pthread_mutex_lock(&m->lock);
        if (!e->workers)
            e->workers = 1;
        e->prepared = 1;
        e->down = 0;
        pthread_cond_broadcast(&m->cond);
        pthread_mutex_unlock(&m->lock);
    }
}

long em_place(const em_place_view *v, size_t n, unsigned w, double expected, int *all_down)
{
    long best = -1;
    double best_t = 0;
    *all_down = 1;
    for (size_t i = 0; i < n; i++) {
        const em_place_view *e = &v[i];
        if (e->down)
            continue;
        *all_down = 0;
        unsigned cap = e->workers ? e->workers : 1;
        unsigned need = w < cap ? w : cap; /* a request wider than the engine runs alone */
        if (e->busy + need > cap)
            continue;
        double t = (e->load_s + (expected > 0 ? expected : 0)) / cap +
                   (double)e->busy / cap * 1e-6; /* unknown durations: the least busy */
        double eps = 1e-9 * (t > best_t ? t : best_t);
        if (best < 0 || t < best_t - eps ||
            (t <= best_t + eps && e->last_pick < v[best].last_pick)) {
            best = (long)i;
            best_t = t;
        }
    }
    return best;
}

int em_before(double ea, unsigned long sa, double eb, unsigned long sb)
{
    int ka = ea >= 0, kb = eb >= 0;
    if (ka != kb)
        return ka; /* a known duration before an unknown one */
    if (ka && ea != eb)
        return ea > eb;
    return sa < sb;
}

/* Is me the first in line among the waiting requests? Called with the lock held. */
static int first_in_line(const em_runtime *m, const em_waiter *me)
{
    for (const em_waiter *o = m->waiting; o; o = o->next)
        if (o != me && em_before(o->expected, o->arrival, me->expected, me->arrival))
            return 0;
    return 1;
}

/* em_place over the engines. Called with the lock held. */
static long pick(em_runtime *m, unsigned w, double expected, int *all_down)
{
    for (size_t i = 0; i < m->n; i++)
        m->view[i] = (em_place_view){m->e[i].down, m->e[i].workers, m->e[i].busy, m->e[i].load_s,
                                     m->e[i].last_pick};
    return em_place(m->view, m->n, w, expected, all_down);
}

int em_execute(void *ctx, const st_exec_request *req, const st_exec_sink *sink,
               st_exec_result *res)
{
    em_runtime *m = ctx;
    if (!m->multi)
        return er_execute(m->e[0].rt, req, sink, res);
    double expected = ST_STRUCT_HAS(st_exec_request, req, expected_s) ? req->expected_s : -1;
    unsigned w = req->workers ? req->workers : 1;
    long i = -1;
    int all_down = 0;
    em_waiter me = {expected, 0, NULL};
    pthread_mutex_lock(&m->lock);
    me.arrival = ++m->arrivals;
    me.next = m->waiting;
    m->waiting = &me;
    pthread_mutex_unlock(&m->lock);
    for (;;) {
        recheck_lost(m);
        pthread_mutex_lock(&m->lock);
        if (first_in_line(m, &me)) {
            i = pick(m, w, expected, &all_down);
            if (i >= 0 || all_down)
                break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 500 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&m->cond, &m->lock, &ts);
        pthread_mutex_unlock(&m->lock);
    }
    /* out of the line (the lock is held): the next one may be placed */
    for (em_waiter **p = &m->waiting; *p; p = &(*p)->next)
        if (*p == &me) {
            *p = me.next;
            break;
        }
    pthread_cond_broadcast(&m->cond);
    if (i < 0) {
        pthread_mutex_unlock(&m->lock);
        res->infra_error = 1;
        snprintf(res->error, sizeof(res->error), "every engine of hosts is lost (%zu)", m->n);
        return ST_ERR_UNAVAILABLE;
    }
    em_engine *e = &m->e[i];
    unsigned cap = e->workers ? e->workers : 1;
    unsigned need = w < cap ? w : cap;
    e->busy += need;
    e->load_s += expected > 0 ? expected : 0;
    e->last_pick = ++m->picks;
    pthread_mutex_unlock(&m->lock);

    int rc = er_execute(e->rt, req, sink, res);

    char err[300] = "";
    int lost = res->infra_error && !res->cancelled && er_ping(e->rt, 3, err, sizeof(err)) != ST_OK;
    pthread_mutex_lock(&m->lock);
    e->busy -= need;
    e->load_s -= expected > 0 ? expected : 0;
    if (e->load_s < 0)
        e->load_s = 0;
    if (lost)
        mark_down(m, e, err);
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    if (lost) {
        size_t l = strlen(res->error);
        snprintf(res->error + l, sizeof(res->error) - l, " (engine %s lost; retried on the others)",
                 e->addr);
    }
    return rc;
}

int em_cancel(void *ctx, const char *id)
{
    em_runtime *m = ctx;
    for (size_t i = 0; i < m->n; i++)
        er_cancel(m->e[i].rt, id);
    return ST_OK;
}

int em_cleanup_stale(void *ctx, double max_age_s, st_cleanup_report *report)
{
    em_runtime *m = ctx;
    if (!m->multi)
        return er_cleanup_stale(m->e[0].rt, max_age_s, report);
    int rc = ST_OK;
    st_cleanup_report sum = {report->struct_size, 0, 0, 0};
    for (size_t i = 0; i < m->n; i++) {
        st_cleanup_report one = {sizeof(one), 0, 0, 0};
        int r = er_cleanup_stale(m->e[i].rt, max_age_s, &one);
        if (r != ST_OK)
            rc = r;
        sum.listed += one.listed;
        sum.removed += one.removed;
        sum.failed += one.failed;
        m->host->log(m->self, ST_LOG_INFO, "cleanup: engine %s: %u listed, %u removed, %u failed",
                     m->e[i].addr, one.listed, one.removed, one.failed);
    }
    report->listed = sum.listed;
    report->removed = sum.removed;
    report->failed = sum.failed;
    return rc;
}

int em_environment_id(void *ctx, char *buf, size_t len)
{
    em_runtime *m = ctx;
    for (size_t i = 0; i < m->n; i++)
        if (!m->e[i].down && (!m->multi || m->e[i].prepared))
            return er_environment_id(m->e[i].rt, buf, len);
    return ST_ERR_UNAVAILABLE;
}
