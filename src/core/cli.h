/* SPDX-License-Identifier: MIT */
/* The command line: global options, commands and their options (docs/spec.md §1). */
#ifndef ST_CLI_H
#define ST_CLI_H

/* Parses argv, loads settings (file < env < options), runs the command and returns the exit
 * status of docs/spec.md §1. */
int st_cli_main(int argc, char **argv);

#endif
