/* SPDX-License-Identifier: MIT */
/* pygraph-dump: prints the Python import graph of a tree as sorted `SRC -> DST` lines (a node
 * without dependencies as a lone `SRC` line), or with --stats its size and build speed.
 * Skipped files go to stderr as `pygraph-dump: PATH: reason`. Used by the reference comparison
 * (tests/integration/test_pygraph_reference.py) and bench/pygraph.sh. */
#include "pygraph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SKIP 64

static void usage(FILE *to)
{
    fputs("usage: pygraph-dump [--stats] [--threads N] [--skip NAME:NAME...] [--quiet] ROOT\n"
          "  prints `SRC -> DST` per import edge (repo-relative paths, sorted) and `SRC` for\n"
          "  files without dependencies; --stats prints files, bytes, edges, seconds instead;\n"
          "  --skip replaces the default skip-directory list; --quiet drops skip reports\n",
          to);
}

static void on_error(const char *path, const char *message, void *userdata)
{
    if (!*(const int *)userdata)
        fprintf(stderr, "pygraph-dump: %s: %s\n", *path ? path : ".", message);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int stats = 0, quiet = 0, rc = 2;
    const char *root = NULL;
    char *skip_copy = NULL;
    const char *skip[MAX_SKIP + 1];
    st_pygraph_options opts = {.on_error = on_error, .userdata = &quiet};
    st_pygraph *g = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--stats")) {
            stats = 1;
        } else if (!strcmp(argv[i], "--quiet")) {
            quiet = 1;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 0 || n > 64) {
                fprintf(stderr, "pygraph-dump: --threads: expected 0..64, got '%s'\n", argv[i]);
                goto out;
            }
            opts.threads = (unsigned)n;
        } else if (!strcmp(argv[i], "--skip") && i + 1 < argc) {
            free(skip_copy);
            skip_copy = strdup(argv[++i]);
            if (!skip_copy)
                goto out;
            size_t n = 0;
            for (char *save = NULL, *tok = strtok_r(skip_copy, ":", &save); tok && n < MAX_SKIP;
                 tok = strtok_r(NULL, ":", &save))
                skip[n++] = tok;
            skip[n] = NULL;
            opts.skip_dirs = skip;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (argv[i][0] == '-' || root) {
            usage(stderr);
            goto out;
        } else {
            root = argv[i];
        }
    }
    if (!root) {
        usage(stderr);
        goto out;
    }
    double t0 = now_s();
    int st = st_pygraph_build(root, &opts, &g);
    double secs = now_s() - t0;
    if (st != ST_PYGRAPH_OK) {
        fprintf(stderr, "pygraph-dump: %s: %s\n", root, st_pygraph_strerror(st));
        rc = 1;
        goto out;
    }
    size_t n = st_pygraph_count(g);
    if (stats) {
        double mb = (double)st_pygraph_bytes(g) / 1e6;
        printf("files %zu\nbytes %llu\nedges %zu\nskipped %zu\nseconds %.4f\n"
               "files_per_s %.0f\nmb_per_s %.1f\n",
               n, (unsigned long long)st_pygraph_bytes(g), st_pygraph_n_edges(g),
               st_pygraph_n_errors(g), secs, secs > 0 ? (double)n / secs : 0.0,
               secs > 0 ? mb / secs : 0.0);
    } else {
        for (uint32_t i = 0; i < n; i++) {
            const uint32_t *deps;
            size_t nd = st_pygraph_deps(g, i, &deps);
            const char *src = st_pygraph_path(g, i);
            if (nd == 0)
                printf("%s\n", src);
            for (size_t k = 0; k < nd; k++)
                printf("%s -> %s\n", src, st_pygraph_path(g, deps[k]));
        }
    }
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    st_pygraph_free(g);
    free(skip_copy);
    return rc;
}
