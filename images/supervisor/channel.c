/*
 * channel.c - the line protocol: answers on stdout, one request line at a time, dispatch to
 * the operations, and main().
 */
#include "supervisor.h"

/* ------------------------------------------------------------------------------------------ */
/* stdout                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Every byte of a response must reach the orchestrator: retry on EINTR and partial writes, wait
 * on a non-blocking pipe.  SIGPIPE is ignored, so a vanished reader shows up as EPIPE here; then
 * nobody can hear us any more and we exit (taking the container down). */
void out_write(const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = STDOUT_FILENO, .events = POLLOUT};
            (void)poll(&pfd, 1, -1);
        } else {
            fatal("writing a response to stdout");
        }
    }
}

void out_sb(const struct sb *b) { out_write(b->p, b->n); }

void respond_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct sb b = {0};
    sb_puts(&b, "{\"ok\":false,\"error\":");
    json_cstr(&b, msg);
    sb_puts(&b, "}\n");
    out_sb(&b);
    sb_free(&b);
}

static void handle_line(const char *line, size_t n)
{
    struct arena a = {0};
    const char *perr;
    struct jval *req = json_parse(line, n, &a, &perr);
    if (!req) {
        respond_error("invalid request: %s", perr);
    } else if (req->type != J_OBJ) {
        respond_error("invalid request: not a JSON object");
    } else {
        const struct jval *op = member(req, "op");
        if (!op || op->type != J_STR) {
            respond_error("invalid request: missing field 'op'");
        } else if (strcmp(op->s, "ping") == 0) {
            static const char pong[] = "{\"ok\":true,\"op\":\"pong\"}\n";
            out_write(pong, sizeof pong - 1);
        } else if (strcmp(op->s, "exec") == 0) {
            struct exec_req rq;
            const struct jval *inter = member(req, "interactor");
            if (!parse_exec(req, &a, &rq)) {
                respond_error("invalid request: %s", g_reqerr);
            } else if (!inter) {
                op_exec(&rq);
            } else {
                struct interactor_req *ir = arena_alloc(&a, sizeof *ir);
                if (!parse_interactor(inter, &a, ir))
                    respond_error("invalid request: %s", g_reqerr);
                else if (rq.name[0][0] || rq.name[1][0])
                    respond_error("invalid request: with an interactor, 'stdin' and 'stdout' "
                                  "are the pipes and must be empty");
                else
                    op_exec_interactive(&rq, ir);
            }
        } else if (strcmp(op->s, "write") == 0) {
            op_write(req, &a);
        } else if (strcmp(op->s, "put") == 0) {
            op_put(req);
        } else if (strcmp(op->s, "list") == 0) {
            op_list(req);
        } else if (strcmp(op->s, "read") == 0) {
            op_read(req);
        } else {
            struct sb b = {0}, msg = {0};
            sb_puts(&msg, "unknown op ");
            json_str(&msg, op->s, op->n);
            sb_puts(&b, "{\"ok\":false,\"error\":");
            json_str(&b, msg.p, msg.n);
            sb_puts(&b, "}\n");
            out_sb(&b);
            sb_free(&b);
            sb_free(&msg);
        }
    }
    arena_free(&a);
}

/* ------------------------------------------------------------------------------------------ */
/* Main loop                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* fds 0-2 must exist: the child's redirections rely on new fds being >= 3. */
static void ensure_std_fds(void)
{
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
            fatal("cannot open /dev/null");
}

int main(void)
{
    ensure_std_fds();
    signal(SIGPIPE, SIG_IGN);               /* a closed stdout is EPIPE, not death */

    if (getpid() != 1) {
        static const char msg[] =
            "{\"ok\":false,\"error\":\"the supervisor must run as PID 1 of a container's PID "
            "namespace (it kills every other process)\"}\n";
        out_write(msg, sizeof msg - 1);
        return 2;
    }

    sigemptyset(&g_sigchld);
    sigaddset(&g_sigchld, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &g_sigchld, NULL) != 0)
        fatal("sigprocmask");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_terminate;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    (void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);   /* PID 1 is one anyway */
    umask(022);
    if (setgroups(0, NULL) != 0)            /* so that become_user() is exactly uid/gid 10001 */
        logmsg("supervisor: setgroups: %s", strerror(errno));
    long tck = sysconf(_SC_CLK_TCK);
    if (tck > 0)
        g_clk_tck = tck;
    /* Freed memory goes back to the kernel promptly (see the note on RSS at the top). */
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);

    cg_detect("/sys/fs/cgroup", "/proc/self/cgroup");
    tmpfs_open();
    {
        struct sb b = {0};
        /* "features" names the optional parts of the protocol this supervisor speaks. */
        sb_printf(&b,
                  "{\"ok\":true,\"op\":\"hello\",\"version\":%d,\"cgroup\":\"%s\","
                  "\"features\":[\"interactor\"]}\n",
                  PROTOCOL_VERSION, cg.version);
        out_sb(&b);
        sb_free(&b);
    }

    /* Line reader.  A line longer than MAX_LINE is dropped as it streams in (we never hold more
     * than MAX_LINE + READ_CHUNK bytes) and answered with an error once its newline arrives, so
     * the stream resynchronizes on the next line. */
    size_t cap = READ_CHUNK, len = 0, scanned = 0;
    char *buf = xmalloc(cap);
    bool discarding = false;
    for (;;) {
        char *nl = memchr(buf + scanned, '\n', len - scanned);
        if (nl) {
            size_t n = (size_t)(nl - buf);
            if (discarding || n > MAX_LINE)
                respond_error("request line longer than %zu bytes", MAX_LINE);
            else
                handle_line(buf, n);
            discarding = false;
            len -= n + 1;
            memmove(buf, nl + 1, len);
            scanned = 0;
            if (cap > LINE_BUF_KEEP && len < LINE_BUF_KEEP / 2) {
                /* A fresh buffer rather than realloc: its pages are untouched, so the memory a
                 * huge request dirtied leaves our resident set (and future children's). */
                char *p = xmalloc(LINE_BUF_KEEP);
                memcpy(p, buf, len);
                free(buf);
                buf = p;
                cap = LINE_BUF_KEEP;
            }
            continue;
        }
        scanned = len;
        if (discarding || len > MAX_LINE) {
            discarding = true;
            len = scanned = 0;
        }
        if (cap - len < READ_CHUNK) {
            size_t ncap = cap * 2;
            while (ncap - len < READ_CHUNK)
                ncap *= 2;
            char *p = realloc(buf, ncap);
            if (!p)
                fatal("out of memory");
            buf = p;
            cap = ncap;
        }
        ssize_t r = read(STDIN_FILENO, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
            (void)poll(&pfd, 1, -1);
            continue;
        }
        if (r <= 0) {                       /* EOF (or a broken stdin): finish */
            if (discarding || len > MAX_LINE)
                respond_error("request line longer than %zu bytes", MAX_LINE);
            else if (len > 0)
                handle_line(buf, len);
            break;
        }
        len += (size_t)r;
    }
    free(buf);
    struct run none = {.pid = -1};
    kill_all(&none);
    return 0;
}
