/* SPDX-License-Identifier: MIT */
/* The import records of each scanned file, kept between builds (st_pygraph_options.scan_cache):
 * a file whose size, modification and change times and inode are those recorded is not read or
 * scanned again; its records are replayed into the resolver, which runs on every build (the
 * records do not depend on the tree; what they resolve to does).
 *
 * The file is a cache: anything unexpected in it (another version, a truncated or corrupt
 * record) discards it whole, and the build scans every file. It is replaced atomically
 * (st_write_file_atomic: a temp file, fsync, rename), and only when some entry changed. A file modified less
 * than two seconds before the build started is not recorded (its times may not yet tell a
 * later edit apart), nor is one whose scan failed (its error is reported on every build). */
#ifndef ST_PYGRAPH_SCANCACHE_H
#define ST_PYGRAPH_SCANCACHE_H
#include "pyscan.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

typedef struct sc_record {
    uint8_t kind, star, has_package;
    uint32_t level, line, n_names;
    char *module, *package;
    char **names;
} sc_record;

typedef struct sc_entry {
    char *rel;
    uint64_t size, mtime_ns, ctime_ns, ino;
    sc_record *recs;
    uint32_t n_recs;
} sc_entry;

typedef struct sc_cache {
    sc_entry *e; /* sorted by rel (strcmp) */
    size_t n, cap;
} sc_cache;

/* Loads path into c (empty when missing or unusable). */
void sc_load(sc_cache *c, const char *path);
/* The entry for rel whose stat matches st, or NULL. */
const sc_entry *sc_find(const sc_cache *c, const char *rel, const struct stat *st);
/* Replays an entry's records into cb, as st_pyscan_buffer would; what cb returned when it
 * stopped, else 0. */
int sc_replay(const sc_entry *e, st_pyscan_cb cb, void *userdata);
/* Fills e's key from rel and st (rel is copied). ST_OK or ST_ERR_NOMEM. */
int sc_entry_init(sc_entry *e, const char *rel, const struct stat *st);
/* Appends a copy of imp to e. ST_OK or ST_ERR_NOMEM. */
int sc_entry_add(sc_entry *e, const st_pyimport *imp);
void sc_entry_free(sc_entry *e);
void sc_free(sc_cache *c);
/* Writes entries[0..n) (sorted by rel) to path atomically. ST_OK, or a negative st_status
 * with errno set on failure. */
int sc_save(const char *path, const sc_entry *const *entries, size_t n);
#endif
