/* SPDX-License-Identifier: MIT */
/* Numbers: locale-proof formatting of doubles and strict parsing. Part of libstlib. */
#ifndef ST_LIB_NUM_H
#define ST_LIB_NUM_H

/* Room st_format_double needs. */
#define ST_DOUBLE_BUFSIZE 32

/* v as the shortest of %.15g, %.16g and %.17g that reads back exactly (so 0.1 is "0.1", not
 * yajl's "0.10000000000000000555"), always with '.' whatever LC_NUMERIC says (thread-safe: no
 * setlocale). NaN is "NaN", infinities "+Inf" and "-Inf" (Prometheus' spelling; JSON writers
 * check isfinite first). */
void st_format_double(double v, char out[ST_DOUBLE_BUFSIZE]);

/* Boolean words: 1/0, true/false, yes/no, on/off, any case. Returns 0/1, or ST_ERR_INVALID
 * (plugin.h) if not one. */
int st_parse_bool(const char *s);
/* Strict integer and double parsing of a whole string: plain decimal only (no hex, inf or
 * nan), surrounding white space ignored (as by st_parse_bool). ST_OK, or ST_ERR_INVALID. */
int st_parse_long(const char *s, long long *out);
int st_parse_double(const char *s, double *out);

#endif
