/* SPDX-License-Identifier: MIT */
/* engine_multi: a runtime over several engines of one kind (container.hosts, a repeated
 * --docker-host). Each engine is an engine_runtime instance with its own `workers`; execute
 * places a request on the engine that will be free first by the expected durations of what it
 * runs, an engine lost mid-run is taken out of the placement (its batches fail as
 * infrastructure errors, which the core retries on the others) and, when it answers again, the
 * containers this run left there are removed before it takes work again. Without `hosts` it is
 * exactly the one engine of engine_runtime. */
#ifndef ST_ENGINE_MULTI_H
#define ST_ENGINE_MULTI_H

#include "engine_runtime.h"

int em_create(const er_flavor *fl, const st_host *host, st_instance *self,
              const st_config_node *cfg, void **ctx);
void em_destroy(void *ctx);
int em_stop(void *ctx);
int em_probe(void *ctx);
int em_prepare(void *ctx);
int em_execute(void *ctx, const st_exec_request *req, const st_exec_sink *sink,
               st_exec_result *res);
int em_cancel(void *ctx, const char *id);
int em_cleanup_stale(void *ctx, double max_age_s, st_cleanup_report *report);
int em_environment_id(void *ctx, char *buf, size_t len);
unsigned em_slots(void *ctx);

/* "ADDR" or "ADDR?workers=N": the address into addr (at most addr_len), N into *workers (0 when
 * not given). 0, or -1 (a bad workers suffix, an address too long). */
int em_parse_entry(const char *entry, char *addr, size_t addr_len, unsigned *workers);

/* One engine as placement sees it. */
typedef struct em_place_view {
    int down;               /* lost: takes nothing */
    unsigned workers;       /* executions at once (0: 1) */
    unsigned busy;          /* workers in use */
    double load_s;          /* expected seconds of what runs there now, summed */
    unsigned long last_pick; /* when it was last chosen (a sequence number; 0: never) */
} em_place_view;

/* Placement: the engine that, with a request of w workers expected to take `expected` seconds
 * (<= 0: not known), would be done first: its expected load plus the request's, over its
 * workers; then the least busy; then the one chosen least recently, so that engines that are
 * otherwise equal take turns whatever the order and timing of the requests (the longest two
 * shards of a cycle go to two engines even when the second is placed after the first has
 * ended). -1 when no engine has room; *all_down when every engine is lost. */
long em_place(const em_place_view *v, size_t n, unsigned w, double expected, int *all_down);

/* The order in which waiting requests are placed: the longest expected first (an unknown
 * duration, < 0, last), then the one that asked first (the lower arrival number). Whether
 * request a (expected ea, arrival sa) goes before b. The core starts a thread per batch it may
 * run, and they reach execute in any order: without this, two short shards could take both
 * engines while the longest waits (the longest-first order of the core lost to thread timing). */
int em_before(double ea, unsigned long sa, double eb, unsigned long sb);

#endif
