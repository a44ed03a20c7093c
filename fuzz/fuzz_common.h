/* SPDX-License-Identifier: MIT */
/* Shared by the libFuzzer targets of fuzz/: a private scratch directory (on tmpfs when there is
 * one, so the readers that take a path and the writers that fsync stay fast) and a helper that
 * puts the input there as a file. Each target is one process; nothing here is thread-safe. */
#ifndef ST_FUZZ_COMMON_H
#define ST_FUZZ_COMMON_H
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char fuzz_dir[256];

static __attribute__((unused)) void fuzz_rmdir(void)
{
    /* the targets only create flat files in fuzz_dir */
    char cmd_path[512];
    static const char *const names[] = {"input", "orphan_modules.json",
                                        "orphan_classifications.json", "orphan_check_cache.json",
                                        "history.json", NULL};
    for (size_t i = 0; names[i]; i++) {
        snprintf(cmd_path, sizeof cmd_path, "%s/%s", fuzz_dir, names[i]);
        unlink(cmd_path);
    }
    rmdir(fuzz_dir);
}

/* Creates the scratch directory once: $FUZZ_TMPDIR, else /dev/shm, else $TMPDIR or /tmp. */
static __attribute__((unused)) const char *fuzz_scratch(void)
{
    if (fuzz_dir[0])
        return fuzz_dir;
    const char *base = getenv("FUZZ_TMPDIR");
    struct stat st;
    if (!base || !*base)
        base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                   ? "/dev/shm"
                   : getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/st-fuzz-XXXXXX", base);
    if (!mkdtemp(fuzz_dir)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(fuzz_rmdir);
    return fuzz_dir;
}

/* Writes data to scratch/name (replacing it) and returns the path (static storage). */
static __attribute__((unused)) const char *fuzz_put_file(const char *name, const uint8_t *data, size_t size)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_scratch(), name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror("fuzz: open");
        abort();
    }
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n <= 0) {
            perror("fuzz: write");
            abort();
        }
        data += n;
        size -= (size_t)n;
    }
    close(fd);
    return path;
}

/* A NUL-terminated private copy with no slack after it, so ASan sees a read past the end. */
static __attribute__((unused)) char *fuzz_strdup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
