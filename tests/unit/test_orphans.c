/* SPDX-License-Identifier: MIT */
/* Unit tests of orphans.c: the orphan files of docs/spec.md §7.4 (legacy list form, dict form, gone
 * files, escaping paths, malformed files left byte for byte, sorted keys with a 2-space indent,
 * atomic writes, check results, --clean-orphans). */
#include "config.h"

#include "unit.h"

#include "checkcache.h"
#include "log.h"
#include "orphans.h"
#include "pygraph.h"
#include "settings.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

typedef struct project {
    char *root, *data;
} project;

static void project_new(project *p, const char *const *files)
{
    p->root = unit_tmpdir();
    p->data = st_path_join(p->root, "sandbox_data");
    ck_assert_int_eq(st_mkdir_p(p->data, 0755), 0);
    for (size_t i = 0; files && files[i]; i++) {
        char *path = st_path_join(p->root, files[i]);
        char *dir = st_path_dirname(path);
        ck_assert_int_eq(st_mkdir_p(dir, 0755), 0);
        ck_assert_int_eq(st_write_file_atomic(path, "X = 1\n", 6, 0644), 0);
        free(dir);
        free(path);
    }
}

static void project_free(project *p)
{
    st_rm_rf(p->root);
    free(p->root);
    free(p->data);
}

static void put(const project *p, const char *name, const char *text)
{
    unit_write(p->data, name, text);
}

static char *get(const project *p, const char *name)
{
    char *path = st_path_join(p->data, name), *text = NULL;
    int rc = st_read_file(path, 1 << 20, &text, NULL);
    free(path);
    return rc == 0 ? text : NULL;
}

/* Loads with stderr captured into *log (freed by the caller). */
static void load(st_orphan_cache *c, const project *p, char **log)
{
    unit_capture cap;
    unit_capture_begin(&cap);
    ck_assert_int_eq(st_orphans_load(c, p->root, p->data), 0);
    *log = unit_capture_end(&cap);
}

static const char *const ABC[] = {"a.py", "b.py", "pkg/c.py", NULL};

START_TEST(legacy_list_form_is_read_and_rewritten_as_a_dict)
{
    project p;
    project_new(&p, ABC);
    put(&p, ST_ORPHAN_MODULES_FILE, "[\"b.py\", \"a.py\"]\n");
    st_orphan_cache c;
    char *log;
    load(&c, &p, &log);
    free(log);
    ck_assert_uint_eq(c.n, 2);
    ck_assert_str_eq(c.v[0].path, "a.py");
    ck_assert_str_eq(c.v[1].path, "b.py");
    ck_assert_int_eq(c.v[0].in_modules, 1);
    ck_assert_int_eq(st_orphans_save(&c), 0);
    char *text = get(&p, ST_ORPHAN_MODULES_FILE);
    ck_assert_str_eq(text, "{\n"
                           "  \"a.py\": {\n"
                           "    \"parents\": [],\n"
                           "    \"redundant\": false\n"
                           "  },\n"
                           "  \"b.py\": {\n"
                           "    \"parents\": [],\n"
                           "    \"redundant\": false\n"
                           "  }\n"
                           "}\n");
    free(text);
    st_orphans_free(&c);
    project_free(&p);
}
END_TEST

START_TEST(dict_form_round_trips_sorted_with_two_spaces)
{
    project p;
    project_new(&p, ABC);
    put(&p, ST_ORPHAN_MODULES_FILE,
        "{\"pkg/c.py\": {\"redundant\": true, \"parents\": [\"b.py\", \"a.py\"]},"
        " \"a.py\": {\"parents\": [], \"redundant\": false}}");
    put(&p, ST_ORPHAN_CLASSES_FILE,
        "{\"pkg/c.py\": {\"parents\": [\"a.py\"], \"classification\": \"redundant\","
        " \"redundant\": true, \"reason\": \"empty\"}}");
    st_orphan_cache c;
    char *log;
    load(&c, &p, &log);
    free(log);
    const st_orphan *o = st_orphans_find(&c, "pkg/c.py");
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(o->redundant, 1);
    ck_assert_str_eq(o->classification, "redundant");
    ck_assert_str_eq(o->reason, "empty");
    ck_assert_uint_eq(o->parents.n, 2); /* orphan_modules.json's parents win */
    ck_assert_int_eq(st_orphans_save(&c), 0);
    char *text = get(&p, ST_ORPHAN_CLASSES_FILE);
    ck_assert_str_eq(text, "{\n"
                           "  \"pkg/c.py\": {\n"
                           "    \"classification\": \"redundant\",\n"
                           "    \"parents\": [\n"
                           "      \"a.py\",\n"
                           "      \"b.py\"\n"
                           "    ],\n"
                           "    \"reason\": \"empty\",\n"
                           "    \"redundant\": true\n"
                           "  }\n"
                           "}\n");
    free(text);
    text = get(&p, ST_ORPHAN_MODULES_FILE);
    ck_assert_ptr_nonnull(strstr(text, "\"a.py\": {"));
    ck_assert(strstr(text, "\"a.py\"") < strstr(text, "\"pkg/c.py\""));
    free(text);
    st_orphans_free(&c);
    project_free(&p);
}
END_TEST

