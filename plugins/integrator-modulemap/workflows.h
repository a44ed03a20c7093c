/* SPDX-License-Identifier: MIT */
/* workflows: <data>/workflows.db (SQLite) for integrator-modulemap (docs/spec.md §8.2): a
 * single-step workflow per newly integrated module, and the module appended to the workflows of its
 * group, so later cycles schedule it. Close to menace's WorkflowDB: table `workflows`, column
 * `workflow` = the steps as comma-separated dotted module names. Schema: docs/plugin-guide.md.
 * All changes of one call happen in one transaction (BEGIN IMMEDIATE ... COMMIT): either all of
 * them land or none. Idempotent: a module that already has its own workflow (one whose first
 * step is the module) gets no second one, and a step already in a workflow is not appended again.
 * Not thread-safe: one call at a time per database handle. */
#ifndef ST_MM_WORKFLOWS_H
#define ST_MM_WORKFLOWS_H

#include <stddef.h>

typedef struct wf_db wf_db;

/* One newly integrated module. */
typedef struct wf_item {
    const char *step; /* its dotted name */
    long long group;  /* its group id */
} wf_item;

/* The group id of a step (a dotted name) of an existing workflow, or -1 when unknown. */
typedef long long (*wf_group_fn)(const char *step, void *userdata);

typedef struct wf_stats {
    unsigned created;  /* single-step workflows inserted */
    unsigned appended; /* steps appended to existing workflows */
} wf_stats;

/* Opens (creates) the database and its schema. Returns 0, or -1 with err filled. */
int wf_open(const char *path, wf_db **out, char *err, size_t err_size);

/* Applies items (in the order given) in one transaction. Workflows that existed before the call
 * and have a step in an item's group get the item appended; workflows created by this call are
 * not appended to. Returns 0, or -1 with err filled and nothing changed. */
int wf_apply(wf_db *db, const wf_item *items, size_t n, wf_group_fn group_of, void *userdata,
             wf_stats *stats, char *err, size_t err_size);

void wf_close(wf_db *db);

#endif /* ST_MM_WORKFLOWS_H */
