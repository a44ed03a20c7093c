/* SPDX-License-Identifier: MIT */
/* The run's settings: built-in defaults, then the libconfig file, then the environment, then
 * the command line (each later source overrides; docs/spec.md §2). Every error names where the bad
 * value came from: "FILE:LINE", the variable, or the option. */
#ifndef ST_SETTINGS_H
#define ST_SETTINGS_H

#include "util.h"

#include <libconfig.h>
#include <selftest/plugin.h>

typedef struct st_plugin_conf {
    char *kind;      /* "runtime", "discovery", "integrator", "exporter" */
    char *name;      /* file name without extension */
    char *where;     /* "FILE:LINE" of the entry */
    config_setting_t *settings; /* the entry's "settings" group, or NULL */
} st_plugin_conf;

#define ST_DP_SWITCHES 4
/* how a setting was given, weakest first */
enum { ST_GIVEN_DEFAULT = 0, ST_GIVEN_FILE = 1, ST_GIVEN_ENV = 2, ST_GIVEN_OPTION = 3 };

typedef struct st_settings {
    char *config_path;   /* absolute, or NULL when no file was read */
    char *config_dir;
    config_t cfg;        /* kept alive: plugins read their groups from it */
    int cfg_loaded;

    char *project_root;  /* absolute, normalised */
    char *data_dir;
    char *report_dir;
    char *lock_file;
    st_strv paths;       /* test paths as given (relative to cwd, or from the file: to root) */
    /* shards: how many shards a test path is split into by test file (ST_SHARDS_AUTO: enough
     * for shard_seconds each by the recorded durations); shards is the default of every path,
     * path_shards[i] (ST_SHARDS_UNSET: the default) the `{ path = ...; shards = ...; }` entry
     * of path_shard_names[i] in the file (the file's paths; NULL when it has no such entry),
     * which a path on the command line also gets */
    int shards;
    int shards_option;   /* shards came from --shards / SELF_TEST_SHARDS: it beats the entries */
    int *path_shards;
    st_strv path_shard_names;
    double shard_seconds;
    int paths_from_cli;
    unsigned workers;
    int workers_set;     /* workers given by the config file, SELF_TEST_WORKERS or --workers */
    double timeout_s;
    unsigned retries;
    st_strv pytest_args;
    char *python;
    int coverage;
    int record_test_deps; /* whole runs record which functions each test file ran */
    char *runtime;            /* "host", "docker", "podman", or another runtime plugin's suffix */
    char *container_fallback; /* "host" or "fail" */
    int fail_on_orphans;
    /* flaky tests: each failed test run again alone up to rerun_failures times; one that then
     * passes is flaky (fails the cycle only with fail_on_flaky); the flakiness score's window
     * (cycles); the quarantine file (absolute after finish; default <data>/quarantine.json);
     * the threshold `flaky` lists tests above */
    unsigned rerun_failures;
    int fail_on_flaky;
    unsigned flaky_window;
    /* metrics.db keeps the newest keep_runs runs that were not aborted (and the runs after
     * them), plus the newest passing and the newest whole run; 0 keeps every run */
    unsigned keep_runs;
    char *quarantine_file;
    double flaky_threshold;
    st_strv plugin_path;      /* searched before the system plugin dir */
    st_strv plugin_system_path; /* replaces the compiled-in plugin dir when ..._set */
    int plugin_system_path_set; /* plugin_system_path or SELF_TEST_PLUGIN_SYSTEM_PATH given
                                   (an empty one: no system dir) */
    char *support_dir;        /* dir of the bundled pytest plugin */
    double kill_grace_s;
    st_strv skip_dirs;
    /* extra import roots: prepended to PYTHONPATH for batches and orphan checks, and source
     * roots of the import graph. Given relative to the project root; absolute after finish. */
    st_strv pythonpath;
    st_strv pythonpath_rel;   /* the entries inside the root, repo-relative (after finish) */
    char *pythonpath_where;   /* where the list came from, for messages */
    int pythonpath_pytest;    /* the list is pytest's `pythonpath` ini option (no setting given) */
    char *history_file;
    char *junit_xml;          /* the JUnit XML file each cycle rewrites, NULL: none */
    long metrics_port;        /* -1: off */
    double interval_s;
    double lock_timeout_s;    /* how long a second run waits for the lock */
    double max_age_s;         /* cleanup: containers older than this are stale */

    /* orphan handling (docs/spec.md §2) */
    int disable_orphans, include_orphans, discover_orphans, recursive_orphans;
    int auto_include_isolated, recursive_isolated, clean_orphans, include_redundant;
    int refresh_orphans, disable_integration;
    st_strv orphan_exclude;   /* globs of files that are never orphans (replaces the default) */
    double orphan_timeout_s;  /* per import check */
    char *orphan_check_mode;  /* "fork" (one warm interpreter forks per module) or "process" */

    /* discovery-python's switches (discover_orphans, recursive_orphans, auto_include_isolated,
     * recursive_isolated: ST_DP_SWITCHES, in that order) under their old top-level spellings:
     * how each was given (ST_GIVEN_*) and where, for routing them into discovery-python's
     * settings (st_settings_finish) */
    int dp_given[ST_DP_SWITCHES];
    char *dp_where[ST_DP_SWITCHES];
    config_setting_t *dp_default_settings; /* settings of the default-loaded discovery-python
                                              (NULL: nothing routed there) */

    st_plugin_conf *plugins;
    size_t n_plugins;
    int plugins_configured;   /* the file has a `plugins` setting (even an empty one) */
    config_setting_t *runtime_settings; /* "host" or "container" group for the runtime */
} st_settings;