START_TEST(entries_whose_file_is_gone_are_dropped)
{
    project p;
    project_new(&p, ABC);
    put(&p, ST_ORPHAN_MODULES_FILE, "{\"a.py\": {}, \"gone.py\": {\"parents\": []}}");
    st_orphan_cache c;
    char *log;
    st_log_set_level(ST_LOG_INFO);
    load(&c, &p, &log);
    st_log_set_level(ST_LOG_WARNING);
    ck_assert_contains(log, "dropped 'gone.py': the file is gone");
    free(log);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_int_eq(st_orphans_save(&c), 0);
    char *text = get(&p, ST_ORPHAN_MODULES_FILE);
    ck_assert_ptr_null(strstr(text, "gone.py"));
    free(text);
    st_orphans_free(&c);
    project_free(&p);
}
END_TEST

START_TEST(escaping_paths_are_rejected_and_the_file_kept)
{
    project p;
    project_new(&p, ABC);
    char *outside = unit_tmpdir();
    unit_write(outside, "evil.py", "E = 1\n");
    char *link = st_path_join(p.root, "link.py"), *target = st_path_join(outside, "evil.py");
    ck_assert_int_eq(symlink(target, link), 0);
    char *abs = st_asprintf("{\"a.py\": {}, \"../x.py\": {}, \"%s\": {}, \"link.py\": {}}", target);
    put(&p, ST_ORPHAN_MODULES_FILE, abs);
    st_orphan_cache c;
    char *log;
    load(&c, &p, &log);
    ck_assert_contains(log, "'../x.py' is not a path inside the project root");
    ck_assert_contains(log, "'link.py' is not a path inside the project root");
    ck_assert_contains(log, target);
    free(log);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_str_eq(c.v[0].path, "a.py");
    ck_assert_int_eq(c.modules_readonly, 1);
    /* discovery cannot smuggle one in either */
    const st_orphan_update bad = {.path = "../y.py", .classification = "candidate"};
    unit_capture cap;
    unit_capture_begin(&cap);
    ck_assert_int_eq(st_orphans_merge(&c, &bad), ST_ERR_INVALID);
    ck_assert_int_eq(st_orphans_mark(&c, "/etc/passwd", 0, "x"), ST_ERR_INVALID);
    ck_assert_int_eq(st_orphans_save(&c), 0);
    log = unit_capture_end(&cap);
    ck_assert_contains(log, "refused module '../y.py'");
    ck_assert_contains(log, "not updated");
    free(log);
    char *text = get(&p, ST_ORPHAN_MODULES_FILE);
    ck_assert_str_eq(text, abs); /* nothing overwritten */
    free(text);
    st_orphans_free(&c);
    free(abs);
    free(link);
    free(target);
    st_rm_rf(outside);
    free(outside);
    project_free(&p);
}
END_TEST

