/* SPDX-License-Identifier: MIT */
/* Coverage (docs/spec.md §5.3): each batch's pytest-cov LCOV report read into its executed lines
 * (st_batch.cov), and a run's coverage as the union of those lines over its batches. */
#ifndef ST_COVERAGE_H
#define ST_COVERAGE_H

#include "results.h"

/* Reads coverage.lcov (pytest-cov's LCOV report) into b->cov / b->coverage. Returns ST_OK, 1
 * when the file is absent, or a negative st_status with err: ST_ERR_MALFORMED (a line that is
 * not LCOV), ST_ERR_IO (the file cannot be read), ST_ERR_NOMEM. */
int st_coverage_read(st_batch *b, const char *file, char *err, size_t err_size);

/* Lines covered in any batch / statements in any batch, in percent (100 when there are no
 * statements); -1 when no batch has coverage (or out of memory). */
double st_coverage_union(const st_run *r);

#endif
