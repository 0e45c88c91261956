/*
 * merged.c - an exec with `merged` (feature `merged`): the command's stdout and stderr are pipes
 * to us; we write each chunk we read to its stream's file and to the merged file, so the merged
 * file holds both streams in the order they were written (as far as reading two pipes can
 * tell: PROTOCOL.md).  Everything else is a plain exec: the same limits, measurement, verdicts
 * and answer, plus the merged file's record.
 *
 * The kernel no longer limits the stream files (we write them, not the command), so we do what
 * RLIMIT_FSIZE did: a stream's file never grows past the largest-file limit, and a command that
 * writes more gets SIGXFSZ and OLE.  The merged file
 * holds at most as much (it is cut there, with no verdict of its own).
 */
#include "supervisor.h"

#include <sys/signalfd.h>

#define MERGE_CHUNK ((size_t)64 << 10)      /* one pipe's default capacity: one read drains it */

/* A file we write for the command, opened as its user. */
struct sink {
    int fd;                         /* -1: none (the stream goes to /dev/null) */
    int64_t written;
    bool failed;                    /* a write failed (the tmpfs is full): nothing more */
};

struct merge {
    int pipe_fd[3];                 /* read ends of stdout [1] and stderr [2]; -1 at EOF */
    struct sink file[3];            /* [1] stdout's, [2] stderr's (unless shared), [0] merged */
    int sink_of[3];                 /* stream -> its file: 1, 2 (stderr into stdout's: 1) */
    int64_t cap;                    /* the largest file, bytes */
    bool over;                      /* a stream would have passed cap */
    bool signalled;                 /* ... and the command was sent SIGXFSZ for it */
};

/* The buffer is touched before the baselines are taken, so its pages are never counted as the
 * command's memory. */
static unsigned char g_chunk[MERGE_CHUNK];

static void sink_write(struct sink *s, const unsigned char *p, size_t n)
{
    if (s->fd < 0 || s->failed || n == 0)
        return;
    if (!write_all(s->fd, p, n))
        s->failed = true;               /* what the command's own write(2) would have met */
    s->written += (int64_t)n;
}

/* Reads what one pipe holds now (one chunk) into its stream's file and the merged file: 1 when
 * it read bytes, 0 at EOF (the pipe is closed then), -1 when nothing is there now. */
static int merge_pipe(struct merge *m, int stream)
{
    ssize_t r = read(m->pipe_fd[stream], g_chunk, sizeof g_chunk);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return -1;
    if (r <= 0) {
        close(m->pipe_fd[stream]);
        m->pipe_fd[stream] = -1;
        return 0;
    }
    size_t n = (size_t)r;
    struct sink *own = &m->file[m->sink_of[stream]];
    if (own->fd >= 0) {
        /* What the kernel would have let it write: up to the limit, the rest refused. */
        int64_t room = m->cap - own->written;
        if ((int64_t)n > room) {
            m->over = true;
            n = room > 0 ? (size_t)room : 0;
        }
        sink_write(own, g_chunk, n);
    }
    /* The merged file gets exactly what the stream's file got, up to its own cap. */
    int64_t room = m->cap - m->file[0].written;
    sink_write(&m->file[0], g_chunk, (int64_t)n > room ? (size_t)(room > 0 ? room : 0) : n);
    return 1;
}

/* Opens one of the request's files as the command's user, as the child would have (exec.c's
 * open_redirect).  The files we write must be regular files.  -1 with errno (EFTYPE_NOTREG)
 * when it cannot be opened. */
static int open_file(const char *path, int flags, bool regular)
{
    int fd = open_redirect(path, flags);
    struct stat st;
    if (fd >= 0 && regular && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        errno = EFTYPE_NOTREG;
        return -1;
    }
    return fd;
}

