/* SPDX-License-Identifier: MIT */
/* Paths: joining, folding "." and "..", containment in a root, creating and removing trees.
 * Part of libstlib. Nothing here logs. */
#ifndef ST_LIB_PATH_H
#define ST_LIB_PATH_H

char *st_path_join(const char *a, const char *b); /* b absolute -> copy of b */
char *st_path_dirname(const char *path);
/* Resolves path (relative to base when relative) to an absolute path with "." and ".." folded,
 * without touching the file system. */
char *st_path_absolute(const char *base, const char *path);
/* If abs_path lies inside root (both absolute, normalised), returns the repo-relative POSIX
 * path ("." for root itself); NULL when it escapes. */
char *st_path_relative_to(const char *root, const char *abs_path);
/* Checks that rel is a safe repo-relative path: not absolute, no ".." component, not empty.
 * When root is given it also checks that no existing component is a symlink leading outside. */
int st_path_is_safe_relative(const char *root, const char *rel);
int st_mkdir_p(const char *path, unsigned mode); /* 0 or -errno */
int st_rm_rf(const char *path);                  /* 0 or -errno; never follows symlinks */

#endif
