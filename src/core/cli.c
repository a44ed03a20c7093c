/* SPDX-License-Identifier: MIT */
/* The command line (docs/spec.md §1): global options, then a command and its options. */
#include "config.h"

#include "cli.h"

#include "exitstatus.h"
#include "htmlreport.h"
#include "flakycmd.h"
#include "log.h"
#include "pipeline.h"
#include "plugins.h"
#include "sdnotify.h"
#include "signals.h"
#include "settings.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <selftest/plugin.h>
#include <selftest/version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage_main[] =
    "Usage: selftest-core [-c FILE] [-v|-q] [--plugin-dir DIR] COMMAND [OPTIONS] [PATH...]\n"
    "\n"
    "Runs a Python project's pytest suite and reports on it.\n"
    "\n"
    "Commands:\n"
    "  run [PATH...]            one cycle: discover, run the tests, classify, export\n"
    "  run-scheduled [PATH...]  run every --interval seconds until SIGTERM/SIGINT\n"
    "  discover [PATH...]       only discovery: test batches, orphan and isolated modules\n"
    "  cleanup                  remove stale containers of interrupted runs\n"
    "  report                   print the newest failure report\n"
    "  html [--out DIR]         write an HTML report of the recent cycles from metrics.db\n"
    "  flaky                    flaky tests by score; edit the quarantine file\n"
    "  plugins                  list the plugins the configuration loads\n"
    "\n"
    "Global options:\n"
    "  -c, --config FILE      libconfig file (default " ST_SYSCONFDIR "/selftest/selftest.conf,\n"
    "                         then ./selftest.conf)\n"
    "  -v, --verbose          more messages (twice for debug)\n"
    "  -q, --quiet            errors only\n"
    "      --plugin-dir DIR   search plugins here before the system plugin dir (repeatable;\n"
    "                         also SELF_TEST_PLUGIN_PATH, colon-separated)\n"
    "      --check-config     load the configuration and every plugin's settings (and a\n"
    "                         COMMAND's options, if one is given), run and start nothing,\n"
    "                         and exit 0 (valid) or 2 (the error is printed)\n"
    "  -h, --help             this help; COMMAND --help for a command's options\n"
    "  -V, --version          version and plugin ABI\n"
    "\n"
    "Exit status: 0 all tests passed, 1 a test or batch failed (report: no report), 2 usage or\n"
    "configuration error, 3 infrastructure error (also run stopped by SIGTERM/SIGINT).\n";

static const char usage_run[] =
    "Usage: selftest-core [GLOBAL OPTIONS] %s [OPTIONS] [PATH...]\n"
    "\n"
    "%s"
    "\n"
    "Options (flag > environment > config file > default):\n"
    "  --workers N              total parallelism (SELF_TEST_WORKERS; default: CPUs)\n"
    "  --pytest-args STR        options for every batch, shell-split (SELF_TEST_ARGS)\n"
    "  --timeout SECONDS        per-batch timeout (SELF_TEST_TIMEOUT; default 300)\n"
    "  --retries N              retries of infrastructure failures and timeouts\n"
    "                           (SELF_TEST_RETRIES; default 1, at most 20; waits 0.1 s,\n"
    "                           doubling, at most 30 s between attempts)\n"
    "  --rerun-failures N       run each failed test again alone up to N times; one that\n"
    "                           then passes is flaky, not failed (SELF_TEST_RERUN_FAILURES;\n"
    "                           default 1, at most 10; 0: no reruns)\n"
    "  --report-dir DIR         where failure reports go (SELF_TEST_REPORT_DIR)\n"
    "  --history FILE           append each cycle to FILE (JSON array; .db: SQLite)\n"
    "  --junit-xml FILE         write each cycle's results as JUnit XML to FILE, replacing it\n"
    "                           (SELF_TEST_JUNIT_XML; config 'junit_xml')\n"
    "  --metrics-port PORT      serve Prometheus metrics (SELF_TEST_METRICS_PORT)\n"
    "  --coverage, --no-coverage  measure coverage with pytest-cov (config 'coverage')\n"
    "  --use-container          run batches in containers (runtime docker unless configured)\n"
    "  --container-runtime R    docker, podman or swarm\n"
    "  --container-image IMAGE  the image batches run in\n"
    "  --docker-host URL        the engine (beats DOCKER_HOST, CONTAINER_HOST); repeated: run\n"
    "                           on every engine named (replaces container.hosts)\n"
    "  --shards N|auto          split every test path into N shards by test file (auto:\n"
    "                           shard_seconds each by recorded durations; SELF_TEST_SHARDS)\n"
    "  --shard-seconds S        target duration of an auto shard (SELF_TEST_SHARD_SECONDS;\n"
    "                           default 60)\n"
    "  --[no-]include-orphans, --[no-]discover-orphans, --refresh-orphans,\n"
    "  --[no-]auto-include-isolated, --[no-]recursive-include (--recursive-orphans),\n"
    "  --[no-]recursive-isolated, --clean-orphans, --include-redundant\n"
    "                           orphan handling (see selftest.conf(5))\n"
    "  --pythonpath DIRS        import roots, ':'-separated, relative to the project root;\n"
    "                           prepended to PYTHONPATH, source roots of the import graph\n"
    "                           (SELF_TEST_PYTHONPATH; config 'pythonpath')\n"
    "  --json                   stream one JSON line per finished batch, then the results\n"
    "%s"
    "  -h, --help               this help\n";

static const char run_text[] =
    "Runs pytest over each PATH as one batch (default: the config's paths, else the testpaths\n"
    "of the project's pytest configuration, else tests/ if it exists, else the project root).\n"
    "A PATH may be a pytest node id (tests/test_x.py::TestC::test_f[1]): that node alone is\n"
    "its own batch. Batches run concurrently under the worker budget.\n";
static const char run_opts[] =
    "  --changed[=REV]          run only the test files a change can affect: files changed\n"
    "                           (in git, uncommitted and untracked ones included) since the\n"
    "                           commit of the last passing run (else HEAD; REV: that\n"
    "                           revision) in their import closure, changed test files, and\n"
    "                           the tests that failed since the last passing run; a change to\n"
    "                           a conftest.py, pytest's configuration or a file the import\n"
    "                           graph cannot place runs everything\n"
    "  --changed-first[=REV]    run everything, the test files --changed selects first\n"
    "  --explain                with --changed/--changed-first: print why each test file was\n"
    "                           selected (the changed file and the import chain)\n";