static bool same_file(int a, int b)
{
    struct stat sa, sb;
    return a >= 0 && b >= 0 && fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Opens stdin, stdout, stderr and the merged file in the child's order, as its user.  False
 * with o->report set (the stage and errno the child would have reported) when one fails. */
static bool open_files(const struct exec_req *rq, struct merge *m, int *in_fd,
                       struct outcome *o)
{
    const int wflags = O_WRONLY | O_CREAT | O_TRUNC;
    int stage = 0, err = 0;
    if (!become_uid(rq->uid, rq->gid)) {
        o->report = (struct child_report){.stage = ST_PRIV, .err = errno};
        return false;
    }
    if (rq->path[0] && (*in_fd = open_file(rq->path[0], O_RDONLY, false)) < 0) {
        stage = ST_STDIN, err = errno;
    } else if (rq->path[1] && (m->file[1].fd = open_file(rq->path[1], wflags, true)) < 0) {
        stage = ST_STDOUT, err = errno;
    } else if (rq->path[2] && rq->path[1] && strcmp(rq->path[1], rq->path[2]) == 0) {
        m->sink_of[2] = 1;                  /* one open file, as a plain exec shares it */
    } else if (rq->path[2] && (m->file[2].fd = open_file(rq->path[2], wflags, true)) < 0) {
        stage = ST_STDERR, err = errno;
    } else if (same_file(m->file[1].fd, m->file[2].fd)) {
        close(m->file[2].fd);               /* "out" and "./out" */
        m->file[2].fd = -1;
        m->sink_of[2] = 1;
    }
    if (!stage && (m->file[0].fd = open_file(rq->merged_path, wflags, true)) < 0) {
        stage = ST_MERGED, err = errno;
    } else if (!stage && (same_file(m->file[0].fd, m->file[1].fd) ||
                          same_file(m->file[0].fd, m->file[2].fd))) {
        stage = ST_MERGED, err = EFTYPE_SAME;
    }
    become_root();
    if (stage)
        o->report = (struct child_report){.stage = stage, .err = err};
    return stage == 0;
}

void op_exec_merged(const struct exec_req *rq0)
{
    struct exec_req rq = *rq0;
    struct merge m = {.pipe_fd = {-1, -1, -1}, .sink_of = {0, 1, 2}};
    for (int k = 0; k < 3; k++)
        m.file[k].fd = -1;
    /* The cap the child's RLIMIT_FSIZE would have been (a lower hard limit kept). */
    struct rlimit fs;
    int64_t hard = getrlimit(RLIMIT_FSIZE, &fs) == 0 && fs.rlim_max != RLIM_INFINITY
                       ? (int64_t)fs.rlim_max : -1;
    m.cap = rlimit_value(file_size_limit_bytes(&rq), hard);
    struct outcome o;
    struct run r;
    struct baseline base;
    int64_t peak_anon = 0;
    int rfd, in_fd = -1, p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    memset(&o, 0, sizeof o);

    bool ready = open_files(&rq, &m, &in_fd, &o);
    /* stdout and stderr into one file: one pipe for both, so the kernel keeps their order
     * exactly, as it does in a plain exec's shared file. */
    int pipes = m.sink_of[2] == 1 ? 1 : 2;
    if (ready) {
        for (int k = 1; k <= pipes && ready; k++) {
            if (pipe2(p[k], O_CLOEXEC) != 0) {
                o.fork_errno = errno;
                ready = false;
            }
        }
    }
    bool started = false;
    if (ready) {
        for (int k = 1; k <= pipes; k++) {
            m.pipe_fd[k] = p[k][0];
            p[k][0] = -1;
            (void)set_nonblock(m.pipe_fd[k], true);
            rq.pipe_fd[k] = p[k][1];
        }
        if (pipes == 1)
            rq.pipe_fd[2] = p[1][1];
        rq.pipe_fd[0] = in_fd;              /* -1: the child opens /dev/null */
        memset(g_chunk, 0, sizeof g_chunk);
        started = start_command(&rq, &r, &base, &rfd, &o);
    }
    close_fd(&in_fd);
    for (int k = 1; k <= 2; k++)
        close_fd(&p[k][1]);                 /* the command's ends: ours would hide its EOF */
    int sfd = started ? signalfd(-1, &g_sigchld, SFD_NONBLOCK | SFD_CLOEXEC) : -1;

    int64_t next_check = 0;
    while (started) {
        reap(&r);
        if (r.main_done)
            break;
        int64_t now = now_ns();
        if (now >= next_check)
            next_check = now + check_limits(&rq, &base, &r, &peak_anon, &o);
        if (m.over && !m.signalled) {
            /* What the kernel does to a writer past RLIMIT_FSIZE: SIGXFSZ (here to the command's
             * process group: which of its processes wrote is not known).  It dies of it (signal
             * 25, as in a plain exec), or ignores it and goes on with the rest of its output
             * dropped (its writes cannot fail as they would have: the verdict is OLE anyway). */
            if (kill(-r.pid, SIGXFSZ) != 0)
                (void)kill(r.pid, SIGXFSZ);
            m.signalled = true;
        }
        if (o.reason != KR_NONE)
            break;
        struct pollfd fds[3];
        int nfds = 0, at[3];
        if (sfd >= 0)
            fds[nfds] = (struct pollfd){.fd = sfd, .events = POLLIN}, at[nfds++] = 0;
        for (int k = 1; k <= 2; k++)
            if (m.pipe_fd[k] >= 0)
                fds[nfds] = (struct pollfd){.fd = m.pipe_fd[k], .events = POLLIN}, at[nfds++] = k;
        if (poll_until(fds, nfds, next_check) <= 0)
            continue;
        for (int i = 0; i < nfds; i++) {
            if (fds[i].revents && at[i] == 0)
                drain_signalfd(sfd);
            else if (fds[i].revents)
                (void)merge_pipe(&m, at[i]);
        }
    }

    if (started)
        finish_command(&r, &base, rfd, peak_anon, &o);
    /* Every process is gone, so every write end is closed: what the pipes still hold ends in
     * EOF.  (-1 right away: a process survived SIGKILL, see kill_all.) */
    for (int k = 1; k <= 2; k++)
        while (m.pipe_fd[k] >= 0 && merge_pipe(&m, k) > 0)
            ;
    /* Over the limit: OLE, also when it survived the signal or ended before we read the bytes
     * (it could not be sent SIGXFSZ then). */
    if (m.over && o.reason == KR_NONE)
        o.reason = KR_FILE;
    for (int k = 0; k < 3; k++) {
        close_fd(&m.pipe_fd[k]);
        close_fd(&m.file[k].fd);
        close_fd(&p[k][0]);
    }
    if (sfd >= 0)
        close(sfd);
    answer_exec(&rq, &o, NULL);
}
