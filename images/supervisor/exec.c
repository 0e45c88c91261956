/*
 * exec.c - one command: supervision under the limits, the records and the exec answer (its
 * process is started by spawn.c).
 */
#include "supervisor.h"

/* ------------------------------------------------------------------------------------------ */
/* Running and supervising a command                                                          */
/* ------------------------------------------------------------------------------------------ */

/* Reaps every process that has ended, without blocking.  Returns true when we have no child
 * left at all (ECHILD).  __WALL: also children created by clone() with an unusual exit signal. */
bool reap(struct run *r)
{
    for (;;) {
        int st;
        struct rusage ru;
        pid_t p = wait4(-1, &st, WNOHANG | __WALL, &ru);
        if (p > 0) {
            if (ru.ru_maxrss > r->maxrss_kib)
                r->maxrss_kib = ru.ru_maxrss;
            if (p == r->pid && !r->main_done) {
                r->main_done = true;
                r->wstatus = st;
                r->t_end = now_ns();
            }
            continue;
        }
        if (p == 0)
            return false;
        if (errno == EINTR)
            continue;
        return true;
    }
}

/* Kills every process of the namespace but us and reaps them all.  One kill(-1) can race with a
 * fork, so it is repeated until wait4 reports ECHILD: an orphan is re-parented to us before its
 * dead parent becomes reapable, so no children means no descendants.  (kill(-1) itself returns
 * ESRCH once only zombies are left, which is why it is not the loop condition.)  A process stuck
 * in the kernel could make this endless; after KILL_GIVE_UP_NS we answer anyway. */
void kill_all(struct run *r)
{
    /* Usually the command is done and nothing is left: then no kill(-1), which walks every task
     * of the namespace (we are its subreaper, so no child left means nothing left). */
    if (reap(r))
        return;
    int64_t deadline = now_ns() + KILL_GIVE_UP_NS;
    for (;;) {
        (void)kill(-1, SIGKILL);
        if (reap(r))
            return;
        if (now_ns() > deadline) {
            logmsg("supervisor: processes survive SIGKILL; giving up waiting for them");
            return;
        }
        sleep_for_sigchld(NS_PER_MS);
    }
}

void take_baseline(struct baseline *b)
{
    b->cg_cpu_ok = cg_cpu_ns(&b->cg_cpu);
    b->self_cpu = self_cpu_ns();
    b->children_cpu = children_cpu_ns();
    b->anon_ok = cg_memory(&b->anon, &b->shmem_ok, &b->shmem);
    b->files = tmpfs_used_bytes();
    b->oom_ok = cg_oom_kills(&b->oom);
    b->tasks_ok = cg_tasks(&b->tasks);
}

/* The command's CPU time, anonymous memory and (when tasks is not NULL) its number of tasks
 * now.  cgroup: deltas against the baseline, minus our own CPU time (the cgroup counts us too).
 * Without the cgroup files: reaped descendants (RUSAGE_CHILDREN) plus one /proc walk over the
 * live processes, skipped when live is false because everything has been reaped by then. */
static void measure(const struct baseline *b, bool live, int64_t *cpu, int64_t *anon,
                    int64_t *tasks)
{
    int64_t v, scan_cpu = 0, scan_anon = 0, scan_tasks = 0;
    bool scanned = false;
    if (b->cg_cpu_ok && cg_cpu_ns(&v)) {
        v = (v - b->cg_cpu) - (self_cpu_ns() - b->self_cpu);
    } else {
        if (live) {
            proc_scan(&scan_cpu, &scan_anon, &scan_tasks);
            scanned = true;
        }
        v = children_cpu_ns() - b->children_cpu + scan_cpu;
    }
    *cpu = v > 0 ? v : 0;
    bool shmem_ok;
    int64_t shmem = 0;
    if (b->anon_ok && cg_memory(&v, &shmem_ok, &shmem)) {
        v -= b->anon;
        v += shared_growth(b->shmem_ok && shmem_ok, b->shmem, shmem, b->files);
    } else if (live) {
        if (!scanned) {
            proc_scan(&scan_cpu, &scan_anon, &scan_tasks);
            scanned = true;
        }
        v = scan_anon;
    } else {
        v = 0;
    }
    *anon = v > 0 ? v : 0;
    if (!tasks)
        return;
    if (b->tasks_ok && cg_tasks(&v)) {
        v -= b->tasks;
    } else if (live) {
        if (!scanned)
            proc_scan(&scan_cpu, &scan_anon, &scan_tasks);
        v = scan_tasks;
    } else {
        v = 0;
    }
    *tasks = v > 0 ? v : 0;
}

