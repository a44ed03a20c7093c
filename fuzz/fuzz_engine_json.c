/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the container engines' JSON replies as plugins/common reads them: the
 * answers to /version, container create, wait and inspect, the container list of cleanup, the
 * JSON-lines progress of image load/pull and the error text of a refused request. It includes
 * engine_runtime.c, whose readers are static (the JSON helpers they use are engine_util.c's).
 * The first byte chooses the reply; the rest is the body. Any bytes must be read without a
 * crash, a leak or a sanitizer report, and what is taken from them must be what the callers
 * rely on (a safe container id, a code >= 0). */
#include "../plugins/common/engine_runtime.c"

#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static void check_string(const char *s, size_t max)
{
    if (strlen(s) >= max)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned kind = data[0] % 7;
    int truncated = (data[0] >> 3) & 1;
    data++;
    size--;
    eh_response resp = {.status = 200, .len = size, .truncated = truncated};
    resp.body = fuzz_strdup(data, size); /* engine_http's bodies are NUL-terminated */
    switch (kind) {
    case 0: { /* GET /version */
        yajl_val v = er_parse_body(&resp);
        const char *av = v ? er_jstr(v, "ApiVersion", NULL, NULL) : NULL;
        if (er_valid_api_version(av)) {
            char prefix[64];
            snprintf(prefix, sizeof prefix, "/v%s", av);
        }
        if (v)
            yajl_tree_free(v);
        break;
    }
    case 1: { /* POST /containers/ID/wait */
        long long code = 7;
        if (wait_reply_code(&resp, &code) == 0 && code < 0)
            abort();
        break;
    }
    case 2: { /* POST /containers/create */
        char id[80];
        if (create_reply_id(&resp, id, sizeof id) == 0 && !er_safe_token(id, ""))
            abort();
        break;
    }
    case 3: { /* GET /containers/ID/json */
        long long code = -1;
        int oom = 0;
        char serr[300];
        inspect_reply_state(&resp, &code, &oom, serr, sizeof serr);
        check_string(serr, sizeof serr);
        break;
    }
    case 4: { /* GET /containers/json (cleanup) */
        er_runtime rt;
        memset(&rt, 0, sizeof rt);
        snprintf(rt.owner.hostname, sizeof rt.owner.hostname, "fuzzhost");
        yajl_val list = st_json_tree_parse(resp.body, NULL, 0); /* as er_cleanup_stale */
        if (list && YAJL_IS_ARRAY(list)) {
            for (size_t i = 0; i < YAJL_GET_ARRAY(list)->len; i++) {
                yajl_val c = YAJL_GET_ARRAY(list)->values[i];
                const char *id = er_jstr(c, "Id", NULL, NULL);
                if (!id || !er_safe_token(id, ""))
                    continue;
                char path[300];
                snprintf(path, sizeof path, "/containers/%s?force=1&v=1", id);
                stale_reason(&rt, c, 3600, 1700000000);
            }
        }
        if (list)
            yajl_tree_free(list);
        break;
    }
    case 5: { /* image load / pull progress, cut into reads of 1..64 bytes */
        progress *p = calloc(1, sizeof *p);
        if (!p)
            abort();
        size_t off = 0, step = 1;
        while (off < size) {
            size_t take = size - off < step ? size - off : step;
            on_progress_data(p, resp.body + off, take);
            off += take;
            step = step % 64 + 1;
        }
        check_string(p->error, sizeof p->error);
        check_string(p->loaded, sizeof p->loaded);
        free(p);
        break;
    }
    default: { /* a refused request's error text */
        char buf[400];
        resp.status = 500;
        eh_error_text(&resp, buf, sizeof buf);
        check_string(buf, sizeof buf);
        for (const char *q = buf; *q; q++)
            if ((unsigned char)*q < ' ' || *q == 0x7f)
                abort(); /* control characters reach a log line */
        break;
    }
    }
    free(resp.body);
    return 0;
}
