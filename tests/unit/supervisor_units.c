/*
 * supervisor_units.c - a host-side driver for the supervisor's pure parts (JSON parsing, request
 * fields, limit arithmetic, the verdict, cgroup file detection), compiled with the host's gcc
 * from the .c files of images/supervisor by tests/unit/test_supervisor_units.py and driven by it.  The
 * supervisor's main() is renamed away (-Dmain=supervisor_main); nothing here forks or needs
 * privileges.
 *
 *   units json        each stdin line: its parse tree, canonical (see dump), or "error: <why>"
 *   units exec        each stdin line {"req":{exec request},"outcome":{...}}: the parsed limits,
 *                     the verdict and its message, as one JSON line (or {"error":...})
 *   units cgroup DIR  cg_detect on DIR/sys/fs/cgroup and DIR/proc/self/cgroup, then one reading
 *                     of every counter, as one JSON line
 */
#include "supervisor.h"

/* Canonical form: an object is {"o":[[key,value],...]} with every member in order (duplicates
 * too), strings are re-encoded by json_str, integers print as integers, other numbers as the
 * string "<number>". */
static void dump(struct sb *b, const struct jval *v)
{
    switch (v->type) {
    case J_NULL: sb_puts(b, "null"); break;
    case J_BOOL: sb_puts(b, v->b ? "true" : "false"); break;
    case J_NUM:
        if (v->is_int)
            sb_printf(b, "%lld", (long long)v->i);
        else
            sb_puts(b, "\"<number>\"");
        break;
    case J_STR: json_str(b, v->s, v->n); break;
    case J_ARR:
    case J_OBJ:
        sb_puts(b, v->type == J_OBJ ? "{\"o\":[" : "[");
        for (const struct jval *c = v->child; c; c = c->next) {
            if (c != v->child)
                sb_putc(b, ',');
            if (v->type == J_OBJ) {
                sb_putc(b, '[');
                json_str(b, c->key, c->keylen);
                sb_putc(b, ',');
            }
            dump(b, c);
            if (v->type == J_OBJ)
                sb_putc(b, ']');
        }
        sb_puts(b, v->type == J_OBJ ? "]}" : "]");
        break;
    }
}

/* Reads one line of any length from stdin into *buf; false at EOF. */
static bool next_line(char **buf, size_t *cap, size_t *len)
{
    ssize_t n = getline(buf, cap, stdin);
    if (n < 0)
        return false;
    if (n > 0 && (*buf)[n - 1] == '\n')
        n--;
    *len = (size_t)n;
    return true;
}

static int run_json(void)
{
    char *line = NULL;
    size_t cap = 0, n;
    while (next_line(&line, &cap, &n)) {
        struct arena a = {0};
        const char *err;
        struct jval *v = json_parse(line, n, &a, &err);
        struct sb b = {0};
        if (!v) {
            sb_printf(&b, "error: %s", err);
        } else {
            dump(&b, v);
        }
        printf("%s\n", sb_str(&b));
        sb_free(&b);
        arena_free(&a);
    }
    free(line);
    return 0;
}

static int64_t num(const struct jval *obj, const char *key)
{
    const struct jval *v = member(obj, key);
    return v && v->type == J_NUM && v->is_int ? v->i : 0;
}