static bool oom_rose(const struct baseline *b)
{
    int64_t v;
    return b->oom_ok && cg_oom_kills(&v) && v > b->oom;
}

/* One poll of a running command: measures it and sets o->reason when a limit is exceeded;
 * returns how long the monitor may sleep before the next poll.  peak_anon is the running peak
 * of its memory. */
int64_t check_limits(const struct exec_req *rq, const struct baseline *base, const struct run *r,
                     int64_t *peak_anon, struct outcome *o)
{
    const int64_t cpu_limit = rq->cpu_ms * NS_PER_MS, wall_limit = rq->wall_ms * NS_PER_MS;
    int64_t cpu, anon, tasks = 0;
    measure(base, true, &cpu, &anon, rq->process_limit > 0 ? &tasks : NULL);
    int64_t elapsed = now_ns() - r->t0;
    if (anon > *peak_anon)
        *peak_anon = anon;
    if (cpu > cpu_limit)
        o->reason = KR_CPU;
    else if (elapsed > wall_limit)
        o->reason = KR_WALL;
    else if (*peak_anon > rq->mem_kib * 1024 || oom_rose(base))
        o->reason = KR_MEM;
    else if (rq->process_limit > 0 && tasks > rq->process_limit)
        o->reason = KR_PROC;
    return next_poll_ns(cpu_limit - cpu, wall_limit - elapsed);
}

/* Opens a file to record as the sandbox user (caller switched): regular files only, no links,
 * and O_NONBLOCK so a FIFO cannot block us.  Returns -1 when there is nothing to record. */
int open_record(const char *path, int64_t want, int64_t *size)
{
    if (!path || want <= 0)
        return -1;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -1;
    }
    *size = st.st_size < want ? st.st_size : want;
    return fd;
}

/* Text of the answer: appended to *into when given, else written to stdout at once. */
static void put_text(struct sb *into, const char *text)
{
    if (into)
        sb_puts(into, text);
    else
        out_write(text, strlen(text));
}

/* Records up to this many bytes in all are sent inside the answer's one write: each write is a
 * frame the engine relays and the orchestrator wakes up for (a mission's records are at most
 * 4096 bytes each). */
#define ONE_WRITE_RECORD_BYTES (64 * 1024)

/* Up to n bytes of fd as base64: appended to *into when given, else streamed straight to stdout,
 * so a large record never needs a large buffer in the supervisor.  Chunks are multiples of 3
 * bytes: padding only at the end. */
static void stream_record(int fd, int64_t n, struct sb *into)
{
    enum { CHUNK = 3 * 16384 };
    unsigned char *buf = xmalloc(CHUNK);
    struct sb enc = {0};
    int64_t done = 0;
    bool eof = false;
    while (done < n && !eof) {
        size_t fill = 0, want = (size_t)(n - done < CHUNK ? n - done : CHUNK);
        while (fill < want) {
            ssize_t r = read(fd, buf + fill, want - fill);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                eof = true;
                break;
            }
            fill += (size_t)r;
        }
        if (into) {
            base64_encode(into, buf, fill);
        } else {
            enc.n = 0;
            base64_encode(&enc, buf, fill);
            out_write(enc.p, enc.n);
        }
        done += (int64_t)fill;
    }
    sb_free(&enc);
    free(buf);
}

/* Forks the command after taking the baselines.  False when it could not be started
 * (o->fork_errno set); else *rfd is the read end of its report pipe. */