/* Every function here returns ST_OK or a negative st_status: ST_ERR_INVALID for a bad setting,
 * variable, option or config file (logged, naming the file and line, the variable or the
 * option), ST_ERR_NOMEM when memory runs out. */

#define ST_SHARDS_AUTO 0
#define ST_SHARDS_UNSET (-1)
#define ST_SHARDS_MAX 1000
/* Parses a shard count: a whole number 1..ST_SHARDS_MAX or "auto" (a bad one: ST_ERR_INVALID,
 * logged with where). */
int st_set_shards(int *dst, const char *value, const char *where);

/* Notes that the setting at offset (within st_settings) was given (ST_GIVEN_*) at where (copied)
 * when it is one of discovery-python's switches; a no-op for others. ST_ERR_NOMEM on OOM. */
int st_settings_given(st_settings *s, size_t offset, int given, const char *where);
/* Routes discovery-python's switches given by their old spellings into its settings group
 * *group (when NULL and something is routed: a new group new_name in the root). A flag or a
 * variable replaces the plugin's own setting; a top-level setting does not. Only for a
 * discovery-python of ABI 1.5 or later (an older one takes them in the discover options and
 * would refuse the settings). ST_OK, or ST_ERR_NOMEM. */
int st_settings_route_discovery(st_settings *s, config_setting_t **group, const char *new_name);
/* Defaults only; never fails except on OOM (ST_ERR_NOMEM). */
int st_settings_init(st_settings *s);
/* Reads the config file. path NULL: the default locations (sysconfdir, then ./selftest.conf);
 * a missing default file is fine, a missing named file is an error (ST_ERR_INVALID, logged). */
int st_settings_load_file(st_settings *s, const char *path);
/* Applies SELF_TEST_* / SANDBOX_* variables (a bad one: ST_ERR_INVALID, naming the variable). */
int st_settings_load_env(st_settings *s);
/* Fills in what depends on other settings (root, data dir, report dir, lock file); call after
 * the command line was applied. */
int st_settings_finish(st_settings *s);
void st_settings_free(st_settings *s);
/* Sets GROUP.KEY = value in the configuration (creating the group), for options that override
 * a plugin's setting (--container-image). ST_OK or ST_ERR_NOMEM. */