static const char sched_text[] =
    "Runs a cycle every --interval seconds (default 86400) until SIGTERM or SIGINT, serving\n"
    "metrics between and during cycles. SIGHUP re-reads the configuration at the next cycle\n"
    "boundary. Stale containers are cleaned up at start and at exit.\n";
static const char sched_opts[] =
    "  --interval SECONDS       time between the starts of two cycles (default 86400)\n";

static const char usage_plugins[] =
    "Usage: selftest-core [GLOBAL OPTIONS] plugins [--json] [--check]\n"
    "\n"
    "Loads and checks every plugin the configuration names (the runtime first) and lists\n"
    "kind, name, version, plugin ABI and file. Nothing is started. --check also lets every\n"
    "plugin validate its settings (as the global --check-config does).\n";

static const char usage_cleanup[] =
    "Usage: selftest-core [GLOBAL OPTIONS] cleanup [--container-runtime R] [--docker-host URL]\n"
    "                     [--retries N] [--max-age SECONDS]\n"
    "\n"
    "Removes containers labelled menace_self_test=1 whose owning process is gone or that are\n"
    "older than --max-age (config max_age, default 86400); never a live run's.\n";

static const char usage_discover[] =
    "Usage: selftest-core [GLOBAL OPTIONS] discover [-v] [--orphans] [--isolated] [--json]\n"
    "                     [--[no-]recursive-include] [--[no-]recursive-isolated]\n"
    "                     [--refresh-orphans] [--pythonpath DIRS] [PATH...] [--deps MODULE...]\n"
    "\n"
    "Runs only the discover stage: the test batches, the orphan modules (no test reaches them)\n"
    "and the isolated modules (nothing imports them), with their parents and classification.\n"
    "Updates orphan_modules.json and orphan_classifications.json in the data dir.\n"
    "  --orphans      scan for orphans (the default unless the config turns it off)\n"
    "  --isolated     also list isolated modules and their helpers\n"
    "  --deps M...    print every project module each repo-relative module M imports,\n"
    "                 directly or not (words after --deps are modules)\n"
    "  -v             also list the files that are not orphans by rule (test code,\n"
    "                 orphan_exclude) with the rule that excluded each\n"
    "  --json         one JSON object: batches, modules, orphans, isolated, excluded, deps\n";

static const char usage_flaky[] =
    "Usage: selftest-core [GLOBAL OPTIONS] flaky [--json]\n"
    "       selftest-core [GLOBAL OPTIONS] flaky --quarantine NODEID --reason TEXT\n"
    "       selftest-core [GLOBAL OPTIONS] flaky --release NODEID\n"
    "\n"
    "Lists the tests whose flakiness score over the last flaky_window runs of metrics.db is\n"
    "above flaky_threshold (score, flaky runs, flips, last flake, the last failure message),\n"
    "then the quarantine file. A quarantined test still runs and is reported, but its failures\n"
    "never change the exit status nor count as regressions.\n"
    "  --quarantine NODEID  add the test to the quarantine file (quarantine_file, default\n"
    "                       DATA_DIR/quarantine.json), with --reason TEXT and today's date\n"
    "  --release NODEID     remove it\n"
    "  --json               one JSON object: window, threshold, tests, quarantine\n";

static const char usage_report[] =
    "Usage: selftest-core [GLOBAL OPTIONS] report [--report-dir DIR] [--path]\n"
    "\n"
    "Prints the newest report_*.json of the report directory (--path: only its file name).\n"
    "Exits 1, saying so on stderr, when there is no report (no run has failed).\n";

static const char usage_html[] =
    "Usage: selftest-core [GLOBAL OPTIONS] html [--out DIR] [--cycles N]\n"
    "\n"
    "Writes DIR/index.html (default <data>/html), a self-contained page (inline CSS and SVG,\n"
    "no scripts, nothing fetched) made from the newest N runs of <data>/metrics.db (default\n"
    "30): the last cycle's failures with their tracebacks and output, the batches that failed\n"
    "without a failing test, regressions and fixes, trends of passed and failed tests,\n"
    "duration and coverage, orphan checks and integrations per cycle, the slowest tests.\n"
    "Prints the file's name. Exits 1, saying so on stderr, when no cycle has been recorded.\n"
    "  --out DIR      the directory to write index.html in (created)\n"
    "  --cycles N     how many of the newest cycles the trends cover (1 to 1000)\n";

enum {
    OPT_PLUGIN_DIR = 256,
    OPT_WORKERS,
    OPT_PYTEST_ARGS,
    OPT_TIMEOUT,
    OPT_RETRIES,
    OPT_REPORT_DIR,
    OPT_HISTORY,
    OPT_JUNIT_XML,
    OPT_OUT,
    OPT_CYCLES,
    OPT_METRICS_PORT,
    OPT_COVERAGE,
    OPT_NO_COVERAGE,
    OPT_JSON,
    OPT_INTERVAL,
    OPT_USE_CONTAINER,
    OPT_CONTAINER_RUNTIME,
    OPT_CONTAINER_IMAGE,
    OPT_DOCKER_HOST,
    OPT_SHARDS,
    OPT_SHARD_SECONDS,
    OPT_MAX_AGE,
    OPT_PATH,
    OPT_ORPHANS,
    OPT_ISOLATED,
    OPT_DEPS,
    OPT_CHECK,
    OPT_CHECK_CONFIG,
    OPT_PYTHONPATH,
    OPT_CHANGED,
    OPT_CHANGED_FIRST,
    OPT_EXPLAIN,
    OPT_RERUN_FAILURES,
    OPT_QUARANTINE,
    OPT_REASON,
    OPT_RELEASE,
    OPT_BOOL_BASE = 512, /* + index into bool_flags, + 64 for --no- */
};

/* The orphan switches: --NAME sets 1, --no-NAME sets 0. */
static const struct {
    const char *name;
    size_t offset;
    int negatable;
} bool_flags[] = {
    {"include-orphans", offsetof(st_settings, include_orphans), 1},
    {"discover-orphans", offsetof(st_settings, discover_orphans), 1},
    {"auto-include-isolated", offsetof(st_settings, auto_include_isolated), 1},
    {"recursive-include", offsetof(st_settings, recursive_orphans), 1},
    {"recursive-orphans", offsetof(st_settings, recursive_orphans), 1},
    {"recursive-isolated", offsetof(st_settings, recursive_isolated), 1},
    {"clean-orphans", offsetof(st_settings, clean_orphans), 0},
    {"include-redundant", offsetof(st_settings, include_redundant), 0},
    {"refresh-orphans", offsetof(st_settings, refresh_orphans), 0},
};
#define N_BOOL_FLAGS (sizeof(bool_flags) / sizeof(bool_flags[0]))