static int run_exec(void)
{
    static const struct { const char *name; enum reason r; } reasons[] = {
        {"cpu", KR_CPU}, {"wall", KR_WALL}, {"mem", KR_MEM}, {"proc", KR_PROC},
        {"file", KR_FILE},
    };
    char *line = NULL;
    size_t cap = 0, n;
    while (next_line(&line, &cap, &n)) {
        struct arena a = {0};
        const char *err;
        struct jval *doc = json_parse(line, n, &a, &err);
        const struct jval *req = doc ? member(doc, "req") : NULL;
        const struct jval *oc = doc ? member(doc, "outcome") : NULL;
        struct sb b = {0};
        struct exec_req rq;
        if (!req || req->type != J_OBJ) {
            printf("{\"error\":\"bad test line\"}\n");
            arena_free(&a);
            continue;
        }
        if (!parse_exec(req, &a, &rq)) {
            sb_puts(&b, "{\"error\":");
            json_cstr(&b, g_reqerr);
            sb_puts(&b, "}");
        } else {
            struct outcome o;
            memset(&o, 0, sizeof o);
            if (oc && oc->type == J_OBJ) {
                o.fork_errno = (int)num(oc, "fork_errno");
                o.report.stage = (int)num(oc, "stage");
                o.report.err = (int)num(oc, "err");
                const struct jval *r = member(oc, "reason");
                for (size_t i = 0; r && r->type == J_STR && i < sizeof reasons / sizeof reasons[0]; i++)
                    if (strcmp(r->s, reasons[i].name) == 0)
                        o.reason = reasons[i].r;
                o.oom = num(oc, "oom") != 0;
                o.output_full = num(oc, "output_full") != 0;
                o.cpu_ns = num(oc, "cpu_ms") * NS_PER_MS;
                o.real_ns = num(oc, "real_ms") * NS_PER_MS;
                o.unlimited_ns = num(oc, "unlimited_ms") * NS_PER_MS;
                o.mem_kib = num(oc, "mem_kib");
                o.exit_code = (int)num(oc, "exit_code");
                o.sig = (int)num(oc, "sig");
            }
            struct sb msg = {0};
            const char *status = verdict(&rq, &o, &msg);
            sb_printf(&b, "{\"cpu_ms\":%lld,\"wall_ms\":%lld,\"mem_kib\":%lld,\"out_kib\":%lld,"
                          "\"process_limit\":%lld,\"stack_bytes\":%lld,\"fsize_bytes\":%lld,"
                          "\"setup_error\":%s,\"status\":",
                      (long long)rq.cpu_ms, (long long)rq.wall_ms, (long long)rq.mem_kib,
                      (long long)rq.out_kib, (long long)rq.process_limit,
                      (long long)stack_limit_bytes(&rq), (long long)file_size_limit_bytes(&rq),
                      is_setup_error(&o) ? "true" : "false");
            json_cstr(&b, status);
            sb_puts(&b, ",\"message\":");
            json_str(&b, sb_str(&msg), msg.n);
            sb_puts(&b, "}");
            sb_free(&msg);
        }
        printf("%s\n", sb_str(&b));
        sb_free(&b);
        arena_free(&a);
    }
    free(line);
    return 0;
}

static void put_reading(struct sb *b, const char *key, bool ok, int64_t v)
{
    if (ok)
        sb_printf(b, ",\"%s\":%lld", key, (long long)v);
    else
        sb_printf(b, ",\"%s\":null", key);
}

static int run_cgroup(const char *dir)
{
    char sys[PATH_MAX], self[PATH_MAX];
    snprintf(sys, sizeof sys, "%s/sys/fs/cgroup", dir);
    snprintf(self, sizeof self, "%s/proc/self/cgroup", dir);
    cg_detect(sys, self);
    int64_t v = 0;
    struct sb b = {0};
    sb_puts(&b, "{\"version\":");
    json_cstr(&b, cg.version);
    bool ok = cg_cpu_ns(&v);
    put_reading(&b, "cpu_ns", ok, v);
    ok = cg_anon_bytes(&v);
    put_reading(&b, "anon_bytes", ok, v);
    ok = cg_shmem_bytes(&v);
    put_reading(&b, "shmem_bytes", ok, v);
    ok = cg_oom_kills(&v);
    put_reading(&b, "oom_kills", ok, v);
    ok = cg_tasks(&v);
    put_reading(&b, "tasks", ok, v);
    sb_puts(&b, "}");
    printf("%s\n", sb_str(&b));
    sb_free(&b);
    return 0;
}

/* A few pure functions take arguments straight from the command line. */
static int run_limits(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "rlimit") == 0) {
        printf("%lld\n", (long long)rlimit_value(strtoll(argv[2], NULL, 10),
                                                 strtoll(argv[3], NULL, 10)));
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "poll") == 0) {
        printf("%lld\n", (long long)next_poll_ns(strtoll(argv[2], NULL, 10),
                                                 strtoll(argv[3], NULL, 10)));
        return 0;
    }
    return 2;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && strcmp(argv[1], "json") == 0)
        return run_json();
    if (argc == 2 && strcmp(argv[1], "exec") == 0)
        return run_exec();
    if (argc == 3 && strcmp(argv[1], "cgroup") == 0)
        return run_cgroup(argv[2]);
    if (argc == 4)
        return run_limits(argc, argv);
    fprintf(stderr, "usage: units json|exec|cgroup DIR|rlimit WANT HARD|poll CPU WALL\n");
    return 2;
}