bool start_command(const struct exec_req *rq, struct run *r, struct baseline *base, int *rfd,
                   struct outcome *o)
{
    int pfd[2];
    memset(o, 0, sizeof *o);
    *r = (struct run){.pid = -1};
    *rfd = -1;
    struct run strays = {.pid = -1};
    reap(&strays);                          /* stray zombies must not count for this command */
    malloc_trim(0);                         /* the child starts with our resident pages */
    take_baseline(base);

    /* Both ends non-blocking: the parent reads it only after the child is gone, so a child
     * stuck before execvp can never block us. */
    if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) != 0) {
        o->fork_errno = errno;
        return false;
    }
    r->t0 = now_ns();
    r->pid = spawn_command(rq, pfd);
    close(pfd[1]);
    if (r->pid < 0) {
        o->fork_errno = errno;
        close(pfd[0]);
        return false;
    }
    *rfd = pfd[0];
    return true;
}

/* Kills and reaps everything left, then the final figures, now that every process is gone and
 * its CPU time is in the counters. */
void finish_command(struct run *r, const struct baseline *base, int rfd, int64_t peak_anon,
                    struct outcome *o)
{
    kill_all(r);
    int64_t t_end = r->main_done ? r->t_end : now_ns();
    int64_t anon;
    measure(base, false, &o->cpu_ns, &anon, NULL);
    if (anon > peak_anon)
        peak_anon = anon;
    o->oom = oom_rose(base);
    if (read(rfd, &o->report, sizeof o->report) != (ssize_t)sizeof o->report)
        o->report.stage = 0;
    close(rfd);

    o->real_ns = t_end - r->t0;
    o->mem_kib = peak_anon / 1024;
    if (r->maxrss_kib > o->mem_kib)
        o->mem_kib = r->maxrss_kib;
    if (r->main_done && WIFEXITED(r->wstatus))
        o->exit_code = WEXITSTATUS(r->wstatus);
    if (r->main_done && WIFSIGNALED(r->wstatus))
        o->sig = WTERMSIG(r->wstatus);
}

/* Forks the command, enforces the limits until its main process ends or a limit is hit, kills
 * and reaps everything, and measures.  Leaves the user/root switching to the caller. */
static void supervise(const struct exec_req *rq, struct outcome *o)
{
    struct run r;
    struct baseline base;
    int64_t peak_anon = 0;
    int rfd;
    if (!start_command(rq, &r, &base, &rfd, o))
        return;
    /* The first poll comes after a first wait: measured at once, the command has used nothing
     * yet, and a short command (most are) ends before it, saving a round of cgroup reads. */
    int64_t wait = next_poll_ns(rq->cpu_ms * NS_PER_MS, rq->wall_ms * NS_PER_MS);
    for (;;) {
        sleep_for_sigchld(wait);
        reap(&r);
        if (r.main_done)
            break;
        wait = check_limits(rq, &base, &r, &peak_anon, o);
        if (o->reason != KR_NONE)
            break;
    }
    finish_command(&r, &base, rfd, peak_anon, o);
}

/* Protocol 2: the exec's meta, as the orchestrator writes it (Python's json.dumps layout), into
 * /box/<name> as the sandbox user (O_NOFOLLOW on every component, like put), saving a round
 * trip per execute.  Appends ,"meta_file":"" or ,"meta_file":"<why not>" to the answer. */
