/* SPDX-License-Identifier: MIT */
/* Stop and reload signals (signals.c). */
#ifndef ST_SIGNALS_H
#define ST_SIGNALS_H

/* Installs the handlers of SIGINT and SIGTERM (stop), SIGHUP (reload) and ignores SIGPIPE. A
 * signal sent by a descendant of this process (a test, a module it imports, a process they left)
 * is ignored with a warning on stderr: only the operator's signals stop or reload the run. The
 * sender is looked up in /proc when the handler runs, so a runtime must not reap a process it
 * started while a signal that process sent may still be pending: runtime-host takes pending
 * signals before it reaps (see take_pending_signals there). */
void st_signals_install(void);

/* Polled by the pipeline and the scheduler. */
int st_signals_stop_requested(void);
int st_signals_reload_requested(void);
void st_signals_clear_reload(void);

#endif