typedef struct cli_opts {
    const char *config;
    int verbosity;
    st_strv plugin_dirs;
    const char *workers, *pytest_args, *timeout, *retries, *report_dir, *history;
    const char *junit_xml, *out_dir, *cycles;
    const char *metrics_port, *interval, *container_runtime, *container_image;
    st_strv docker_hosts;
    const char *shards, *shard_seconds;
    const char *max_age;
    const char *pythonpath;
    int coverage; /* -1 unset */
    int use_container;
    int json;
    int path_only;
    int orphans, isolated, deps_mode, check;
    int changed, changed_first, explain;
    const char *changed_rev;
    const char *rerun_failures, *quarantine, *reason, *release;
    st_strv deps;
    int bools[N_BOOL_FLAGS]; /* -1 unset */
} cli_opts;

/* Spellings of the original service that this CLI does not take, each with what replaces it;
 * an unknown option or command is looked up here before the bare "unknown ..." message. */
static const struct {
    int is_command; /* a command name, not an option */
    const char *spelling, *instead;
} legacy_spellings[] = {
    {0, "--ephemeral",
     "batches already run in throw-away containers, removed whatever happens: use "
     "--use-container (or runtime = \"docker\" / \"podman\" in the config)"},
    {0, "--no-ephemeral",
     "containers are never kept after their batch; to run without containers use the host "
     "runtime (the default: runtime = \"host\", no --use-container)"},
    {0, "--state",
     "there is no separate state file: caches, metrics.db and the lock live in the data dir "
     "(data_dir, SANDBOX_DATA_DIR); --history FILE keeps one entry per cycle"},
    {0, "--test-redundant",
     "use --include-redundant (config include_redundant, SELF_TEST_INCLUDE_REDUNDANT or "
     "SANDBOX_TEST_REDUNDANT)"},
    {0, "--cron",
     "use --interval SECONDS (config interval), or run `selftest-core run` from the systemd "
     "timer conf/systemd/selftest-core-run.timer"},
    {0, "--no-container",
     "the host runtime is the default: leave out --use-container and --container-runtime "
     "(config runtime = \"host\")"},
    {1, "manual", "use `selftest-core run` (one cycle, now)"},
};

/* Prints what replaces a legacy spelling and returns 1, or returns 0 when arg is not one.
 * command: the command the option came after (NULL before any), or "" for a command name. */
static int legacy_spelling(const char *command, const char *arg)
{
    size_t len = strcspn(arg, "=");
    for (size_t i = 0; i < sizeof(legacy_spellings) / sizeof(legacy_spellings[0]); i++) {
        if (legacy_spellings[i].is_command != (command && !command[0]) ||
            strlen(legacy_spellings[i].spelling) != len ||
            strncmp(legacy_spellings[i].spelling, arg, len) != 0)
            continue;
        st_log_raw(ST_LOG_ERROR,
                   "selftest-core%s%s: '%.*s' is the original service's %s, not one of "
                   "selftest-core: %s\n",
                   command && command[0] ? " " : "", command && command[0] ? command : "", (int)len,
                   arg, legacy_spellings[i].is_command ? "command" : "option",
                   legacy_spellings[i].instead);
        return 1;
    }
    return 0;
}

/* Parses the global options. ST_OK to go on (*done: --help or --version printed, nothing more
 * to do), or ST_ERR_INVALID (a usage error, printed). */