START_TEST(malformed_file_is_reported_and_left_byte_for_byte)
{
    project p;
    project_new(&p, ABC);
    const char *bad = "{\n  \"a.py\": {\"parents\": []},\n  \"b.py\": {\"parents\": [}\n}\n";
    put(&p, ST_ORPHAN_MODULES_FILE, bad);
    put(&p, ST_ORPHAN_CLASSES_FILE, "[\"a.py\"]"); /* a list is not a classifications shape */
    st_orphan_cache c;
    char *log;
    load(&c, &p, &log);
    ck_assert_contains(log, "orphan_modules.json: line 3, column");
    ck_assert_contains(log, "orphan_classifications.json: line 1, column 1: expected an object");
    free(log);
    ck_assert_uint_eq(c.n, 0); /* as if empty */
    /* --refresh-orphans and new results still never overwrite it */
    st_orphans_clear(&c);
    const char *parents[] = {"a.py", NULL};
    st_orphan_update u = {.path = "b.py", .parents = parents, .classification = "candidate",
                          .reason = "r"};
    ck_assert_int_eq(st_orphans_merge(&c, &u), 0);
    ck_assert_int_eq(st_orphans_mark(&c, "b.py", 0, "ImportError"), 0);
    unit_capture cap;
    unit_capture_begin(&cap);
    ck_assert_int_eq(st_orphans_save(&c), 0);
    log = unit_capture_end(&cap);
    ck_assert_contains(log, "orphan_modules.json: not updated");
    free(log);
    char *text = get(&p, ST_ORPHAN_MODULES_FILE);
    ck_assert_str_eq(text, bad);
    free(text);
    text = get(&p, ST_ORPHAN_CLASSES_FILE);
    ck_assert_str_eq(text, "[\"a.py\"]");
    free(text);
    st_orphans_free(&c);
    /* a NUL byte and a file too large are treated the same way */
    char *path = st_path_join(p.data, ST_ORPHAN_MODULES_FILE);
    ck_assert_int_eq(st_write_file_atomic(path, "{\"a.py\"\0: {}}", 13, 0644), 0);
    load(&c, &p, &log);
    ck_assert_contains(log, "NUL byte");
    free(log);
    ck_assert_int_eq(c.modules_readonly, 1);
    st_orphans_free(&c);
    free(path);
    project_free(&p);
}
END_TEST

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

START_TEST(save_is_atomic_and_creates_the_data_dir)
{
    project p;
    project_new(&p, ABC);
    st_rm_rf(p.data);
    st_orphan_cache c;
    char *log;
    load(&c, &p, &log);
    free(log);
    const char *parents[] = {"b.py", "a.py", "b.py", NULL};
    st_orphan_update u = {.path = "pkg/c.py", .parents = parents, .classification = "legacy",
                          .reason = "legacy marker in the module docstring"};
    ck_assert_int_eq(st_orphans_merge(&c, &u), 0);
    ck_assert_int_eq(st_orphans_save(&c), 0);
    ck_assert_uint_eq(count_entries(p.data), 2); /* the two files, no temp file left */
    char *text = get(&p, ST_ORPHAN_CLASSES_FILE);
    ck_assert_contains(text, "\"classification\": \"legacy\"");
    ck_assert_contains(text, "\"parents\": [\n      \"a.py\",\n      \"b.py\"\n    ]");
    free(text);
    struct stat st;
    char *path = st_path_join(p.data, ST_ORPHAN_MODULES_FILE);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0644);
    /* saved again unchanged: not rewritten (the same inode; a write renames a new file in) */
    ck_assert_int_eq(st_orphans_save(&c), 0);
    struct stat again;
    ck_assert_int_eq(stat(path, &again), 0);
    ck_assert_uint_eq(again.st_ino, st.st_ino);
    /* changed: rewritten */
    u.classification = "candidate";
    u.reason = NULL;
    ck_assert_int_eq(st_orphans_merge(&c, &u), 0);
    ck_assert_int_eq(st_orphans_save(&c), 0);
    char *cpath = st_path_join(p.data, ST_ORPHAN_CLASSES_FILE);
    ck_assert_int_eq(stat(cpath, &again), 0);
    text = get(&p, ST_ORPHAN_CLASSES_FILE);
    ck_assert_contains(text, "\"classification\": \"candidate\"");
    free(text);
    free(cpath);
    ck_assert_uint_eq(count_entries(p.data), 2);
    free(path);
    /* unknown classifications are refused */
    st_orphan_update bad = {.path = "a.py", .classification = "maybe"};
    unit_capture cap;
    unit_capture_begin(&cap);
    ck_assert_int_eq(st_orphans_merge(&c, &bad), ST_ERR_INVALID);
    free(unit_capture_end(&cap));
    st_orphans_free(&c);
    project_free(&p);
}
END_TEST

