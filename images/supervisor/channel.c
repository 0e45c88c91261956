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

/* ------------------------------------------------------------------------------------------ */
/* Request lines                                                                               */
/* ------------------------------------------------------------------------------------------ */
/* A line longer than MAX_LINE is dropped as it streams in (we never hold more than MAX_LINE +
 * READ_CHUNK bytes) and answered with an error once its newline arrives, so the stream
 * resynchronizes on the next line.  A streaming exec reads its control lines from here too. */

static struct {
    char *buf;
    size_t cap, len;
    size_t scanned;         /* no newline before this offset */
    size_t used;            /* the line handed out last, dropped at the next take */
    bool discarding;        /* inside an over-long line */
} in;

enum take channel_take_line(const char **line, size_t *n)
{
    if (in.used) {
        in.len -= in.used;
        memmove(in.buf, in.buf + in.used, in.len);
        in.used = in.scanned = 0;
        if (in.cap > LINE_BUF_KEEP && in.len < LINE_BUF_KEEP / 2) {
            /* A fresh buffer rather than realloc: its pages are untouched, so the memory a
             * huge request dirtied leaves our resident set (and future children's). */
            char *p = xmalloc(LINE_BUF_KEEP);
            memcpy(p, in.buf, in.len);
            free(in.buf);
            in.buf = p;
            in.cap = LINE_BUF_KEEP;
        }
    }
    char *nl = in.len > in.scanned ? memchr(in.buf + in.scanned, '\n', in.len - in.scanned)
                                   : NULL;
    if (!nl) {
        in.scanned = in.len;
        if (in.discarding || in.len > MAX_LINE) {
            in.discarding = true;
            in.len = in.scanned = 0;
        }
        return LINE_NONE;
    }
    size_t k = (size_t)(nl - in.buf);
    bool too_long = in.discarding || k > MAX_LINE;
    in.used = k + 1;
    in.discarding = false;
    if (too_long)
        return LINE_TOO_LONG;
    *line = in.buf;
    *n = k;
    return LINE_OK;
}

ssize_t channel_fill(void)
{
    if (!in.buf) {
        in.cap = READ_CHUNK;
        in.buf = xmalloc(in.cap);
    }
    if (in.cap - in.len < READ_CHUNK) {
        size_t ncap = in.cap * 2;
        while (ncap - in.len < READ_CHUNK)
            ncap *= 2;
        char *p = realloc(in.buf, ncap);
        if (!p)
            fatal("out of memory");
        in.buf = p;
        in.cap = ncap;
    }
    ssize_t r = read(STDIN_FILENO, in.buf + in.len, in.cap - in.len);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return -1;
    if (r <= 0)
        return 0;
    in.len += (size_t)r;
    return r;
}

enum take channel_take_rest(const char **line, size_t *n)
{
    if (in.discarding || in.len > MAX_LINE)
        return LINE_TOO_LONG;
    if (in.len == 0)
        return LINE_NONE;
    *line = in.buf;
    *n = in.len;
    in.used = in.len;
    return LINE_OK;
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
            int64_t stream = 0;
            const struct jval *inter = member(req, "interactor");
            if (!parse_exec(req, &a, &rq) || !get_int(req, "stream", false, 0, 0, 1, &stream)) {
                respond_error("invalid request: %s", g_reqerr);
            } else if (stream && (inter || rq.name[0][0] || rq.name[1][0] || rq.name[2][0])) {
                respond_error("invalid request: a streaming exec has no interactor, and its "
                              "'stdin', 'stdout' and 'stderr' are the channel and must be empty");
            } else if (rq.merged_path && (stream || inter)) {
                respond_error("invalid request: 'merged' is for an exec without 'stream' and "
                              "without an interactor");
            } else if (rq.merged_path && (strcmp(rq.merged_name, rq.name[1]) == 0 ||
                                          strcmp(rq.merged_name, rq.name[2]) == 0)) {
                respond_error("invalid request: 'merged' must name a file other than 'stdout' "
                              "and 'stderr'");
            } else if (stream) {
                op_exec_stream(&rq);
            } else if (rq.merged_path) {
                op_exec_merged(&rq);
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
        } else if (strcmp(op->s, "stdin") == 0 || strcmp(op->s, "stdin_close") == 0 ||
                   strcmp(op->s, "signal") == 0) {
            /* A streaming exec's control lines are never answered; one that arrives after its
             * command ended (the orchestrator had not read the answer yet) is dropped. */
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
    /* A signal ignored by whoever started us would stay ignored in every command (execve keeps
     * SIG_IGN): none is, but SIGPIPE, which is ours and which the child resets. */
    for (int s = 1; s < NSIG; s++) {
        struct sigaction cur;
        if (sigaction(s, NULL, &cur) == 0 && cur.sa_handler == SIG_IGN)
            (void)signal(s, SIG_DFL);
    }
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
    spawn_setup();
    {
        struct sb b = {0};
        /* "features" names the optional parts of the protocol this supervisor speaks. */
        sb_printf(&b,
                  "{\"ok\":true,\"op\":\"hello\",\"version\":%d,\"cgroup\":\"%s\","
                  "\"features\":[\"interactor\",\"limits\",\"merged\",\"stream\"]}\n",
                  PROTOCOL_VERSION, cg.version);
        out_sb(&b);
        sb_free(&b);
    }

    for (;;) {
        const char *line;
        size_t n;
        enum take t = channel_take_line(&line, &n);
        if (t == LINE_OK) {
            handle_line(line, n);
            continue;
        }
        if (t == LINE_TOO_LONG) {
            respond_error("request line longer than %zu bytes", MAX_LINE);
            continue;
        }
        ssize_t r = channel_fill();
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
            (void)poll(&pfd, 1, -1);
            continue;
        }
        if (r == 0) {                       /* EOF (or a broken stdin): finish */
            t = channel_take_rest(&line, &n);
            if (t == LINE_TOO_LONG)
                respond_error("request line longer than %zu bytes", MAX_LINE);
            else if (t == LINE_OK)
                handle_line(line, n);
            break;
        }
    }
    struct run none = {.pid = -1};
    kill_all(&none);
    return 0;
}
