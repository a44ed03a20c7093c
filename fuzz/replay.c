/* SPDX-License-Identifier: MIT */
/* Replays a fuzz target's kept corpus without libFuzzer: built with the normal compiler and
 * linked with one fuzz/fuzz_NAME.c, it runs LLVMFuzzerTestOneInput on every file of
 * $srcdir/fuzz/corpus/NAME (or of the directories and files given as arguments), so `make
 * check` (and check-valgrind) replays the seeds and every crash reproducer kept there. TAP: one
 * "ok" per input once the target returned, the plan last, so a crash or an abort() of the
 * target (a missing plan) fails the test; a missing corpus directory skips it. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* optional in a target, as with libFuzzer */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

#ifndef FUZZ_NAME
#error "build with -DFUZZ_NAME='\"name\"'"
#endif

static int replay_file(const char *path, unsigned *count)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *grown = realloc(buf, cap * 2);
            if (!grown) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
    }
    int bad = ferror(f) || !buf;
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(buf);
        return -1;
    }
    /* an exactly sized copy, as libFuzzer passes it, so a read past the end is caught */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    (*count)++;
    printf("ok %u - %s\n", *count, path);
    fflush(stdout);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_path(const char *path, unsigned *count)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_file(path, count);
    DIR *d = opendir(path);
    if (!d) {
        perror(path);
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char **grown = realloc(names, (n + 1) * sizeof(*names));
        if (!grown)
            break;
        names = grown;
        size_t l = strlen(path) + strlen(e->d_name) + 2;
        names[n] = malloc(l);
        if (!names[n])
            break;
        snprintf(names[n], l, "%s/%s", path, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && replay_path(names[i], count) < 0)
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    unsigned count = 0;
    int rc = 0;
    if (argc > 1) {
        for (int i = 1; i < argc && rc == 0; i++)
            rc = replay_path(argv[i], &count);
    } else {
        const char *srcdir = getenv("srcdir");
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/fuzz/corpus/%s", srcdir && *srcdir ? srcdir : ".",
                 FUZZ_NAME);
        struct stat st;
        if (stat(dir, &st) < 0) {
            printf("1..0 # SKIP no corpus at %s\n", dir);
            return 0;
        }
        rc = replay_path(dir, &count);
    }
    if (rc)
        printf("not ok %u - an input could not be read\n", ++count);
    printf("1..%u\n", count);
    return rc ? 1 : 0;
}
