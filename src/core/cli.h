/* SPDX-License-Identifier: MIT */
/* The command line: global options, commands and their options (docs/spec.md §1). */
#ifndef ST_CLI_H
#define ST_CLI_H

/* Parses argv, loads settings (file < env < options), runs the command and returns the exit
 * status of docs/spec.md §1. */
int st_cli_main(int argc, char **argv);

/* Set by the signal handlers in main.c; polled by the pipeline and the scheduler. */
int st_cli_stop_requested(void);
int st_cli_reload_requested(void);
void st_cli_clear_reload(void);

#endif
