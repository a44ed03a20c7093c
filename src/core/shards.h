/* SPDX-License-Identifier: MIT */
/* Shards: a test path split by test file into batches that run concurrently (on one machine or
 * on several engines), balanced by the per-file durations metrics.db recorded, and rolled up
 * into the path's one batch afterwards, so results, metrics and the summary report the path. */
#ifndef ST_SHARDS_H
#define ST_SHARDS_H

#include "results.h"

#include <stddef.h>

/* Longest processing time first: items (weights w[0..n)) taken heaviest first (ties: in
 * order) onto the slot with the least load so far (ties: the lowest slot). slot[i] gets the
 * slot of item i, load[0..k) (may be NULL) the sum of each slot's weights. */
void st_shards_assign(const double *w, size_t n, unsigned k, unsigned *slot, double *load);

/* The shard count of "auto": enough shards that each lasts about shard_s seconds by the
 * recorded total, rounded to a whole number per slot when there are at least `slots` of them
 * (the worker budget: the engines' workers), at least 1, at most n_files (the pieces); without
 * history (total_s < 0) `slots`, at most n_files. */
unsigned st_shards_auto(double total_s, double shard_s, size_t n_files, unsigned slots);

/* Rolls the finished shards[0..k) of one path up into dst (the path's batch, which did not
 * run): counts, tests, coverage (the union over the shards), retries, output, and a verdict
 * (ok when every shard is; a shard that collected no tests is not a failure when another
 * did). Moves what it can out of the shards; free them afterwards. ST_OK, or ST_ERR_NOMEM. */
int st_shards_rollup(st_batch *dst, st_batch *shards, size_t k);

#endif
