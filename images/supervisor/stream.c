/*
 * stream.c - a streaming exec (feature `stream`): the command's stdin, stdout and stderr are
 * pipes to us, and we relay them over the channel while it runs, under the usual limits.
 *
 * The monitor waits in ppoll() on the channel, the three pipes and a signalfd for SIGCHLD, at
 * most until the next limit poll.  Nothing here may block: stdout and stdin of the channel are
 * non-blocking for the exec, queued channel output is bounded (when full we stop reading the
 * command's pipes, so a client that does not read makes the command wait in write(2), where
 * its real-time limit still runs), and queued stdin is bounded (when full we stop reading the
 * channel, which pushes back on the client).  See PROTOCOL.md, "Streaming executes".
 */
#include "supervisor.h"

#include <sys/signalfd.h>

#define STREAM_CHUNK ((size_t)32 << 10)     /* most command bytes one data line carries */
#define STREAM_OUT_MAX ((size_t)256 << 10)  /* channel bytes queued before the pipes wait */
#define STREAM_IN_MAX ((size_t)1 << 20)     /* stdin bytes queued before the channel waits */

struct relay {
    int in_fd;                      /* write end of the command's stdin; -1 once closed */
    int out_fd[3];                  /* read ends of its stdout [1] and stderr [2]; -1 at EOF */
    struct sb in;                   /* stdin bytes not written yet, from in_off */
    size_t in_off;
    bool close_in;                  /* the client closed stdin: close it once in is written */
    struct sb out;                  /* channel bytes not written yet, from out_off */
    size_t out_off;
    int64_t sent[3];                /* command bytes relayed per stream */
    int64_t cap;                    /* output_kib in bytes: stdout and stderr together */
    bool over;                      /* more than cap was written */
    bool chan_eof;                  /* the orchestrator closed the channel */
    pid_t pid;                      /* the command, leader of its own process group */
};

/* Queues one data line for the channel; at most cap bytes in all are relayed. */
static void relay_data(struct relay *rl, int stream, const unsigned char *p, size_t n)
{
    int64_t room = rl->cap - rl->sent[1] - rl->sent[2];
    if ((int64_t)n > room) {
        rl->over = true;
        n = room > 0 ? (size_t)room : 0;
    }
    if (n == 0)
        return;
    sb_puts(&rl->out, stream == 1 ? "{\"op\":\"data\",\"stream\":\"stdout\",\"data\":\""
                                  : "{\"op\":\"data\",\"stream\":\"stderr\",\"data\":\"");
    base64_encode(&rl->out, p, n);
    sb_puts(&rl->out, "\"}\n");
    rl->sent[stream] += (int64_t)n;
}

/* Reads what one of the command's pipes holds now (one chunk) and relays it: 1 when it read
 * bytes, 0 at EOF (the pipe is closed then), -1 when nothing is there now. */
static int relay_pipe(struct relay *rl, int stream)
{
    static unsigned char buf[STREAM_CHUNK];
    ssize_t r = read(rl->out_fd[stream], buf, sizeof buf);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return -1;
    if (r <= 0) {
        close(rl->out_fd[stream]);
        rl->out_fd[stream] = -1;
        return 0;
    }
    relay_data(rl, stream, buf, (size_t)r);
    return 1;
}

