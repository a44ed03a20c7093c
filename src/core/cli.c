/* The command line (spec §1): global options, then a command and its options. */
#include "config.h"

#include "cli.h"

#include "log.h"
#include "pipeline.h"
#include "settings.h"

#include <getopt.h>
#include <selftest/plugin.h>
#include <selftest/version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_USAGE 2

static const char usage_main[] =
    "Usage: selftest-core [-c FILE] [-v|-q] [--plugin-dir DIR] COMMAND [OPTIONS] [PATH...]\n"
    "\n"
    "Runs a Python project's pytest suite and reports on it.\n"
    "\n"
    "Commands:\n"
    "  run [PATH...]    one cycle: discover, run the tests, classify, export\n"
    "  plugins          list the plugins the configuration loads\n"
    "\n"
    "Global options:\n"
    "  -c, --config FILE      libconfig file (default " ST_SYSCONFDIR "/selftest/selftest.conf,\n"
    "                         then ./selftest.conf)\n"
    "  -v, --verbose          more messages (twice for debug)\n"
    "  -q, --quiet            errors only\n"
    "      --plugin-dir DIR   search plugins here instead of the installed dir (repeatable;\n"
    "                         also SELF_TEST_PLUGIN_PATH, colon-separated)\n"
    "  -h, --help             this help; COMMAND --help for a command's options\n"
    "  -V, --version          version and plugin ABI\n"
    "\n"
    "Exit status: 0 all tests passed, 1 a test or batch failed, 2 usage or configuration error,\n"
    "3 infrastructure error. See selftest-core(1).\n";

static const char usage_run[] =
    "Usage: selftest-core [GLOBAL OPTIONS] run [OPTIONS] [PATH...]\n"
    "\n"
    "Runs pytest over each PATH as one batch (default: the config's paths, else tests/ if it\n"
    "exists, else the project root). Batches run concurrently under the worker budget.\n"
    "\n"
    "Options (flag > environment > config file > default):\n"
    "  --workers N            total parallelism (SELF_TEST_WORKERS; default: CPUs)\n"
    "  --pytest-args STR      options for every batch, shell-split (SELF_TEST_ARGS)\n"
    "  --timeout SECONDS      per-batch timeout (SELF_TEST_TIMEOUT; default 300)\n"
    "  --retries N            retries of infrastructure failures and timeouts\n"
    "                         (SELF_TEST_RETRIES; default 1)\n"
    "  --report-dir DIR       where failure reports go (SELF_TEST_REPORT_DIR)\n"
    "  --coverage, --no-coverage\n"
    "                         measure coverage with pytest-cov (config 'coverage')\n"
    "  --json                 stream one JSON line per finished batch, then the results\n"
    "  -h, --help             this help\n";

static const char usage_plugins[] =
    "Usage: selftest-core [GLOBAL OPTIONS] plugins [--json]\n"
    "\n"
    "Loads and checks every plugin the configuration names (the runtime first) and lists\n"
    "kind, name, version, plugin ABI and file. Nothing is started.\n";

enum {
    OPT_PLUGIN_DIR = 256,
    OPT_WORKERS,
    OPT_PYTEST_ARGS,
    OPT_TIMEOUT,
    OPT_RETRIES,
    OPT_REPORT_DIR,
    OPT_COVERAGE,
    OPT_NO_COVERAGE,
    OPT_JSON,
};

typedef struct cli_opts {
    const char *config;
    int verbosity;
    st_strv plugin_dirs;
    const char *workers, *pytest_args, *timeout, *retries, *report_dir;
    int coverage; /* -1 unset */
    int json;
} cli_opts;

static int parse_global(int argc, char **argv, cli_opts *o, int *cmd_index)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"plugin-dir", required_argument, NULL, OPT_PLUGIN_DIR},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+c:vqhV", longopts, NULL)) != -1) {
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
        case OPT_PLUGIN_DIR: {
            char *abs = st_path_absolute(NULL, optarg);
            st_strv_push_owned(&o->plugin_dirs, abs);
            break;
        }
        case 'h':
            fputs(usage_main, stdout);
            return 0;
        case 'V':
            printf("selftest-core %s (plugin ABI %u.%u)\n", ST_VERSION_STRING, ST_ABI_MAJOR,
                   ST_ABI_MINOR);
            return 0;
        default:
            if (optopt)
                fprintf(stderr, "selftest-core: option -%c: %s\n", optopt,
                        strchr("c", optopt) ? "needs an argument" : "unknown option");
            else
                fprintf(stderr, "selftest-core: unknown or incomplete option '%s'\n",
                        argv[optind - 1]);
            fputs("Try 'selftest-core --help'.\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs("selftest-core: no command given\n", stderr);
        fputs(usage_main, stderr);
        return EXIT_USAGE;
    }
    *cmd_index = optind;
    return -1;
}