static int parse_global(int argc, char **argv, cli_opts *o, int *cmd_index, int *done)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"plugin-dir", required_argument, NULL, OPT_PLUGIN_DIR},
        {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    optind = 1;
    /* ':' first: a missing value is told apart from an unknown option (':' vs '?') */
    while ((c = getopt_long(argc, argv, "+:c:vqhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'v':
            o->verbosity++;
            break;
        case 'q':
            o->verbosity = -1;
            break;
        case OPT_PLUGIN_DIR:
            st_strv_push_owned(&o->plugin_dirs, st_path_absolute(NULL, optarg));
            break;
        case OPT_CHECK_CONFIG:
            o->check = 2; /* like `plugins --check`, without a command */
            break;
        case 'h':
            fputs(usage_main, stdout);
            *done = 1;
            return ST_OK;
        case 'V':
            printf("selftest-core %s (plugin ABI %u.%u)\n", ST_VERSION_STRING, ST_ABI_MAJOR,
                   ST_ABI_MINOR);
            *done = 1;
            return ST_OK;
        default:
            if (c != ':' && optopt != 'c' && legacy_spelling(NULL, argv[optind - 1]))
                return ST_ERR_INVALID;
            st_log_raw(ST_LOG_ERROR, "selftest-core: %s '%s'\nTry 'selftest-core --help'.\n",
                       c == ':' ? "option needs an argument:" : "unknown option", argv[optind - 1]);
            return ST_ERR_INVALID;
        }
    }
    if (optind >= argc && o->check == 2) {
        *cmd_index = -1;
        return ST_OK;
    }
    if (optind >= argc) {
        st_log_raw(ST_LOG_ERROR, "selftest-core: no command given\n\n%s", usage_main);
        return ST_ERR_INVALID;
    }
    *cmd_index = optind;
    return ST_OK;
}


typedef enum {
    CMD_RUN,
    CMD_SCHEDULED,
    CMD_DISCOVER,
    CMD_CLEANUP,
    CMD_REPORT,
    CMD_PLUGINS,
    CMD_HTML,
    CMD_FLAKY
} command;

static void print_usage(command cmd)
{
    switch (cmd) {
    case CMD_RUN:
        printf(usage_run, "run", run_text, run_opts);
        break;
    case CMD_SCHEDULED:
        printf(usage_run, "run-scheduled", sched_text, sched_opts);
        break;
    case CMD_DISCOVER:
        fputs(usage_discover, stdout);
        break;
    case CMD_CLEANUP:
        fputs(usage_cleanup, stdout);
        break;
    case CMD_REPORT:
        fputs(usage_report, stdout);
        break;
    case CMD_PLUGINS:
        fputs(usage_plugins, stdout);
        break;
    case CMD_HTML:
        fputs(usage_html, stdout);
        break;
    case CMD_FLAKY:
        fputs(usage_flaky, stdout);
        break;
    }
}

/* Parses a command's options; positional arguments (paths) go to paths. ST_OK to go on (*done:
 * --help printed, nothing more to do), or ST_ERR_INVALID (a usage error, printed). */
static int parse_command(command cmd, int argc, char **argv, cli_opts *o, st_strv *paths,
                         int *done)
{
    struct option longopts[64 + 2 * N_BOOL_FLAGS];
    size_t n = 0;
#define OPT(name, arg, val) (longopts[n++] = (struct option){name, arg, NULL, val})
    OPT("help", no_argument, 'h');
    int runs = cmd == CMD_RUN || cmd == CMD_SCHEDULED;
    int takes_paths = runs || cmd == CMD_DISCOVER;
    if (cmd == CMD_DISCOVER) {
        OPT("orphans", no_argument, OPT_ORPHANS);
        OPT("isolated", no_argument, OPT_ISOLATED);
        OPT("deps", no_argument, OPT_DEPS);
        OPT("json", no_argument, OPT_JSON);
    }
    if (runs || cmd == CMD_DISCOVER) {
        OPT("pythonpath", required_argument, OPT_PYTHONPATH);
        for (size_t i = 0; i < N_BOOL_FLAGS; i++) {
            OPT(bool_flags[i].name, no_argument, OPT_BOOL_BASE + (int)i);
            if (bool_flags[i].negatable) {
                static char names[N_BOOL_FLAGS][48];
                snprintf(names[i], sizeof(names[i]), "no-%s", bool_flags[i].name);
                OPT(names[i], no_argument, OPT_BOOL_BASE + 64 + (int)i);
            }
        }
    }
    if (runs) {
        OPT("workers", required_argument, OPT_WORKERS);
        OPT("pytest-args", required_argument, OPT_PYTEST_ARGS);
        OPT("timeout", required_argument, OPT_TIMEOUT);
        OPT("history", required_argument, OPT_HISTORY);
        OPT("junit-xml", required_argument, OPT_JUNIT_XML);
        OPT("metrics-port", required_argument, OPT_METRICS_PORT);
        OPT("coverage", no_argument, OPT_COVERAGE);
        OPT("no-coverage", no_argument, OPT_NO_COVERAGE);
        OPT("json", no_argument, OPT_JSON);
        OPT("use-container", no_argument, OPT_USE_CONTAINER);
        OPT("container-image", required_argument, OPT_CONTAINER_IMAGE);
        OPT("shards", required_argument, OPT_SHARDS);
        OPT("shard-seconds", required_argument, OPT_SHARD_SECONDS);
        OPT("rerun-failures", required_argument, OPT_RERUN_FAILURES);
    }
    if (cmd == CMD_FLAKY) {
        OPT("quarantine", required_argument, OPT_QUARANTINE);
        OPT("reason", required_argument, OPT_REASON);
        OPT("release", required_argument, OPT_RELEASE);
        OPT("json", no_argument, OPT_JSON);
    }
    if (runs || cmd == CMD_REPORT)
        OPT("report-dir", required_argument, OPT_REPORT_DIR);
    if (runs || cmd == CMD_CLEANUP) {
        OPT("retries", required_argument, OPT_RETRIES);
        OPT("container-runtime", required_argument, OPT_CONTAINER_RUNTIME);
        OPT("docker-host", required_argument, OPT_DOCKER_HOST);
    }
    if (cmd == CMD_SCHEDULED)
        OPT("interval", required_argument, OPT_INTERVAL);
    if (cmd == CMD_RUN) {
        OPT("changed", optional_argument, OPT_CHANGED);
        OPT("changed-first", optional_argument, OPT_CHANGED_FIRST);
        OPT("explain", no_argument, OPT_EXPLAIN);
    }
    if (cmd == CMD_CLEANUP)
        OPT("max-age", required_argument, OPT_MAX_AGE);
    if (cmd == CMD_PLUGINS) {
        OPT("json", no_argument, OPT_JSON);
        OPT("check", no_argument, OPT_CHECK);
    }
    if (cmd == CMD_REPORT)
        OPT("path", no_argument, OPT_PATH);
    if (cmd == CMD_HTML) {
        OPT("out", required_argument, OPT_OUT);
        OPT("cycles", required_argument, OPT_CYCLES);
    }
    OPT(NULL, 0, 0);
#undef OPT
    int c, at;
    optind = 0; /* full re-initialisation of getopt (glibc) */
    opterr = 0;
    /* "+:": stop at the first non-option (paths follow), and tell a missing argument (':')
     * from an unknown option ('?'); discover -v is the same as the global -v (which files are
     * not orphans, and why) */
    const char *shortopts = cmd == CMD_DISCOVER ? "+:hv" : "+:h";
    while ((at = optind ? optind : 1,
            c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1 ||
           optind < argc) {
        if (c == -1 && at < argc && optind == at + 1 && strcmp(argv[at], "--") == 0) {
            /* "--" ends the options: every word after it is an argument, even "-x" or "--" */
            if (!takes_paths && optind < argc) {
                st_log_raw(ST_LOG_ERROR, "selftest-core %s: unexpected argument '%s'\n", argv[0],
                           argv[optind]);
                return ST_ERR_INVALID;
            }
            while (optind < argc)
                st_strv_push(o->deps_mode ? &o->deps : paths, argv[optind++]);
            break;
        }
        if (c == -1) {
            if (!takes_paths) {
                st_log_raw(ST_LOG_ERROR, "selftest-core %s: unexpected argument '%s'\n", argv[0],
                           argv[optind]);
                return ST_ERR_INVALID;
            }
            st_strv_push(o->deps_mode ? &o->deps : paths, argv[optind++]);
            continue;
        }
        if (c >= OPT_BOOL_BASE) {
            int idx = (c - OPT_BOOL_BASE) % 64;
            o->bools[idx] = c - OPT_BOOL_BASE < 64;
            continue;
        }
        switch (c) {
        case OPT_WORKERS: o->workers = optarg; break;
        case OPT_PYTEST_ARGS: o->pytest_args = optarg; break;
        case OPT_TIMEOUT: o->timeout = optarg; break;
        case OPT_RETRIES: o->retries = optarg; break;
        case OPT_REPORT_DIR: o->report_dir = optarg; break;
        case OPT_HISTORY: o->history = optarg; break;
        case OPT_JUNIT_XML: o->junit_xml = optarg; break;
        case OPT_OUT: o->out_dir = optarg; break;
        case OPT_CYCLES: o->cycles = optarg; break;
        case OPT_METRICS_PORT: o->metrics_port = optarg; break;
        case OPT_COVERAGE: o->coverage = 1; break;
        case OPT_NO_COVERAGE: o->coverage = 0; break;
        case OPT_JSON: o->json = 1; break;
        case OPT_INTERVAL: o->interval = optarg; break;
        case OPT_USE_CONTAINER: o->use_container = 1; break;
        case OPT_CONTAINER_RUNTIME: o->container_runtime = optarg; break;
        case OPT_CONTAINER_IMAGE: o->container_image = optarg; break;
        case OPT_DOCKER_HOST: st_strv_push(&o->docker_hosts, optarg); break;
        case OPT_SHARDS: o->shards = optarg; break;
        case OPT_SHARD_SECONDS: o->shard_seconds = optarg; break;
        case OPT_MAX_AGE: o->max_age = optarg; break;
        case OPT_PYTHONPATH: o->pythonpath = optarg; break;
        case OPT_PATH: o->path_only = 1; break;
        case OPT_ORPHANS: o->orphans = 1; break;
        case OPT_ISOLATED: o->isolated = 1; break;
        case OPT_DEPS: o->deps_mode = 1; break;
        case OPT_CHECK: o->check = 1; break;
        case OPT_CHANGED:
        case OPT_CHANGED_FIRST:
            if (optarg && !optarg[0]) {
                st_log_raw(ST_LOG_ERROR,
                           "selftest-core %s: option '%s' needs a revision after '='\n", argv[0],
                           c == OPT_CHANGED ? "--changed" : "--changed-first");
                return ST_ERR_INVALID;
            }
            *(c == OPT_CHANGED ? &o->changed : &o->changed_first) = 1;
            if (optarg)
                o->changed_rev = optarg;
            break;
        case OPT_EXPLAIN: o->explain = 1; break;
        case OPT_RERUN_FAILURES: o->rerun_failures = optarg; break;
        case OPT_QUARANTINE: o->quarantine = optarg; break;
        case OPT_REASON: o->reason = optarg; break;
        case OPT_RELEASE: o->release = optarg; break;
        case 'v': o->verbosity = o->verbosity < 0 ? 1 : o->verbosity + 1; break;
        case 'h':
            print_usage(cmd);
            *done = 1;
            return ST_OK;
        case ':':
            st_log_raw(ST_LOG_ERROR,
                       "selftest-core %s: option needs an argument: '%s'\nTry 'selftest-core "
                       "%s --help'.\n",
                       argv[0], argv[optind - 1], argv[0]);
            return ST_ERR_INVALID;
        default: {
            /* an unknown short option may sit inside a cluster ("-xv"): name the letter */
            char shortopt[3] = {'-', (char)optopt, '\0'};
            const char *what = optopt ? shortopt : argv[optind - 1];
            if (!optopt && legacy_spelling(argv[0], what))
                return ST_ERR_INVALID;
            int global = optopt == 'v' || optopt == 'q' || optopt == 'c' ||
                         strcmp(what, "--verbose") == 0 || strcmp(what, "--quiet") == 0 ||
                         strcmp(what, "--config") == 0 || strncmp(what, "--config=", 9) == 0 ||
                         strcmp(what, "--plugin-dir") == 0 ||
                         strncmp(what, "--plugin-dir=", 13) == 0;
            st_log_raw(ST_LOG_ERROR,
                       "selftest-core %s: unknown option '%s'%s\nTry 'selftest-core %s "
                       "--help'.\n",
                       argv[0], what, global ? " (a global option: put it before the command)" : "",
                       argv[0]);
            return ST_ERR_INVALID;
        }
        }
    }
    return ST_OK;
}

static int apply_cli(st_settings *s, const cli_opts *o, st_strv *paths)
{
    int rc;
    if (o->plugin_dirs.n) {
        st_strv_free(&s->plugin_path);
        for (size_t i = 0; i < o->plugin_dirs.n; i++)
            st_strv_push(&s->plugin_path, o->plugin_dirs.v[i]);
    }
    if (o->workers && (rc = st_set_uint(&s->workers, o->workers, 1, "option --workers")) < 0)
        return rc;
    if (o->workers)
        s->workers_set = 1;
    if (o->pytest_args && (rc = st_set_pytest_args(s, o->pytest_args, "option --pytest-args")) < 0)
        return rc;
    if (o->timeout && (rc = st_set_seconds(&s->timeout_s, o->timeout, "option --timeout")) < 0)
        return rc;
    if (o->retries && (rc = st_set_retries(&s->retries, o->retries, "option --retries")) < 0)
        return rc;
    if (o->shards && (rc = st_set_shards(&s->shards, o->shards, "option --shards")) < 0)
        return rc;
    if (o->shards)
        s->shards_option = 1;
    if (o->shard_seconds &&
        (rc = st_set_seconds(&s->shard_seconds, o->shard_seconds, "option --shard-seconds")) < 0)
        return rc;
    if (o->rerun_failures && (rc = st_set_reruns(&s->rerun_failures, o->rerun_failures,
                                                 "option --rerun-failures")) < 0)
        return rc;
    if (o->interval && (rc = st_set_seconds(&s->interval_s, o->interval, "option --interval")) < 0)
        return rc;
    if (o->max_age && (rc = st_set_seconds(&s->max_age_s, o->max_age, "option --max-age")) < 0)
        return rc;
    if (o->pythonpath && (rc = st_set_pythonpath(s, o->pythonpath, "option --pythonpath")) < 0)
        return rc;
    if (o->metrics_port) {
        long long port;
        if (st_parse_long(o->metrics_port, &port) < 0 || port < 0 || port > 65535) {
            st_error("option --metrics-port: '%s' is not a port number (0-65535)", o->metrics_port);
            return ST_ERR_INVALID;
        }
        s->metrics_port = (long)port;
    }
    if (o->report_dir) {
        char *abs = st_path_absolute(NULL, o->report_dir);
        if (!abs)
            return ST_ERR_NOMEM;
        free(s->report_dir);
        s->report_dir = abs;
    }
    if (o->history) {
        char *abs = st_path_absolute(NULL, o->history);
        if (!abs)
            return ST_ERR_NOMEM;
        free(s->history_file);
        s->history_file = abs;
    }
    if (o->junit_xml) {
        char *abs = st_path_absolute(NULL, o->junit_xml);
        if (!abs)
            return ST_ERR_NOMEM;
        free(s->junit_xml);
        s->junit_xml = abs;
    }
    if (o->coverage >= 0)
        s->coverage = o->coverage;
    if (o->orphans) {
        s->discover_orphans = 1;
        if ((rc = st_settings_given(s, offsetof(st_settings, discover_orphans), ST_GIVEN_OPTION,
                                    "option --orphans")) < 0)
            return rc;
    }
    if (o->isolated) {
        s->auto_include_isolated = 1;
        if ((rc = st_settings_given(s, offsetof(st_settings, auto_include_isolated),
                                    ST_GIVEN_OPTION, "option --isolated")) < 0)
            return rc;
    }
    for (size_t i = 0; i < N_BOOL_FLAGS; i++) {
        if (o->bools[i] < 0)
            continue;
        char where[64];
        snprintf(where, sizeof(where), "option --%s%s", o->bools[i] ? "" : "no-",
                 bool_flags[i].name);
        *(int *)((char *)s + bool_flags[i].offset) = o->bools[i];
        if ((rc = st_settings_given(s, bool_flags[i].offset, ST_GIVEN_OPTION, where)) < 0)
            return rc;
    }
    if (o->container_runtime) {
        if (strcmp(o->container_runtime, "docker") != 0 &&
            strcmp(o->container_runtime, "podman") != 0 &&
            strcmp(o->container_runtime, "swarm") != 0) {
            st_error("option --container-runtime: '%s' is not docker, podman or swarm",
                     o->container_runtime);
            return ST_ERR_INVALID;
        }
        st_set_string(&s->runtime, o->container_runtime);
    } else if (o->use_container && strcmp(s->runtime, "host") == 0) {
        st_set_string(&s->runtime, "docker");
    }
    if (o->container_image &&
        (rc = st_settings_set_group_option(s, "container", "image", o->container_image,
                                           "option --container-image")) < 0)
        return rc;
    if (o->docker_hosts.oom)
        return ST_ERR_NOMEM;
    if (o->docker_hosts.n) {
        /* The engine plugins take DOCKER_HOST / CONTAINER_HOST over the container group's
         * host; the flag beats both, and their messages name the flag. Repeated, it names
         * every engine of the run (container.hosts); once, the one engine. */
        /* URL?workers=N names an engine of hosts, even alone */
        int one = o->docker_hosts.n == 1 && !strstr(o->docker_hosts.v[0], "?workers=");
        const char *other = one ? "hosts" : "host";
        if ((rc = one ? st_settings_set_group_option(s, "container", "host",
                                                     o->docker_hosts.v[0], "option --docker-host")
                      : st_settings_set_group_list_option(
                            s, "container", "hosts", (const char *const *)o->docker_hosts.v,
                            o->docker_hosts.n, "option --docker-host")) < 0 ||
            (rc = st_settings_remove_group_key(s, "container", other)) < 0)
            return rc;
        unsetenv("DOCKER_HOST");
        unsetenv("CONTAINER_HOST");
    }
    if (paths->n) {
        st_strv_free(&s->paths);
        s->paths = *paths;
        memset(paths, 0, sizeof(*paths));
        s->paths_from_cli = 1;
    }
    return ST_OK;
}

static int should_stop(void)
{
    return st_signals_stop_requested();
}

/* run-scheduled's poll (every wait loop of the main thread calls it): also the watchdog ping */
static int scheduled_should_stop(void)
{
    st_notify_watchdog();
    return st_signals_stop_requested();
}

/* ---- report ---------------------------------------------------------------------------------- */

/* `report`: ST_OK (*verdict failed when there is no report to print), or ST_ERR_IO. */
static int cmd_report(const st_settings *s, int path_only, st_verdict *verdict)
{
    DIR *d = opendir(s->report_dir);
    if (!d && errno == ENOENT) {
        st_log_raw(ST_LOG_WARNING,
                   "selftest-core report: no report: %s does not exist (no run has failed "
                   "yet)\n",
                   s->report_dir);
        *verdict = ST_VERDICT_FAILED;
        return ST_OK;
    }
    if (!d) {
        st_error("report dir %s: %s", s->report_dir, strerror(errno));
        return ST_ERR_IO;
    }
    char newest[256] = "";
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        /* report_YYYYmmdd_HHMMSS.json sorts by time */
        if (strncmp(de->d_name, "report_", 7) == 0 && n > 12 &&
            strcmp(de->d_name + n - 5, ".json") == 0 && n < sizeof(newest) &&
            strcmp(de->d_name, newest) > 0)
            snprintf(newest, sizeof(newest), "%s", de->d_name);
    }
    closedir(d);
    if (!newest[0]) {
        st_log_raw(ST_LOG_WARNING,
                   "selftest-core report: no report: no report_*.json in %s (no run has "
                   "failed yet)\n",
                   s->report_dir);
        *verdict = ST_VERDICT_FAILED;
        return ST_OK;
    }
    char *path = st_path_join(s->report_dir, newest), *text = NULL;
    int rc = path ? st_read_file(path, 512u << 20, &text, NULL) : -ENOMEM;
    if (rc < 0) {
        st_error("%s: %s", path ? path : newest, strerror(-rc));
        free(path);
        return rc == -ENOMEM ? ST_ERR_NOMEM : ST_ERR_IO;
    }
    if (path_only)
        printf("%s\n", path);
    else
        fputs(text, stdout);
    free(text);
    free(path);
    return ST_OK;
}

/* ---- run-scheduled --------------------------------------------------------------------------- */

/* Sleeps until the deadline or a stop/reload signal. */
static void wait_until(double deadline)
{
    while (!scheduled_should_stop() && !st_signals_reload_requested()) {
        double left = deadline - st_monotonic();
        if (left <= 0)
            return;
        if (left > 0.2)
            left = 0.2;
        struct timespec ts = {0, (long)(left * 1e9)};
        nanosleep(&ts, NULL);
    }
}

typedef int (*settings_loader)(st_settings *s, void *opaque);

static const char *config_name(const st_settings *s)
{
    return s->config_path ? s->config_path : "the defaults and the environment";
}

/* SIGHUP: builds the configuration afresh and starts its plugins. The old pipeline is closed
 * first (its exporter holds the metrics port); when the new one cannot start, the old
 * configuration is started again and kept. *cur and *p are replaced only on success; *owned is
 * the settings this function allocated (freed when replaced). Returns ST_OK, or the status of
 * the failure when even the old configuration cannot be started again. */
static int reload_config(st_settings **cur, st_settings **owned, st_pipeline **p,
                         settings_loader reload, void *opaque)
{
    st_notify_send("STATUS=reloading the configuration");
    st_settings *fresh = calloc(1, sizeof(*fresh));
    if (!fresh) {
        st_error("run-scheduled: reload refused: out of memory; keeping the running "
                 "configuration");
        return ST_OK;
    }
    if (reload(fresh, opaque) != 0) {
        /* the loader named the file, line and setting */
        st_error("run-scheduled: reload refused: the configuration is invalid (see above); "
                 "keeping the running configuration (%s)", config_name(*cur));
        free(fresh);
        return ST_OK;
    }
    st_pipeline *np = NULL;
    st_pipeline_close(*p);
    *p = NULL;
    int status = st_pipeline_open(fresh, &np);
    if (status == ST_OK) {
        if (*owned) {
            st_settings_free(*owned);
            free(*owned);
        }
        *owned = *cur = fresh;
        *p = np;
        st_warn("run-scheduled: configuration reloaded from %s; it applies from the next "
                "cycle, due in %gs after the last one started", config_name(fresh),
                fresh->interval_s);
        return ST_OK;
    }
    /* the plugin or runtime that failed said why, naming itself */
    st_error("run-scheduled: reload refused: the plugins of %s cannot start (%s; see above); "
             "keeping the running configuration",
             config_name(fresh), st_status_str(status));
    st_settings_free(fresh);
    free(fresh);
    status = st_pipeline_open(*cur, p);
    if (status != ST_OK) {
        st_error("run-scheduled: the previous configuration (%s) cannot start again either; "
                 "stopping", config_name(*cur));
        *p = NULL;
        /* it started before: whatever it says now is the infrastructure's doing */
        return status == ST_ERR_INVALID ? ST_ERR_UNAVAILABLE : status;
    }
    return ST_OK;
}

/* `run-scheduled`: cycles until a stop signal. ST_OK when stopped (its cycles' verdicts are
 * in their results), or the status that stopped it: the first configuration cannot start, or
 * neither a reloaded one nor the previous one can. */
static int cmd_scheduled(st_settings *s, const st_pipeline_opts *po, settings_loader reload,
                         void *opaque)
{
    st_counters counters = {0};
    st_pipeline *p = NULL;
    st_settings *cur = s, *owned = NULL;
    int status = st_pipeline_open(s, &p);
    if (status != ST_OK)
        return status;
    st_info("run-scheduled: a cycle every %gs; SIGTERM or SIGINT stops, SIGHUP reloads",
            s->interval_s);
    if (st_notify_watchdog_usec())
        st_info("run-scheduled: watchdog pings every %.3gs", st_notify_watchdog_usec() / 2e6);
    st_pipeline_cleanup(s, s->max_age_s, &counters, 0, scheduled_should_stop);
    unsigned long long cycle = 0;
    while (!st_signals_stop_requested()) {
        double start = st_monotonic();
        st_verdict verdict = ST_VERDICT_PASSED;
        /* the service is up once its first cycle starts (metrics already served) */
        st_notify_printf("%sSTATUS=cycle %llu running", cycle ? "" : "READY=1\n", cycle + 1);
        cycle++;
        int rc = st_pipeline_cycle(p, po, &counters, &verdict);
        int exit_status = st_exit_status(rc, verdict);
        st_info("run-scheduled: cycle %llu ended with exit status %d", counters.runs, exit_status);
        static const char *const meaning[] = {"passed", "tests failed", "configuration error",
                                              "infrastructure error"};
        time_t next = time(NULL) + (time_t)(start + cur->interval_s - st_monotonic());
        struct tm tm;
        char when[32] = "?";
        if (localtime_r(&next, &tm))
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        if (st_signals_stop_requested())
            st_notify_printf("STATUS=cycle %llu: stopped by a signal", cycle);
        else
            st_notify_printf("STATUS=cycle %llu: %s (exit status %d); next cycle at %s", cycle,
                             exit_status >= 0 && exit_status <= 3 ? meaning[exit_status] : "ended",
                             exit_status, when);
        /* Wait for the next cycle's time. A SIGHUP (during the cycle or the wait) reloads
         * here and the wait goes on: the next cycle starts on schedule (the interval of the
         * configuration in force then), never early because of the signal. */
        while (!st_signals_stop_requested()) {
            if (st_signals_reload_requested()) {
                st_signals_clear_reload();
                status = reload_config(&cur, &owned, &p, reload, opaque);
                if (status != ST_OK)
                    goto out;
                continue;
            }
            if (st_monotonic() >= start + cur->interval_s)
                break;
            wait_until(start + cur->interval_s);
        }
    }
    st_notify_send("STOPPING=1\nSTATUS=stopping");
    st_pipeline_cleanup(cur, cur->max_age_s, &counters, 0, should_stop);
out:
    st_pipeline_close(p);
    st_info("run-scheduled: stopped after %llu cycles", counters.runs);
    if (owned) {
        st_settings_free(owned);
        free(owned);
    }
    return status;
}

/* ---- main ------------------------------------------------------------------------------------ */

typedef struct load_ctx {
    const cli_opts *o;
    const st_strv *paths;
} load_ctx;

/* Builds settings from scratch: defaults, file, environment, options. ST_OK, or the status of
 * the first step that failed (ST_ERR_INVALID: a bad setting, variable or option, logged;
 * ST_ERR_NOMEM); then s is freed. */
static int load_settings(st_settings *s, void *opaque)
{
    load_ctx *lc = opaque;
    st_strv paths = {0};
    for (size_t i = 0; i < lc->paths->n; i++)
        st_strv_push(&paths, lc->paths->v[i]);
    int rc = st_settings_init(s); /* first: s is freed below on any failure */
    if (rc == ST_OK && paths.oom)
        rc = ST_ERR_NOMEM;
    if (rc == ST_OK)
        rc = st_settings_load_file(s, lc->o->config);
    if (rc == ST_OK)
        rc = st_settings_load_env(s);
    if (rc == ST_OK)
        rc = apply_cli(s, lc->o, &paths);
    if (rc == ST_OK)
        rc = st_settings_finish(s);
    st_strv_free(&paths);
    if (rc != ST_OK)
        st_settings_free(s);
    return rc;
}

int st_cli_main(int argc, char **argv)
{
    cli_opts o = {.coverage = -1};
    for (size_t i = 0; i < N_BOOL_FLAGS; i++)
        o.bools[i] = -1;
    st_strv paths = {0};
    st_settings s;
    int cmd_index = 0, done = 0;
    int settings_ready = 0;
    /* what the command came to: a status (below, every function reports ST_OK or a negative
     * st_status) and, when it ran to the end, a verdict; st_exit_status() makes the exit
     * status of the two, here and nowhere else */
    int rc;
    st_verdict verdict = ST_VERDICT_PASSED;

    rc = parse_global(argc, argv, &o, &cmd_index, &done);
    if (rc != ST_OK || done)
        goto out;
    st_log_set_level(o.verbosity < 0    ? ST_LOG_ERROR
                     : o.verbosity == 0 ? ST_LOG_WARNING
                     : o.verbosity == 1 ? ST_LOG_INFO
                                        : ST_LOG_DEBUG);
    static const struct {
        const char *name;
        command cmd;
    } commands[] = {{"run", CMD_RUN},           {"run-scheduled", CMD_SCHEDULED},
                    {"discover", CMD_DISCOVER}, {"cleanup", CMD_CLEANUP},
                    {"report", CMD_REPORT},     {"plugins", CMD_PLUGINS},
                    {"html", CMD_HTML},
                    {"flaky", CMD_FLAKY}};
    const char *name = cmd_index < 0 ? "plugins" : argv[cmd_index];
    int found = -1;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(name, commands[i].name) == 0)
            found = (int)i;
    if (found < 0) {
        rc = ST_ERR_INVALID;
        if (legacy_spelling("", name))
            goto out;
        st_log_raw(ST_LOG_ERROR,
                   "selftest-core: unknown command '%s'\nTry 'selftest-core --help'.\n", name);
        goto out;
    }
    command cmd = commands[found].cmd;
    if (cmd_index >= 0) {
        rc = parse_command(cmd, argc - cmd_index, argv + cmd_index, &o, &paths, &done);
        if (rc != ST_OK || done)
            goto out;
        if (o.verbosity > 0)
            st_log_set_level(o.verbosity == 1 ? ST_LOG_INFO : ST_LOG_DEBUG);
    }

    /* NOTIFY_SOCKET and the watchdog variables are read once and kept from the children */
    st_notify_init();
    load_ctx lc = {&o, &paths};
    rc = load_settings(&s, &lc);
    if (rc != ST_OK)
        goto out;
    settings_ready = 1;
    st_pipeline_opts po = {
        .json = o.json,
        .progress = !o.json && isatty(STDOUT_FILENO) && o.verbosity >= 0,
        .color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR"),
        .should_stop = should_stop,
        .stopped = ST_VERDICT_BROKEN, /* `run` stopped by a signal: exit 3 */
        .changed = o.changed,
        .changed_first = o.changed_first,
        .changed_rev = o.changed_rev,
        .explain = o.explain,
    };
    if (cmd == CMD_RUN && o.changed && o.changed_first) {
        st_log_raw(ST_LOG_ERROR,
                   "selftest-core run: --changed and --changed-first exclude each "
                   "other (the first runs only the affected tests, the second everything, "
                   "those first)\n");
        rc = ST_ERR_INVALID;
        goto out;
    }
    if (cmd == CMD_RUN && o.explain && !o.changed && !o.changed_first) {
        st_log_raw(ST_LOG_ERROR, "selftest-core run: --explain says why --changed or "
                                 "--changed-first chose each test file: give one of them\n");
        rc = ST_ERR_INVALID;
        goto out;
    }
    if (o.check == 2)
        cmd = CMD_PLUGINS; /* --check-config COMMAND: the command line is checked, nothing runs */
    switch (cmd) {
    case CMD_PLUGINS:
        rc = st_plugins_list(&s, o.json, o.check != 0);
        break;
    case CMD_REPORT:
        rc = cmd_report(&s, o.path_only, &verdict);
        break;
    case CMD_HTML: {
        unsigned cycles = ST_HTML_CYCLES;
        int no_runs = 0;
        if (o.cycles && (st_set_uint(&cycles, o.cycles, 1, "option --cycles") < 0 ||
                         cycles > 1000)) {
            if (cycles > 1000)
                st_error("option --cycles: '%s' is more than 1000", o.cycles);
            rc = ST_ERR_INVALID;
            break;
        }
        rc = st_html_report(&s, o.out_dir, cycles, &no_runs);
        if (rc == ST_OK && no_runs)
            verdict = ST_VERDICT_FAILED;
        break;
    }
    case CMD_FLAKY: {
        st_flaky_opts fo = {o.quarantine, o.reason, o.release, o.json};
        rc = st_flaky_command(&s, &fo);
        break;
    }
    case CMD_CLEANUP: {
        st_counters counters = {0};
        rc = st_pipeline_cleanup(&s, s.max_age_s, &counters, 1, should_stop);
        break;
    }
    case CMD_SCHEDULED:
        po.progress = 0;
        po.should_stop = scheduled_should_stop;
        po.stopped = ST_VERDICT_PASSED; /* a stopped daemon exits 0: its last cycle says so */
        rc = cmd_scheduled(&s, &po, load_settings, &lc);
        break;
    case CMD_DISCOVER: {
        st_pipeline *p = NULL;
        rc = st_pipeline_open(&s, &p);
        if (rc == ST_OK)
            rc = st_pipeline_discover(p, o.json, &o.deps);
        st_pipeline_close(p);
        break;
    }
    case CMD_RUN: {
        st_counters counters = {0};
        st_pipeline *p = NULL;
        rc = st_pipeline_open(&s, &p);
        if (rc == ST_OK)
            rc = st_pipeline_cycle(p, &po, &counters, &verdict);
        st_pipeline_close(p);
        break;
    }
    }
out:
    if (settings_ready)
        st_settings_free(&s);
    st_strv_free(&o.plugin_dirs);
    st_strv_free(&o.docker_hosts);
    st_strv_free(&o.deps);
    st_strv_free(&paths);
    return st_exit_status(rc, verdict);
}