START_TEST(merge_mark_and_to_test)
{
    project p;
    project_new(&p, ABC);
    put(&p, ST_ORPHAN_MODULES_FILE, "{\"a.py\": {\"parents\": []}}");
    st_orphan_cache c;
    char *log;
    load(&c, &p, &log);
    free(log);
    st_orphan_update ub = {.path = "b.py", .classification = "redundant", .reason = "empty"};
    st_orphan_update uc = {.path = "pkg/c.py", .classification = "legacy", .reason = "marker"};
    ck_assert_int_eq(st_orphans_merge(&c, &ub), 0);
    ck_assert_int_eq(st_orphans_merge(&c, &uc), 0);
    /* entries as the discovery sink receives them; explicit modules are not cached */
    const char *const no_parents[] = {NULL};
    st_module_entry explicit = {.struct_size = sizeof(explicit), .path = "b.py",
                                .origin = ST_ORIGIN_EXPLICIT, .parents = no_parents,
                                .classification = ST_CLASS_CANDIDATE, .reason = "given"};
    ck_assert_int_eq(st_orphans_merge_entry(&c, &explicit), 0);
    ck_assert_str_eq(st_orphans_find(&c, "b.py")->reason, "empty");
    st_module_entry legacy = {.struct_size = sizeof(legacy), .path = "pkg/c.py",
                              .origin = ST_ORIGIN_ISOLATED, .parents = no_parents,
                              .classification = ST_CLASS_LEGACY, .reason = "marker"};
    ck_assert_int_eq(st_orphans_merge_entry(&c, &legacy), 0);
    ck_assert_str_eq(st_orphans_find(&c, "pkg/c.py")->classification, "legacy");
    st_strv v = {0};
    st_orphans_to_test(&c, 0, &v);
    ck_assert_uint_eq(v.n, 1);
    ck_assert_str_eq(v.v[0], "a.py"); /* the old entry stays: new orphans are added */
    st_strv_free(&v);
    st_orphans_to_test(&c, 1, &v);
    ck_assert_uint_eq(v.n, 3);
    st_strv_free(&v);
    ck_assert_int_eq(st_orphans_mark(&c, "a.py", 0, "ImportError: no module named x"), 0);
    ck_assert_int_eq(st_orphans_mark(&c, "pkg/c.py", 1, NULL), 0);
    ck_assert_str_eq(st_orphans_find(&c, "a.py")->classification, "failed");
    ck_assert_str_eq(st_orphans_find(&c, "pkg/c.py")->classification, "passed");
    ck_assert_int_eq(st_orphans_save(&c), 0);
    st_orphans_free(&c);
    load(&c, &p, &log);
    free(log);
    ck_assert_str_eq(st_orphans_find(&c, "a.py")->reason, "ImportError: no module named x");
    ck_assert_int_eq(st_orphans_find(&c, "b.py")->redundant, 1);
    /* refresh: rebuilt from scratch */
    st_orphans_clear(&c);
    ck_assert_int_eq(st_orphans_merge(&c, &uc), 0);
    ck_assert_int_eq(st_orphans_save(&c), 0);
    st_orphans_free(&c);
    char *text = get(&p, ST_ORPHAN_MODULES_FILE);
    ck_assert_ptr_null(strstr(text, "a.py"));
    ck_assert_ptr_nonnull(strstr(text, "pkg/c.py"));
    free(text);
    project_free(&p);
}
END_TEST

START_TEST(clean_orphans_removes_integrated_and_their_helpers)
{
    static const char *const files[] = {"a.py", "b.py", "h.py", "h2.py", "lone.py", NULL};
    project p;
    project_new(&p, files);
    put(&p, ST_ORPHAN_MODULES_FILE,
        "{\"a.py\": {}, \"b.py\": {}, \"h.py\": {\"parents\": [\"a.py\", \"b.py\"]},"
        " \"h2.py\": {\"parents\": [\"a.py\", \"lone.py\"]}, \"lone.py\": {}}");
    put(&p, ST_ORPHAN_CLASSES_FILE, "{\"a.py\": {\"classification\": \"passed\"}}");
    st_orphan_cache c;
    char *log;
    load(&c, &p, &log);
    free(log);
    const char *integrated[] = {"a.py", "b.py", NULL};
    ck_assert_uint_eq(st_orphans_remove_integrated(&c, integrated), 3);
    ck_assert_int_eq(st_orphans_save(&c), 0);
    st_orphans_free(&c);
    char *text = get(&p, ST_ORPHAN_MODULES_FILE);
    /* h.py's parents were all integrated; h2.py still has lone.py */
    ck_assert_ptr_null(strstr(text, "\"a.py\": {"));
    ck_assert_ptr_null(strstr(text, "\"h.py\""));
    ck_assert_ptr_nonnull(strstr(text, "\"h2.py\""));
    ck_assert_ptr_nonnull(strstr(text, "\"lone.py\""));
    free(text);
    text = get(&p, ST_ORPHAN_CLASSES_FILE); /* the classifications keep their history */
    ck_assert_ptr_nonnull(strstr(text, "\"passed\""));
    free(text);
    project_free(&p);
}
END_TEST