static void write_meta_file(struct sb *answer, const char *name, const char *status,
                            const struct sb *msg, const struct outcome *o)
{
    struct sb doc = {0};
    sb_puts(&doc, "{\"status\": ");
    json_cstr(&doc, status);
    sb_puts(&doc, ", \"message\": ");
    json_str(&doc, sb_str(msg), msg->n);
    sb_printf(&doc,
              ", \"memory-usage\": %lld, \"cpu-time-usage\": %lld, \"real-time-usage\": %lld, "
              "\"exit-code\": %d, \"signal\": %d}",
              (long long)o->mem_kib, (long long)(o->cpu_ns / NS_PER_MS),
              (long long)(o->real_ns / NS_PER_MS), o->exit_code, o->sig);
    int err = 0;
    if (!become_user()) {
        err = errno;
    } else {
        char leaf[NAME_MAX + 1];
        int dfd = walk_parent(name, false, leaf);
        if (dfd < 0) {
            err = errno;
        } else {
            int fd = leaf[0] ? openat(dfd, leaf, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
                                                     O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0644)
                             : (errno = EISDIR, -1);
            if (fd < 0) {
                err = errno;
            } else {
                struct stat st;
                if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
                    err = EFTYPE_NOTREG;
                else if (!write_all(fd, (const unsigned char *)doc.p, doc.n))
                    err = errno;
                if (close(fd) != 0 && !err)
                    err = errno;
            }
            close(dfd);
        }
        become_root();
    }
    sb_puts(answer, ",\"meta_file\":");
    if (err) {
        struct sb why = {0};
        sb_printf(&why, "cannot write '%s': %s", name,
                  err == EFTYPE_NOTREG ? "not a regular file (refused)" : errstr(err));
        json_str(answer, why.p, why.n);
        sb_free(&why);
    } else {
        sb_puts(answer, "\"\"");
    }
    sb_free(&doc);
}

void op_exec(const struct exec_req *rq)
{
    struct outcome o;
    supervise(rq, &o);
    answer_exec(rq, &o, NULL);
}

/* The command's redirected stdout/stderr, read as the uid it ran as (never following its links
 * as root): sets output_full when one reached the file-size limit, and (unless setup_error)
 * opens each recorded one into rec_fd with its length.  Shared by plain and interactive
 * executes. */
void scan_redirects(const struct exec_req *rq, struct outcome *o, bool setup_error,
                    int rec_fd[3], int64_t rec_len[3])
{
    if (o->fork_errno != 0 || !become_uid(rq->uid, rq->gid))
        return;
    for (int i = 1; i <= 2; i++) {
        struct stat st;
        if (rq->path[i] && lstat(rq->path[i], &st) == 0 && S_ISREG(st.st_mode) &&
            st.st_size >= file_size_limit_bytes(rq))
            o->output_full = true;
        if (!setup_error)
            rec_fd[i] = open_record(rq->path[i], rq->record[i], &rec_len[i]);
    }
    become_root();
}

/* The exec answer for an ended command: its verdict, its meta (also into its meta_file), any
 * extra members (JSON text beginning with a comma, or NULL), and its records. */
void answer_exec(const struct exec_req *rq, struct outcome *o, const char *extra)
{
    /* The redirected files, as the sandbox user: sizes for OLE, open fds for the records.  (No
     * records after SE: a file the command never opened may hold an earlier execute's data.) */
    bool setup_error = is_setup_error(o);
    int rec_fd[3] = {-1, -1, -1};
    int64_t rec_len[3] = {0, 0, 0};
    scan_redirects(rq, o, setup_error, rec_fd, rec_len);
    int merged_fd = -1;
    int64_t merged_len = 0;
    if (rq->merged_path && !setup_error && become_uid(rq->uid, rq->gid)) {
        merged_fd = open_record(rq->merged_path, rq->record_merged, &merged_len);
        become_root();
    }

    struct sb msg = {0};
    const char *status = verdict(rq, o, &msg);
    if (setup_error)
        o->exit_code = o->sig = 0;          /* the command never ran */

    struct sb b = {0};
    sb_puts(&b, "{\"ok\":true,\"op\":\"exec\",\"meta\":{\"status\":");
    json_cstr(&b, status);
    sb_puts(&b, ",\"message\":");
    json_str(&b, sb_str(&msg), msg.n);
    sb_printf(&b,
              ",\"memory-usage\":%lld,\"cpu-time-usage\":%lld,\"real-time-usage\":%lld,"
              "\"exit-code\":%d,\"signal\":%d}",
              (long long)o->mem_kib, (long long)(o->cpu_ns / NS_PER_MS),
              (long long)(o->real_ns / NS_PER_MS), o->exit_code, o->sig);
    if (rq->meta_file && rq->meta_file[0])
        write_meta_file(&b, rq->meta_file, status, &msg, o);
    if (extra)
        sb_puts(&b, extra);
    sb_puts(&b, ",\"record\":{\"stdout\":\"");
    /* Small records (every mission's) go out with the answer in one write: each write is a
     * frame the engine relays and the orchestrator wakes up for.  Large ones are streamed. */
    struct sb *into = rec_len[1] + rec_len[2] + merged_len <= ONE_WRITE_RECORD_BYTES ? &b : NULL;
    if (!into)
        out_sb(&b);
    if (rec_fd[1] >= 0)
        stream_record(rec_fd[1], rec_len[1], into);
    put_text(into, "\",\"stderr\":\"");
    if (rec_fd[2] >= 0)
        stream_record(rec_fd[2], rec_len[2], into);
    if (rq->merged_path) {                  /* only then: the plain answer stays as it was */
        put_text(into, "\",\"merged\":\"");
        if (merged_fd >= 0)
            stream_record(merged_fd, merged_len, into);
    }
    put_text(into, "\"}}\n");
    if (into)
        out_sb(&b);
    for (int i = 1; i <= 2; i++)
        if (rec_fd[i] >= 0)
            close(rec_fd[i]);
    if (merged_fd >= 0)
        close(merged_fd);
    sb_free(&b);
    sb_free(&msg);
}

