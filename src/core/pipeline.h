/* One cycle of the pipeline (discover -> run -> classify -> integrate -> export) and the
 * `plugins` listing. Both return the CLI exit status of spec §1. */
#ifndef ST_PIPELINE_H
#define ST_PIPELINE_H

#include "settings.h"

typedef struct st_pipeline_opts {
    int json;      /* stream JSON lines on stdout */
    int progress;  /* live progress line (stdout is a TTY) */
    int color;
    int (*should_stop)(void); /* polled; non-zero stops the run (signals) */
} st_pipeline_opts;

int st_pipeline_run(st_settings *s, const st_pipeline_opts *o);
int st_pipeline_list_plugins(st_settings *s, int json);

#endif