START_TEST(absent_files_are_empty)
{
    project p;
    project_new(&p, NULL);
    st_orphan_cache c;
    char *log;
    load(&c, &p, &log);
    ck_assert_str_eq(log, "");
    free(log);
    ck_assert_uint_eq(c.n, 0);
    ck_assert_int_eq(c.modules_readonly, 0);
    st_orphans_free(&c);
    project_free(&p);
}
END_TEST


/* Which files are never orphans, and why (issue 9, point 4). */
START_TEST(rules_test_code_and_orphan_exclude)
{
    static const char *const files[] = {"tests/__init__.py", "tests/helpers.py",
                                        "tests/factories/users.py", "it/helper.py",
                                        "toolz/tests/__init__.py", "toolz/dicttoolz.py",
                                        "src/pkg/__init__.py", "src/pkg/mod.py", "setup.py",
                                        "docs/conf.py", "conf.py", "pkg/conf.py", NULL};
    project p;
    project_new(&p, files);
    st_strv paths = {0}, exclude = {0};
    st_strv_push(&paths, "tests");
    st_strv_push(&paths, "it");
    st_strv_push(&paths, "toolz");
    st_strv_push(&paths, "src");
    for (size_t i = 0; st_default_orphan_exclude[i]; i++)
        st_strv_push(&exclude, st_default_orphan_exclude[i]);
    st_orphan_rules r;
    ck_assert_int_eq(st_orphan_rules_init(&r, p.root, p.data, &paths, &exclude, 1), 0);
    char why[300];
    ck_assert_int_eq(st_orphan_rules_excluded(&r, "tests/helpers.py", why, sizeof(why)), 1);
    ck_assert_str_eq(why, "test code: in the test directory tests/");
    ck_assert_int_eq(st_orphan_rules_excluded(&r, "tests/factories/users.py", why, sizeof(why)),
                     1);
    ck_assert_int_eq(st_orphan_rules_excluded(&r, "toolz/tests/__init__.py", why, sizeof(why)),
                     1);
    ck_assert_str_eq(why, "test code: in the test directory toolz/tests/");
    /* a plain directory of tests is test code as a whole; a package of library code is not */
    ck_assert_int_eq(st_orphan_rules_excluded(&r, "it/helper.py", why, sizeof(why)), 1);
    ck_assert_str_eq(why, "test code: under the test path it (a directory of tests, not a "
                          "package)");
    ck_assert_int_eq(st_orphan_rules_excluded(&r, "toolz/dicttoolz.py", why, sizeof(why)), 0);
    ck_assert_int_eq(st_orphan_rules_excluded(&r, "src/pkg/mod.py", why, sizeof(why)), 0);
    ck_assert_int_eq(st_orphan_rules_excluded(&r, "src/pkg/conftest.py", why, sizeof(why)), 1);
    ck_assert_str_eq(why, "test code: conftest.py under the test path src");
    ck_assert_int_eq(st_orphan_rules_excluded(&r, "setup.py", why, sizeof(why)), 1);
    ck_assert_str_eq(why, "orphan_exclude 'setup.py' (default)");
    ck_assert_int_eq(st_orphan_rules_excluded(&r, "docs/conf.py", why, sizeof(why)), 1);
    ck_assert_int_eq(st_orphan_rules_excluded(&r, "conf.py", why, sizeof(why)), 1);
    ck_assert_str_eq(why, "orphan_exclude '/conf.py' (default)");
    ck_assert_int_eq(st_orphan_rules_excluded(&r, "pkg/conf.py", why, sizeof(why)), 0);
    st_orphan_rules_free(&r);
    /* the root as test path: only test directories, not everything */
    st_strv root_only = {0}, none = {0};
    st_strv_push(&root_only, ".");
    ck_assert_int_eq(st_orphan_rules_init(&r, p.root, p.data, &root_only, &none, 0), 0);
    ck_assert_int_eq(st_orphan_rules_excluded(&r, "tests/helpers.py", why, sizeof(why)), 1);
    ck_assert_int_eq(st_orphan_rules_excluded(&r, "it/helper.py", why, sizeof(why)), 0);
    ck_assert_int_eq(st_orphan_rules_excluded(&r, "setup.py", why, sizeof(why)), 0);
    st_orphan_rules_free(&r);
    st_strv_free(&root_only);
    st_strv_free(&paths);
    st_strv_free(&exclude);
    project_free(&p);
}
END_TEST

