/* SPDX-License-Identifier: MIT */
/* Shards (see shards.h). */
#include "config.h"

#include "shards.h"

#include "coverage.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct weighted {
    double w;
    size_t i;
} weighted;

static int by_weight_desc(const void *a, const void *b)
{
    const weighted *x = a, *y = b;
    if (x->w != y->w)
        return x->w < y->w ? 1 : -1;
    return (x->i > y->i) - (x->i < y->i);
}

void st_shards_assign(const double *w, size_t n, unsigned k, unsigned *slot, double *load)
{
    if (k == 0)
        k = 1;
    double *l = calloc(k, sizeof(*l));
    weighted *order = malloc((n + 1) * sizeof(*order));
    if (!l || !order) { /* out of memory: round robin, still a valid assignment */
        for (size_t i = 0; i < n; i++)
            slot[i] = (unsigned)(i % k);
        if (load)
            for (unsigned s = 0; s < k; s++)
                load[s] = 0;
        for (size_t i = 0; load && i < n; i++)
            load[slot[i]] += w[i];
        free(l);
        free(order);
        return;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = (weighted){w[i], i};
    qsort(order, n, sizeof(*order), by_weight_desc);
    for (size_t j = 0; j < n; j++) {
        unsigned best = 0;
        for (unsigned s = 1; s < k; s++)
            if (l[s] < l[best])
                best = s;
        slot[order[j].i] = best;
        l[best] += order[j].w;
    }
    if (load)
        memcpy(load, l, k * sizeof(*l));
    free(l);
    free(order);
}

unsigned st_shards_auto(double total_s, double shard_s, size_t n_files, unsigned slots)
{
    double want;
    if (total_s < 0) {
        want = slots ? slots : 1;
    } else {
        want = ceil(total_s / (shard_s > 0 ? shard_s : 60));
        /* enough for every slot: a whole number of shards per slot, so that no slot runs one
         * more than the others at the end (17 shards on 16 slots would end at twice a shard) */
        if (slots > 1 && want >= slots)
            want = slots * floor(want / slots + 0.5);
    }
    if (want > (double)n_files)
        want = (double)n_files;
    if (want > 1000)
        want = 1000;
    return want < 1 ? 1 : (unsigned)want;
}

static void add_reason(st_buf *r, const st_batch *s)
{
    if (!s->reason)
        return;
    if (r->len)
        st_buf_puts(r, "; ");
    char head[64];
    snprintf(head, sizeof(head), "shard %u/%u: ", s->shard_index, s->shard_count);
    st_buf_puts(r, head);
    st_buf_puts(r, s->reason);
}

int st_shards_rollup(st_batch *dst, st_batch *shards, size_t k)
{
    st_run tmp = {.batches = shards, .n_batches = k};
    double cov = st_coverage_union(&tmp);
    st_buf reason = {0};
    st_strv engines = {0};
    int oom = 0, all_ok = 1, collected = 0, all_done = 1;
    size_t n_tests = 0, n_cov = 0, n_retries = 0;
    for (size_t i = 0; i < k; i++) {
        n_tests += shards[i].n_tests;
        n_cov += shards[i].n_cov;
        n_retries += shards[i].n_retries;
        collected |= !shards[i].no_tests && shards[i].saw_start;
    }
    st_batch_reset_outcome(dst);
    dst->tests = realloc(dst->tests, (n_tests + 1) * sizeof(*dst->tests));
    dst->cov = malloc((n_cov + 1) * sizeof(*dst->cov));
    dst->retries = realloc(dst->retries, (dst->n_retries + n_retries + 1) * sizeof(*dst->retries));
    dst->shards = calloc(k + 1, sizeof(*dst->shards));
    if (!dst->tests || !dst->cov || !dst->retries || !dst->shards)
        return ST_ERR_NOMEM;
    dst->cap_tests = n_tests + 1;
    dst->n_shards = k;
    dst->exit_status = 0;
    dst->started_at = 0;
    dst->finished_at = 0;
    dst->workers = 0;
    dst->workers_seen = 0;
    dst->saw_start = dst->saw_end = 1;
    for (size_t i = 0; i < k; i++) {
        st_batch *s = &shards[i];
        /* a shard of test files without a test (a helper module named test_*.py) is no failure
         * of the path when the others collected tests */
        int ok = s->ok || (s->no_tests && collected && !s->infra_error && !s->timed_out);
        all_ok &= ok;
        all_done &= s->done;
        if (!ok)
            add_reason(&reason, s);
        st_shard_info *si = &dst->shards[i];
        si->index = s->shard_index;
        si->files = s->select.n;
        si->expected_s = s->expected_s;
        si->runtime_s = s->runtime_s;
        si->ok = ok;
        si->passed = st_counts_passed(&s->counts);
        si->failed = st_counts_failed(&s->counts);
        si->engine = s->engine ? st_strdup(s->engine) : NULL;
        si->container = s->container ? st_strdup(s->container) : NULL;
        si->reason = s->reason ? st_strdup(s->reason) : NULL;
        if (s->engine && !st_strv_contains(&engines, s->engine))
            st_strv_push(&engines, s->engine);
        st_counts_add(&dst->counts, &s->counts);
        if (s->n_tests) /* memcpy's source may not be NULL, even for 0 bytes */
            memcpy(dst->tests + dst->n_tests, s->tests, s->n_tests * sizeof(*s->tests));
        dst->n_tests += s->n_tests;
        s->n_tests = 0; /* moved */
        /* coverage lines point at their file names: the names move with them */
        if (s->n_cov)
            memcpy(dst->cov + dst->n_cov, s->cov, s->n_cov * sizeof(*s->cov));
        dst->n_cov += s->n_cov;
        for (size_t f = 0; f < s->cov_files.n; f++) {
            st_strv_push_owned(&dst->cov_files, s->cov_files.v[f]);
            s->cov_files.v[f] = NULL;
        }
        s->cov_files.n = 0;
        for (size_t r = 0; r < s->n_retries; r++) {
            dst->retries[dst->n_retries++] = s->retries[r];
        }
        s->n_retries = 0;
        if (s->exit_status != 0 && dst->exit_status == 0 && !(s->no_tests && ok))
            dst->exit_status = s->exit_status;
        if (s->term_signal && !dst->term_signal)
            dst->term_signal = s->term_signal;
        dst->timed_out |= s->timed_out;
        dst->infra_error |= s->infra_error;
        dst->aborted |= s->aborted;
        dst->ended_early |= s->ended_early;
        dst->saw_start &= s->saw_start || (s->no_tests && ok);
        dst->saw_end &= s->saw_end || (s->no_tests && ok);
        if (s->limit && !dst->limit)
            dst->limit = st_strdup(s->limit);
        dst->leftover += s->leftover;
        for (size_t r = 0; r < s->running.n; r++)
            st_strv_push(&dst->running, s->running.v[r]);
        if (s->container && !dst->container)
            dst->container = st_strdup(s->container);
        if (s->truncated && !dst->truncated)
            dst->truncated = st_strdup(s->truncated);
        if (s->read_error && !dst->read_error)
            dst->read_error = st_strdup(s->read_error);
        if (!ok && s->output_tail.len) {
            char head[64];
            snprintf(head, sizeof(head), "[shard %u/%u]\n", s->shard_index, s->shard_count);
            st_buf_puts(&dst->output_tail, head);
            st_buf_append(&dst->output_tail, s->output_tail.data, s->output_tail.len);
        }
        if (s->started_at > 0 && (dst->started_at == 0 || s->started_at < dst->started_at))
            dst->started_at = s->started_at;
        if (s->finished_at > dst->finished_at)
            dst->finished_at = s->finished_at;
        dst->workers += s->workers;
        dst->workers_seen += s->workers_seen;
        if (!dst->argv_seen.n)
            for (size_t a = 0; a < s->argv_seen.n; a++)
                st_strv_push(&dst->argv_seen, s->argv_seen.v[a]);
        dst->attempts_timed_out += s->attempts_timed_out;
        dst->cleanup_failures += s->cleanup_failures;
    }
    dst->coverage = cov;
    dst->runtime_s = dst->finished_at > dst->started_at ? dst->finished_at - dst->started_at : 0;
    dst->no_tests = !collected && all_done && !dst->infra_error && !dst->timed_out;
    dst->ok = all_ok && all_done && collected;
    dst->done = all_done;
    if (!dst->ok) {
        if (dst->no_tests && !reason.len)
            st_buf_puts(&reason, "no tests collected (pytest exit status 5) in any shard");
        dst->reason = reason.len ? st_buf_steal(&reason) : NULL;
    }
    if (engines.n) {
        st_buf e = {0};
        for (size_t i = 0; i < engines.n; i++) {
            if (i)
                st_buf_puts(&e, ", ");
            st_buf_puts(&e, engines.v[i]);
        }
        dst->engine = st_buf_steal(&e);
    }
    oom = engines.oom || dst->running.oom || dst->cov_files.oom || dst->argv_seen.oom;
    st_strv_free(&engines);
    st_buf_free(&reason);
    return oom ? ST_ERR_NOMEM : ST_OK;
}