/* ------------------------------------------------------------------------------------------ */
/* Requests                                                                                    */
/* ------------------------------------------------------------------------------------------ */

bool parse_exec(const struct jval *req, struct arena *a, struct exec_req *rq)
{
    static const char *const names[3] = {"stdin", "stdout", "stderr"};
    static const char *const recs[3] = {NULL, "record_stdout", "record_stderr"};
    memset(rq, 0, sizeof *rq);
    rq->uid = SANDBOX_UID;
    rq->gid = SANDBOX_GID;
    rq->pipe_fd[0] = rq->pipe_fd[1] = rq->pipe_fd[2] = -1;

    const struct jval *argv = member(req, "argv");
    if (!argv || argv->type != J_ARR || argv->count == 0)
        return fail_field("field 'argv' must be a non-empty list of strings");
    rq->argv = arena_alloc(a, (argv->count + 1) * sizeof *rq->argv);
    size_t i = 0;
    for (const struct jval *e = argv->child; e; e = e->next) {
        if (e->type != J_STR || strlen(e->s) != e->n)
            return fail_field("field 'argv' must be a list of strings without NUL characters");
        rq->argv[i++] = (char *)e->s;
    }
    rq->argv[i] = NULL;

    if (!get_int(req, "cpu_time_ms", true, 0, 1, LIMIT_MAX, &rq->cpu_ms) ||
        !get_int(req, "wall_time_ms", true, 0, 1, LIMIT_MAX, &rq->wall_ms) ||
        !get_int(req, "memory_kib", true, 0, 1, LIMIT_MAX, &rq->mem_kib) ||
        !get_int(req, "output_kib", true, 0, 0, LIMIT_MAX, &rq->out_kib) ||
        !get_int(req, "process_limit", false, 0, 1, LIMIT_MAX, &rq->process_limit) ||
        !get_int(req, "file_size_kib", false, -1, 0, LIMIT_MAX, &rq->file_size_kib) ||
        !get_int(req, "stack_kib", false, 0, 1, LIMIT_MAX, &rq->stack_kib))
        return false;
    for (int k = 0; k < 3; k++) {
        if (!get_str(req, names[k], false, &rq->name[k]))
            return false;
        rq->path[k] = rq->name[k][0] ? box_path(a, rq->name[k]) : NULL;
        if (recs[k] && !get_int(req, recs[k], false, 0, 0, LIMIT_MAX, &rq->record[k]))
            return false;
    }
    if (!get_str(req, "merged", false, &rq->merged_name) ||
        !get_int(req, "record_merged", false, 0, 0, LIMIT_MAX, &rq->record_merged))
        return false;
    rq->merged_path = rq->merged_name[0] ? box_path(a, rq->merged_name) : NULL;
    return get_str(req, "meta_file", false, &rq->meta_file);
}