/* Parses the run command's options; positional paths go to paths. */
static int parse_run(int argc, char **argv, cli_opts *o, st_strv *paths)
{
    static const struct option longopts[] = {
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"pytest-args", required_argument, NULL, OPT_PYTEST_ARGS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"retries", required_argument, NULL, OPT_RETRIES},
        {"report-dir", required_argument, NULL, OPT_REPORT_DIR},
        {"coverage", no_argument, NULL, OPT_COVERAGE},
        {"no-coverage", no_argument, NULL, OPT_NO_COVERAGE},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 0; /* full re-initialisation of getopt (glibc) */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1 || optind < argc) {
        if (c == -1) {
            /* a positional path; go on parsing options after it */
            st_strv_push(paths, argv[optind++]);
            continue;
        }
        switch (c) {
        case OPT_WORKERS:
            o->workers = optarg;
            break;
        case OPT_PYTEST_ARGS:
            o->pytest_args = optarg;
            break;
        case OPT_TIMEOUT:
            o->timeout = optarg;
            break;
        case OPT_RETRIES:
            o->retries = optarg;
            break;
        case OPT_REPORT_DIR:
            o->report_dir = optarg;
            break;
        case OPT_COVERAGE:
            o->coverage = 1;
            break;
        case OPT_NO_COVERAGE:
            o->coverage = 0;
            break;
        case OPT_JSON:
            o->json = 1;
            break;
        case 'h':
            fputs(usage_run, stdout);
            return 0;
        default:
            fprintf(stderr, "selftest-core run: %s '%s'\nTry 'selftest-core run --help'.\n",
                    optopt ? "option needs an argument:" : "unknown option",
                    argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    return -1;
}

static int apply_cli(st_settings *s, const cli_opts *o, st_strv *paths)
{
    if (o->plugin_dirs.n) {
        st_strv_free(&s->plugin_path);
        for (size_t i = 0; i < o->plugin_dirs.n; i++)
            st_strv_push(&s->plugin_path, o->plugin_dirs.v[i]);
    }
    if (o->workers && st_set_uint(&s->workers, o->workers, 1, "option --workers") < 0)
        return -1;
    if (o->pytest_args && st_set_pytest_args(s, o->pytest_args, "option --pytest-args") < 0)
        return -1;
    if (o->timeout && st_set_seconds(&s->timeout_s, o->timeout, "option --timeout") < 0)
        return -1;
    if (o->retries && st_set_uint(&s->retries, o->retries, 0, "option --retries") < 0)
        return -1;
    if (o->report_dir) {
        char *abs = st_path_absolute(NULL, o->report_dir);
        if (!abs)
            return -1;
        free(s->report_dir);
        s->report_dir = abs;
    }
    if (o->coverage >= 0)
        s->coverage = o->coverage;
    if (paths->n) {
        st_strv_free(&s->paths);
        s->paths = *paths;
        memset(paths, 0, sizeof(*paths));
        s->paths_from_cli = 1;
    }
    return 0;
}

static int should_stop(void)
{
    return st_cli_stop_requested();
}

int st_cli_main(int argc, char **argv)
{
    cli_opts o = {.coverage = -1};
    st_strv paths = {0};
    st_settings s;
    int cmd_index = 0, rc;
    int settings_ready = 0;

    rc = parse_global(argc, argv, &o, &cmd_index);
    if (rc >= 0)
        goto out;
    st_log_set_level(o.verbosity < 0    ? ST_LOG_ERROR
                     : o.verbosity == 0 ? ST_LOG_WARNING
                     : o.verbosity == 1 ? ST_LOG_INFO
                                        : ST_LOG_DEBUG);
    const char *cmd = argv[cmd_index];
    int sub_argc = argc - cmd_index;
    char **sub_argv = argv + cmd_index;
    enum { CMD_RUN, CMD_PLUGINS } which;
    if (strcmp(cmd, "run") == 0) {
        which = CMD_RUN;
        rc = parse_run(sub_argc, sub_argv, &o, &paths);
    } else if (strcmp(cmd, "plugins") == 0) {
        which = CMD_PLUGINS;
        rc = -1;
        for (int i = 1; i < sub_argc; i++) {
            if (strcmp(sub_argv[i], "--help") == 0 || strcmp(sub_argv[i], "-h") == 0) {
                fputs(usage_plugins, stdout);
                rc = 0;
                break;
            } else if (strcmp(sub_argv[i], "--json") == 0) {
                o.json = 1;
            } else {
                fprintf(stderr, "selftest-core plugins: unexpected argument '%s'\n", sub_argv[i]);
                rc = EXIT_USAGE;
                break;
            }
        }
    } else {
        fprintf(stderr, "selftest-core: unknown command '%s'\nTry 'selftest-core --help'.\n", cmd);
        rc = EXIT_USAGE;
        goto out;
    }
    if (rc >= 0)
        goto out;

    rc = EXIT_USAGE;
    if (st_settings_init(&s) < 0)
        goto out;
    settings_ready = 1;
    if (st_settings_load_file(&s, o.config) < 0 || st_settings_load_env(&s) < 0 ||
        apply_cli(&s, &o, &paths) < 0 || st_settings_finish(&s) < 0)
        goto out;

    if (which == CMD_PLUGINS) {
        rc = st_pipeline_list_plugins(&s, o.json);
    } else {
        st_pipeline_opts po = {
            .json = o.json,
            .progress = !o.json && isatty(STDOUT_FILENO) && o.verbosity >= 0,
            .color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR"),
            .should_stop = should_stop,
        };
        rc = st_pipeline_run(&s, &po);
    }
out:
    if (settings_ready)
        st_settings_free(&s);
    st_strv_free(&o.plugin_dirs);
    st_strv_free(&paths);
    return rc;
}
