/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the orphan caches under the data dir: orphan_modules.json and
 * orphan_classifications.json (src/core/orphans.c), orphan_check_cache.json (checkcache.c).
 * The low 2 bits of the first byte choose the file the rest goes to (0 modules, 1
 * classifications, 2 check cache, 3 all three). Any bytes must load without a crash, a leak or
 * a sanitizer report; then the caches are used as a cycle uses them (merge, mark, the list to
 * test, remove, look up, store, prune, save: a malformed file must not be overwritten). */
#include "config.h"

#include "fuzz_common.h"

#include "log.h"
#include "checkcache.h"
#include "orphans.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    st_log_set_level(ST_LOG_ERROR);
    fuzz_scratch();
    return 0;
}

static int same_file(const char *path, const uint8_t *data, size_t size)
{
    char *text = NULL;
    size_t len = 0;
    if (st_read_file(path, (size_t)1 << 30, &text, &len) < 0)
        return 0;
    int same = len == size && (size == 0 || memcmp(text, data, size) == 0);
    free(text);
    return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    data++;
    size--;
    const char *dir = fuzz_scratch();
    char mpath[512], cpath[512], kpath[512];
    snprintf(mpath, sizeof mpath, "%s/%s", dir, ST_ORPHAN_MODULES_FILE);
    snprintf(cpath, sizeof cpath, "%s/%s", dir, ST_ORPHAN_CLASSES_FILE);
    snprintf(kpath, sizeof kpath, "%s/%s", dir, ST_CHECK_CACHE_FILE);
    unlink(mpath);
    unlink(cpath);
    unlink(kpath);
    int to_modules = (mode & 3) == 0 || (mode & 3) == 3;
    int to_classes = (mode & 3) == 1 || (mode & 3) == 3;
    int to_checks = (mode & 3) >= 2;
    if (to_modules)
        fuzz_put_file(ST_ORPHAN_MODULES_FILE, data, size);
    if (to_classes)
        fuzz_put_file(ST_ORPHAN_CLASSES_FILE, data, size);
    if (to_checks)
        fuzz_put_file(ST_CHECK_CACHE_FILE, data, size);
    st_orphan_cache c;
    if (st_orphans_load(&c, dir, dir) != 0)
        abort();
    int m_ro = c.modules_readonly, c_ro = c.classes_readonly;
    st_strv v = {0};
    st_orphans_to_test(&c, mode & 4, &v);
    st_strv_free(&v);
    const char *parents[] = {"input", NULL};
    st_orphan_update u = {.path = "input", .parents = parents, .classification = "candidate",
                          .reason = "fuzz"};
    st_orphans_merge(&c, &u);
    st_orphans_mark(&c, "input", mode & 8, "fuzz");
    const char *integrated[] = {"input", NULL};
    st_orphans_remove_integrated(&c, integrated);
    st_orphans_save(&c);
    st_orphans_free(&c);
    st_check_cache k;
    if (st_checkcache_load(&k, dir) != 0)
        abort();
    int k_ro = k.readonly;
    for (size_t i = 0; i < k.n; i++)
        if (!k.v[i].path || !k.v[i].key || !k.v[i].interpreter)
            abort();
    if (k.n)
        st_checkcache_get(&k, k.v[0].path, k.v[0].key, k.v[0].interpreter);
    st_checkcache_put(&k, "input", "00112233445566778899aabbccddeeff", "python3", mode & 8,
                      "fuzz", NULL, 1.5);
    st_checkcache_prune(&k, dir);
    st_checkcache_save(&k);
    st_checkcache_free(&k);
    /* a file that was refused must be left byte for byte as it was */
    if (to_checks && k_ro && !same_file(kpath, data, size))
        abort();
    if (to_modules && m_ro && !same_file(mpath, data, size))
        abort();
    if (to_classes && c_ro && !same_file(cpath, data, size))
        abort();
    return 0;
}
