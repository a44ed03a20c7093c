/* SPDX-License-Identifier: MIT */
/* Number formatting and parsing (see st_num.h). */
#include "config.h"

#include "st_num.h"

#include <selftest/plugin.h>

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* snprintf/strtod in the "C" numeric locale of this thread only (uselocale), so a process
 * running under de_DE never writes 12,5. */
void st_format_double(double v, char out[ST_DOUBLE_BUFSIZE])
{
    if (isnan(v)) {
        snprintf(out, ST_DOUBLE_BUFSIZE, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, ST_DOUBLE_BUFSIZE, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    locale_t c_loc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    locale_t old = c_loc ? uselocale(c_loc) : (locale_t)0;
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, ST_DOUBLE_BUFSIZE, "%.*g", prec, v);
        if (prec == 17 || strtod(out, NULL) == v)
            break;
    }
    if (c_loc) {
        uselocale(old);
        freelocale(c_loc);
    } else {
        /* no memory for a locale object: repair the only character a locale changes here */
        for (char *p = out; *p; p++)
            if (*p == ',')
                *p = '.';
    }
}

/* Copies s without surrounding white space (a value read from a file or written by a script
 * often ends in a space or newline) into buf; -1 when empty or too long. */
static int trimmed(const char *s, char *buf, size_t size)
{
    if (!s)
        return ST_ERR_INVALID;
    s += strspn(s, " \t\r\n");
    size_t n = strlen(s);
    while (n && strchr(" \t\r\n", s[n - 1]))
        n--;
    if (!n || n >= size)
        return ST_ERR_INVALID;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return ST_OK;
}

/* Is buf a plain decimal number: [+-]digits, and with fraction also .digits and an exponent?
 * (strtoll/strtod alone would take "0x10", "inf" and "1e999".) */
static int is_decimal(const char *p, int fraction)
{
    static const char digits[] = "0123456789";
    if (*p == '+' || *p == '-')
        p++;
    size_t d = strspn(p, digits);
    p += d;
    if (fraction && *p == '.') {
        size_t f = strspn(++p, digits);
        p += f;
        d += f;
    }
    if (fraction && d && (*p == 'e' || *p == 'E')) {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        size_t e = strspn(p, digits);
        if (!e)
            return 0;
        p += e;
    }
    return d && !*p;
}

int st_parse_bool(const char *s)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    char buf[16];
    if (trimmed(s, buf, sizeof(buf)) < 0)
        return ST_ERR_INVALID;
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(buf, yes[i]) == 0)
            return 1;
        if (strcasecmp(buf, no[i]) == 0)
            return 0;
    }
    return ST_ERR_INVALID;
}

int st_parse_long(const char *s, long long *out)
{
    char buf[64];
    if (trimmed(s, buf, sizeof(buf)) < 0 || !is_decimal(buf, 0))
        return ST_ERR_INVALID;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end || end == buf)
        return ST_ERR_INVALID;
    *out = v;
    return ST_OK;
}

int st_parse_double(const char *s, double *out)
{
    char buf[64];
    if (trimmed(s, buf, sizeof(buf)) < 0 || !is_decimal(buf, 1))
        return ST_ERR_INVALID;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno || *end || end == buf || v != v)
        return ST_ERR_INVALID;
    *out = v;
    return ST_OK;
}