int st_settings_set_group_string(st_settings *s, const char *group, const char *key,
                                 const char *value);
/* The same for a value from the command line: where (a static string, e.g. "option
 * --docker-host") is what plugins' messages about it name instead of FILE:LINE. */
int st_settings_set_group_option(st_settings *s, const char *group, const char *key,
                                 const char *value, const char *where);
/* Removes GROUP.KEY when it is there. ST_OK, or ST_ERR_INTERNAL when libconfig cannot. */
int st_settings_remove_group_key(st_settings *s, const char *group, const char *key);
/* The same for a list of strings (a repeated option: --docker-host). */
int st_settings_set_group_list_option(st_settings *s, const char *group, const char *key,
                                      const char *const *values, size_t n, const char *where);

/* Setters used by the file, env and CLI layers; where names the source for messages. */
int st_set_bool(int *dst, const char *value, const char *where);
int st_set_uint(unsigned *dst, const char *value, unsigned min, const char *where);
/* keep_runs: 0 (every run), or ST_KEEP_RUNS_MIN (metrics.db's ST_HISTORY_RUNS, the runs a batch's
 * recorded duration is looked for in) to 100000, and not below flaky_window. Not given, it is
 * ST_KEEP_RUNS_DEFAULT, or flaky_window when that is larger (ST_KEEP_RUNS_UNSET until finish). */
#define ST_KEEP_RUNS_DEFAULT 100
#define ST_KEEP_RUNS_UNSET UINT_MAX
#define ST_KEEP_RUNS_MIN 10

/* retries: 0 to ST_RETRIES_MAX; more is refused (with a delay capped at ST_RETRY_DELAY_MAX_S,
 * ST_RETRIES_MAX retries already wait about six minutes). */
#define ST_RETRIES_MAX 20
int st_set_retries(unsigned *dst, const char *value, const char *where);
int st_set_seconds(double *dst, const char *value, const char *where);
/* rerun_failures: 0 to ST_RERUNS_MAX reruns of a failed test. */
#define ST_RERUNS_MAX 10
int st_set_reruns(unsigned *dst, const char *value, const char *where);
/* flaky_threshold: a number from 0 to 1. */
int st_set_ratio(double *dst, const char *value, const char *where);
int st_set_pytest_args(st_settings *s, const char *value, const char *where);
int st_set_string(char **dst, const char *value);
/* Without a pythonpath setting, pytest's own `pythonpath` ini option (dirs: as the preflight
 * read it, relative to the project root; inipath: the file, for messages) becomes the import
 * roots: entries that are not directories are skipped with a warning. dirs NULL or empty drops
 * roots adopted earlier (each cycle asks again). A pythonpath setting always wins. ST_OK or
 * ST_ERR_NOMEM. */
int st_settings_adopt_pytest_pythonpath(st_settings *s, const st_strv *dirs, const char *inipath);
/* A colon-separated list of import roots (SELF_TEST_PYTHONPATH, --pythonpath). */
int st_set_pythonpath(st_settings *s, const char *value, const char *where);
/* Replaces the orphan_exclude globs with value split at ':' (empty pieces ignored; ":" alone
 * gives an empty list). Each glob is checked: not empty, not absolute, no ".." component.
 * A bad glob: ST_ERR_INVALID (logged with where). */
int st_set_orphan_exclude(st_settings *s, const char *value, const char *where);
/* The default orphan_exclude globs (NULL-terminated). */
extern const char *const st_default_orphan_exclude[];

/* The plugin kinds by the names the configuration uses ("runtime", "discovery", "integrator",
 * "exporter"): the name of a kind ("unknown" for none), and the kind of a name (ST_OK and *out
 * set, or ST_ERR_INVALID when there is none). */
const char *st_kind_name(st_plugin_kind kind);
int st_kind_from_name(const char *name, st_plugin_kind *out);

#endif