/* Writes queued channel bytes without blocking. */
static void flush_out(struct relay *rl)
{
    while (rl->out_off < rl->out.n) {
        ssize_t w = write(STDOUT_FILENO, rl->out.p + rl->out_off, rl->out.n - rl->out_off);
        if (w > 0) {
            rl->out_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        fatal("writing a response to stdout");
    }
    rl->out.n = rl->out_off = 0;
}

/* Writes queued stdin bytes to the command without blocking.  A command that closed its stdin
 * (EPIPE: SIGPIPE is ignored here) gets nothing more; the bytes are dropped. */
static void feed_in(struct relay *rl)
{
    while (rl->in_fd >= 0 && rl->in_off < rl->in.n) {
        ssize_t w = write(rl->in_fd, rl->in.p + rl->in_off, rl->in.n - rl->in_off);
        if (w > 0) {
            rl->in_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        close(rl->in_fd);                   /* EPIPE or worse: the command's stdin is gone */
        rl->in_fd = -1;
    }
    if (rl->in_off == rl->in.n)
        rl->in.n = rl->in_off = 0;
    if (rl->close_in && rl->in.n == 0 && rl->in_fd >= 0) {
        close(rl->in_fd);
        rl->in_fd = -1;
    }
}

/* One control line from the orchestrator while the command runs (never answered): stdin
 * bytes, the end of stdin, or a signal for the command's process group. */
static void control_line(struct relay *rl, const char *line, size_t n)
{
    struct arena a = {0};
    const char *perr;
    struct jval *req = json_parse(line, n, &a, &perr);
    const struct jval *op = req && req->type == J_OBJ ? member(req, "op") : NULL;
    if (!op || op->type != J_STR) {
        logmsg("supervisor: stream: ignoring a line that is no control request");
    } else if (strcmp(op->s, "stdin") == 0) {
        const char *data;
        unsigned char *bytes;
        size_t len;
        if (get_str(req, "data", true, &data) && base64_decode(data, strlen(data), &bytes, &len)) {
            if (rl->in_fd >= 0 && !rl->close_in)
                sb_put(&rl->in, bytes, len);
            free(bytes);
        } else {
            logmsg("supervisor: stream: ignoring stdin without valid base64 data");
        }
    } else if (strcmp(op->s, "stdin_close") == 0) {
        rl->close_in = true;
    } else if (strcmp(op->s, "signal") == 0) {
        int64_t sig;
        if (get_int(req, "signal", true, 0, 1, SIGRTMAX, &sig)) {
            /* Its process group (setsid made it the leader), as a terminal would; the command
             * itself if it left the group. */
            if (kill(-rl->pid, (int)sig) != 0)
                (void)kill(rl->pid, (int)sig);
        } else {
            logmsg("supervisor: stream: %s", g_reqerr);
        }
    } else {
        logmsg("supervisor: stream: ignoring op '%s' while the command runs", op->s);
    }
    arena_free(&a);
}

/* Handles every complete control line the channel's buffer holds, after reading what the
 * channel has now when fill is set (lines that came with the exec request are handled first,
 * without). */
static void read_channel(struct relay *rl, bool fill)
{
    if (fill && channel_fill() == 0)
        rl->chan_eof = true;
    const char *line;
    size_t n;
    enum take t;
    while ((t = channel_take_line(&line, &n)) != LINE_NONE)
        if (t == LINE_OK)
            control_line(rl, line, n);
}

/* The command's pipes: [0] stdin (we write), [1] stdout, [2] stderr (we read).  child[k] are
 * the command's ends.  False with errno when a pipe cannot be made. */
static bool make_pipes(struct relay *rl, int child[3])
{
    int p[3][2];
    for (int k = 0; k < 3; k++) {
        if (pipe2(p[k], O_CLOEXEC) != 0) {
            int e = errno;
            for (int j = 0; j < k; j++) {
                close(p[j][0]);
                close(p[j][1]);
            }
            errno = e;
            return false;
        }
    }
    rl->in_fd = p[0][1];
    child[0] = p[0][0];
    for (int k = 1; k <= 2; k++) {
        rl->out_fd[k] = p[k][0];
        child[k] = p[k][1];
    }
    (void)set_nonblock(rl->in_fd, true);
    (void)set_nonblock(rl->out_fd[1], true);
    (void)set_nonblock(rl->out_fd[2], true);
    return true;
}

/* Runs the command with its stdio relayed until its main process ends or a limit is hit; then
 * everything is killed, what its pipes still hold is relayed (up to the cap), and the exec
 * answer follows with "streamed" byte counts. */
void op_exec_stream(const struct exec_req *rq0)
{
    struct exec_req rq = *rq0;
    struct relay rl = {.in_fd = -1, .out_fd = {-1, -1, -1}, .cap = rq.out_kib * 1024};
    struct outcome o;
    struct run r;
    struct baseline base;
    int64_t peak_anon = 0;
    int rfd, child[3] = {-1, -1, -1};

    if (!make_pipes(&rl, child)) {
        memset(&o, 0, sizeof o);
        o.fork_errno = errno;
        answer_exec(&rq, &o, NULL);
        return;
    }
    for (int k = 0; k < 3; k++)
        rq.pipe_fd[k] = child[k];
    int sfd = signalfd(-1, &g_sigchld, SFD_NONBLOCK | SFD_CLOEXEC);
    (void)set_nonblock(STDIN_FILENO, true);
    (void)set_nonblock(STDOUT_FILENO, true);
    bool started = start_command(&rq, &r, &base, &rfd, &o);
    for (int k = 0; k < 3; k++)
        close(child[k]);
    rl.pid = r.pid;

    read_channel(&rl, false);
    int64_t next_check = 0, wait = 0;
    while (started) {
        reap(&r);
        if (r.main_done)
            break;
        /* The limits at their own pace, not on every chunk of output (a /proc walk under
         * gVisor is not cheap). */
        int64_t now = now_ns();
        if (now >= next_check) {
            wait = check_limits(&rq, &base, &r, &peak_anon, &o);
            next_check = now + wait;
        }
        if (o.reason == KR_NONE && rl.over)
            o.reason = KR_OUTPUT;
        if (o.reason == KR_NONE && rl.chan_eof)
            o.reason = KR_GONE;             /* nobody is listening any more: stop it */
        if (o.reason != KR_NONE)
            break;
        feed_in(&rl);
        flush_out(&rl);

        struct pollfd fds[6];
        int nfds = 0, at[6];
        bool room_out = rl.out.n - rl.out_off < STREAM_OUT_MAX;
        bool room_in = rl.in.n - rl.in_off < STREAM_IN_MAX;
        if (sfd >= 0)
            fds[nfds] = (struct pollfd){.fd = sfd, .events = POLLIN}, at[nfds++] = -1;
        if (room_in)
            fds[nfds] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN}, at[nfds++] = 3;
        if (rl.out.n > rl.out_off)
            fds[nfds] = (struct pollfd){.fd = STDOUT_FILENO, .events = POLLOUT}, at[nfds++] = 4;
        if (rl.in_fd >= 0 && rl.in.n > rl.in_off)
            fds[nfds] = (struct pollfd){.fd = rl.in_fd, .events = POLLOUT}, at[nfds++] = 0;
        for (int k = 1; k <= 2; k++)
            if (rl.out_fd[k] >= 0 && room_out)
                fds[nfds] = (struct pollfd){.fd = rl.out_fd[k], .events = POLLIN}, at[nfds++] = k;
        if (poll_until(fds, nfds, next_check) <= 0)
            continue;
        for (int i = 0; i < nfds; i++) {
            if (!fds[i].revents)
                continue;
            if (at[i] == -1) {
                drain_signalfd(sfd);
            } else if (at[i] == 3) {
                read_channel(&rl, true);
            } else if (at[i] == 1 || at[i] == 2) {
                (void)relay_pipe(&rl, at[i]);
            }
            /* POLLOUT on the channel or on stdin: written at the top of the loop. */
        }
    }

    if (started)
        finish_command(&r, &base, rfd, peak_anon, &o);
    /* Every process is gone, so every write end of the pipes is closed: what they still hold
     * ends in EOF.  Relayed up to the cap; then the queue is written out, blocking is fine now. */
    close_fd(&rl.in_fd);
    for (int k = 1; k <= 2; k++) {
        while (rl.out_fd[k] >= 0 && relay_pipe(&rl, k) > 0)
            ;
        close_fd(&rl.out_fd[k]);            /* -1: a process survived SIGKILL (see kill_all) */
    }
    if (rl.over && o.reason == KR_NONE)
        o.reason = KR_OUTPUT;
    (void)set_nonblock(STDOUT_FILENO, false);
    (void)set_nonblock(STDIN_FILENO, false);
    if (rl.out.n > rl.out_off)
        out_write(rl.out.p + rl.out_off, rl.out.n - rl.out_off);
    if (sfd >= 0)
        close(sfd);
    char extra[96];
    snprintf(extra, sizeof extra, ",\"streamed\":{\"stdout\":%lld,\"stderr\":%lld}",
             (long long)rl.sent[1], (long long)rl.sent[2]);
    answer_exec(&rq, &o, extra);
    sb_free(&rl.in);
    sb_free(&rl.out);
}