/* module_map.json's modules are known (integrated), in its canonical and dotted forms. */
START_TEST(rules_know_module_map)
{
    static const char *const files[] = {"pkg/__init__.py", "pkg/a.py", "pkg/b.py", NULL};
    project p;
    project_new(&p, files);
    unit_write(p.data, "module_map.json",
               "{\"modules\": {\"pkg/a.py\": 1, \"pkg.b\": 1}, \"groups\": {\"1\": 1}}\n");
    st_strv paths = {0}, exclude = {0};
    st_orphan_rules r;
    ck_assert_int_eq(st_orphan_rules_init(&r, p.root, p.data, &paths, &exclude, 0), 0);
    ck_assert_int_eq(st_orphan_rules_known(&r, "pkg/a.py"), 1);
    ck_assert_int_eq(st_orphan_rules_known(&r, "pkg/b.py"), 1);
    ck_assert_int_eq(st_orphan_rules_known(&r, "pkg/__init__.py"), 0);
    st_orphan_rules_free(&r);
    project_free(&p);
}
END_TEST

/* The check cache: a verdict stands for the same key and interpreter; a change of a local
 * import changes the key; a malformed file is reported and never overwritten. */
START_TEST(check_cache_keys_and_files)
{
    static const char *const files[] = {"pkg/__init__.py", "pkg/helper.py", "other.py", NULL};
    project p;
    project_new(&p, files);
    unit_write(p.root, "pkg/mod.py", "from pkg import helper\n");
    st_pygraph *g = NULL;
    ck_assert_int_eq(st_pygraph_build(p.root, NULL, &g), ST_PYGRAPH_OK);
    char *k1 = st_checkcache_key(g, p.root, "pkg/mod.py");
    char *other = st_checkcache_key(g, p.root, "other.py");
    ck_assert_ptr_nonnull(k1);
    ck_assert_ptr_nonnull(other);
    ck_assert_str_ne(k1, other);
    ck_assert_ptr_null(st_checkcache_key(g, p.root, "nope.py"));
    st_pygraph_free(g);
    unit_write(p.root, "pkg/helper.py", "X = 2\n");
    ck_assert_int_eq(st_pygraph_build(p.root, NULL, &g), ST_PYGRAPH_OK);
    char *k2 = st_checkcache_key(g, p.root, "pkg/mod.py");
    char *other2 = st_checkcache_key(g, p.root, "other.py");
    ck_assert_str_ne(k1, k2);       /* a local import changed */
    ck_assert_str_eq(other, other2); /* nothing it reaches changed */
    st_pygraph_free(g);

    st_check_cache c;
    ck_assert_int_eq(st_checkcache_load(&c, p.data), 0);
    ck_assert_int_eq(st_checkcache_put(&c, "pkg/mod.py", k2, "py A", 0, "ValueError: x", "tb", 5),
                     0);
    ck_assert_int_eq(st_checkcache_save(&c), 0);
    st_checkcache_free(&c);
    ck_assert_int_eq(st_checkcache_load(&c, p.data), 0);
    const st_check_entry *e = st_checkcache_get(&c, "pkg/mod.py", k2, "py A");
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->passed, 0);
    ck_assert_str_eq(e->reason, "ValueError: x");
    ck_assert_ptr_null(st_checkcache_get(&c, "pkg/mod.py", k1, "py A"));
    ck_assert_ptr_null(st_checkcache_get(&c, "pkg/mod.py", k2, "py B"));
    /* an entry whose module is gone is forgotten */
    ck_assert_int_eq(st_checkcache_put(&c, "gone.py", k2, "py A", 1, NULL, NULL, 5), 0);
    st_checkcache_prune(&c, p.root);
    ck_assert_ptr_null(st_checkcache_get(&c, "gone.py", k2, "py A"));
    ck_assert_ptr_nonnull(st_checkcache_get(&c, "pkg/mod.py", k2, "py A"));
    st_checkcache_free(&c);

    char *file = st_path_join(p.data, ST_CHECK_CACHE_FILE);
    unit_write(p.data, ST_CHECK_CACHE_FILE, "{\"version\": 1, \"modules\": [");
    unit_capture cap;
    unit_capture_begin(&cap);
    ck_assert_int_eq(st_checkcache_load(&c, p.data), 0);
    ck_assert_int_eq(c.readonly, 1);
    ck_assert_int_eq(st_checkcache_put(&c, "pkg/mod.py", k2, "py A", 1, NULL, NULL, 6), 0);
    st_checkcache_save(&c);
    char *log = unit_capture_end(&cap);
    ck_assert_ptr_nonnull(strstr(log, ST_CHECK_CACHE_FILE));
    ck_assert_ptr_nonnull(strstr(log, "line 1"));
    free(log);
    char *text = NULL;
    ck_assert_int_eq(st_read_file(file, 1 << 20, &text, NULL), 0);
    ck_assert_str_eq(text, "{\"version\": 1, \"modules\": [");
    free(text);
    st_checkcache_free(&c);
    free(file);
    free(k1);
    free(k2);
    free(other);
    free(other2);
    project_free(&p);
}
END_TEST

/* Legacy modules are redundant for the original's readers; a check keeps discovery's reason. */
START_TEST(legacy_is_redundant_and_reasons_are_kept)
{
    static const char *const files[] = {"old.py", "good.py", NULL};
    project p;
    project_new(&p, files);
    st_orphan_cache c;
    ck_assert_int_eq(st_orphans_load(&c, p.root, p.data), 0);
    st_orphan_update u = {.path = "old.py", .classification = "legacy", .reason = "legacy marker"};
    ck_assert_int_eq(st_orphans_merge(&c, &u), 0);
    st_orphan_update g = {.path = "good.py", .classification = "candidate", .reason = "orphan"};
    ck_assert_int_eq(st_orphans_merge(&c, &g), 0);
    ck_assert_int_eq(st_orphans_mark(&c, "good.py", 1, NULL), 0);
    ck_assert_int_eq(st_orphans_save(&c), 0);
    st_orphans_free(&c);
    ck_assert_int_eq(st_orphans_load(&c, p.root, p.data), 0);
    ck_assert_int_eq(st_orphans_find(&c, "old.py")->redundant, 1);
    ck_assert_str_eq(st_orphans_find(&c, "good.py")->classification, "passed");
    ck_assert_str_eq(st_orphans_find(&c, "good.py")->reason, "orphan");
    st_orphans_free(&c);
    project_free(&p);
}
END_TEST

static Suite *orphans_suite(void)
{
    Suite *s = suite_create("orphans");
    TCase *tc = tcase_create("files");
    tcase_add_test(tc, legacy_list_form_is_read_and_rewritten_as_a_dict);
    tcase_add_test(tc, dict_form_round_trips_sorted_with_two_spaces);
    tcase_add_test(tc, entries_whose_file_is_gone_are_dropped);
    tcase_add_test(tc, escaping_paths_are_rejected_and_the_file_kept);
    tcase_add_test(tc, malformed_file_is_reported_and_left_byte_for_byte);
    tcase_add_test(tc, save_is_atomic_and_creates_the_data_dir);
    tcase_add_test(tc, merge_mark_and_to_test);
    tcase_add_test(tc, clean_orphans_removes_integrated_and_their_helpers);
    tcase_add_test(tc, absent_files_are_empty);
    tcase_add_test(tc, rules_test_code_and_orphan_exclude);
    tcase_add_test(tc, rules_know_module_map);
    tcase_add_test(tc, check_cache_keys_and_files);
    tcase_add_test(tc, legacy_is_redundant_and_reasons_are_kept);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    st_log_set_level(ST_LOG_WARNING);
    return unit_run(orphans_suite());
}
