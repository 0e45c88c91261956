/*
 * interactive.c - an exec with an interactor: the program and its interactor run at once,
 * wired by two pipes, each as its own user under its own limits.
 */
#include "supervisor.h"

/* ------------------------------------------------------------------------------------------ */
/* Interactive executes: a program and its interactor, wired by pipes                          */
/* ------------------------------------------------------------------------------------------ */
/* Both run at once in this sandbox: the program as uid 10001, the interactor as uid 10002,
 * the program's stdout feeding the interactor's stdin and the other way round.  The cgroup
 * counts both, so each side is measured on its own from per-process figures: the rusage of
 * every process we reap (attributed by the uid waitid reports before the reap) and, while they
 * run, /proc of every live process of the side's uid.  See PROTOCOL.md, "Interactive". */

/* One side's running state and, at the end, its outcome. */
struct side {
    const struct exec_req *rq;
    struct run r;
    int rfd;                        /* read end of its report pipe */
    int64_t reaped_cpu_ns;          /* rusage of its reaped processes */
    int64_t peak_anon;              /* polled */
    bool tree_killed;               /* its leftovers were killed when its main process ended */
    struct outcome o;
};

static int side_of(struct side s[2], pid_t pid, uid_t uid)
{
    if (pid == s[0].r.pid)
        return 0;
    if (pid == s[1].r.pid)
        return 1;
    return uid == INTERACTOR_UID ? 1 : 0;
}

/* Reaps what has ended, crediting each process's rusage to its side: waitid(WNOWAIT) names its
 * pid and uid without reaping, then wait4 reaps exactly that pid.  True when no child is left. */
static bool reap_pair(struct side s[2])
{
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) != 0) {
            if (errno == EINTR)
                continue;
            return true;
        }
        if (si.si_pid == 0)
            return false;
        int st;
        struct rusage ru;
        pid_t p = wait4(si.si_pid, &st, __WALL, &ru);
        if (p != si.si_pid)
            continue;
        struct side *sd = &s[side_of(s, p, si.si_uid)];
        sd->reaped_cpu_ns += tv_ns(&ru.ru_utime) + tv_ns(&ru.ru_stime);
        if (ru.ru_maxrss > sd->r.maxrss_kib)
            sd->r.maxrss_kib = ru.ru_maxrss;
        if (p == sd->r.pid && !sd->r.main_done) {
            sd->r.main_done = true;
            sd->r.wstatus = st;
            sd->r.t_end = now_ns();
        }
    }
}

/* An interactive execute's two sides: the program (0) and its interactor (1). */
static int pair_side(uid_t uid)
{
    return uid == SANDBOX_UID ? 0 : uid == INTERACTOR_UID ? 1 : -1;
}

/* Whether a process other than `self` owned by uid is still alive (not a zombie). */
static bool uid_has_live(uid_t uid, pid_t self)
{
    DIR *d = opendir("/proc");
    if (!d)
        return false;
    bool found = false;
    char path[64], buf[512];
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 1 || pid == self)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat st;
        ssize_t r = fstat(fd, &st) == 0 && st.st_uid == uid ? read(fd, buf, sizeof buf - 1) : -1;
        close(fd);
        char *p = r > 0 ? (buf[r] = '\0', strrchr(buf, ')')) : NULL;
        if (p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X')
            found = true;
    }
    closedir(d);
    return found;
}

/* SIGKILLs every process of one side.  kill(-1) by a helper running as that uid reaches exactly
 * the processes of that uid (an unprivileged sender may signal its own uid only), in one sweep
 * of the kernel's task list; repeated until /proc shows none of them alive, so a forking
 * process cannot slip through.  (kill's return value cannot tell: Linux and gVisor answer
 * differently when some processes could not be signalled.)  The helper is reaped here and
 * counts for nobody. */
static void kill_uid(uid_t uid, gid_t gid)
{
    pid_t h = fork();
    if (h == 0) {
        if (setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0)
            _exit(1);
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 100 * 1000};
        for (int i = 0; i < 20000; i++) {
            (void)kill(-1, SIGKILL);
            if (!uid_has_live(uid, getpid()))
                break;
            nanosleep(&pause, NULL);
        }
        _exit(0);
    }
    if (h > 0)
        while (waitpid(h, NULL, __WALL) < 0 && errno == EINTR)
            ;
}

/* The directories holding private files, locked for the execute (see make_private). */
struct dir_guard {
    int fd;
    dev_t dev;
    ino_t ino;
    uid_t uid;
    gid_t gid;
    mode_t mode;
};

#define MAX_GUARDS 256
static struct dir_guard g_guard[MAX_GUARDS];
static size_t g_nguard;

/* fchmod as the sandbox user, the owner: root without CAP_FOWNER may not (gVisor refuses even
 * a root-owned file). */
static int chmod_as_user(int fd, mode_t mode)
{
    if (!become_user())
        return errno ? errno : EPERM;
    int err = fchmod(fd, mode) != 0 ? errno : 0;
    become_root();
    return err;
}

/* Locks one directory of the sandbox user for the execute: the sticky bit (set by its owner),
 * then root becomes its owner and the sandbox group keeps write access.  The program (uid
 * 10001) can still create files there, but an entry can only be renamed or removed by its own
 * owner now, so it can no longer move an interactor's private file (owned by 10002) or a locked
 * directory aside to plant its own: an interactor that opens its secret late reads the real
 * one.  A directory owned by anyone else is not the program's to move anyway.  fd stays the
 * caller's; the guard keeps a duplicate. */
static int lock_dir(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode))
        return ENOTDIR;
    if (st.st_uid != SANDBOX_UID)
        return 0;
    for (size_t i = 0; i < g_nguard; i++)
        if (g_guard[i].dev == st.st_dev && g_guard[i].ino == st.st_ino)
            return 0;
    if (g_nguard == MAX_GUARDS)
        return ENAMETOOLONG;
    int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (own < 0)
        return errno;
    g_guard[g_nguard++] =
        (struct dir_guard){own, st.st_dev, st.st_ino, st.st_uid, st.st_gid, st.st_mode & 07777};
    int err = chmod_as_user(own, 01775);
    if (!err && fchown(own, 0, SANDBOX_GID) != 0)
        err = errno;
    return err;
}

/* Gives the locked directories back as they were, deepest first: to the sandbox user, then
 * their mode, set by that owner. */
static void unlock_dirs(void)
{
    while (g_nguard > 0) {
        struct dir_guard *g = &g_guard[--g_nguard];
        struct stat st;
        int err = fchown(g->fd, g->uid, g->gid) != 0 ? errno : 0;
        /* gVisor may still hold the old owner for the directory (files were created in it):
         * an fstat refreshes it, else the owner's chmod below is refused. */
        if (!err)
            (void)fstat(g->fd, &st);
        if (!err)
            err = chmod_as_user(g->fd, g->mode);
        if (err)
            logmsg("supervisor: cannot restore a directory: %s", strerror(err));
        close(g->fd);
    }
}

/* Opens a private file as the sandbox user by walking its path from /box one component at a
 * time (O_NOFOLLOW everywhere: no symbolic link, not even in a directory's place), locking each
 * directory on the way (as root).  Returns the file's fd or -1 with errno set. */
static int open_private(const char *name)
{
    char buf[PATH_MAX];
    if (strlen(name) >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(buf, name);
    if (!become_user())
        return -1;
    int dir = open(BOX_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    become_root();
    if (dir < 0)
        return -1;
    int err = lock_dir(dir), fd = -1;
    char *save = NULL, *comp = strtok_r(buf, "/", &save);
    while (!err && comp) {
        char *next = strtok_r(NULL, "/", &save);
        if (strcmp(comp, "..") == 0) {
            err = EINVAL;
            break;
        }
        if (strcmp(comp, ".") == 0 && next) {
            comp = next;
            continue;
        }
        if (!become_user()) {
            err = errno ? errno : EPERM;
            break;
        }
        fd = openat(dir, comp, next ? O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
                                    : O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        /* Private since an earlier execute: unreadable for us, but fstat can tell. */
        if (fd < 0 && errno == EACCES && !next)
            fd = openat(dir, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        err = fd < 0 ? errno : 0;
        become_root();
        if (err || !next)
            break;
        close(dir);
        dir = fd;
        fd = -1;
        err = lock_dir(dir);
        comp = next;
    }
    close(dir);
    if (!err && fd >= 0)
        return fd;
    if (fd >= 0)
        close(fd);
    errno = err ? err : EINVAL;
    return -1;
}

/* Makes each private file readable by the interactor only: opened as the sandbox user (see
 * open_private; regular files only), chmod 0600 by its owner, then chown to the interactor
 * (CAP_CHOWN).  A file the interactor already owns is left as it is.  The directories on the
 * way stay locked until unlock_dirs().  Returns 0, or the errno of the first failure with
 * *which set to its index. */
static int make_private(const struct interactor_req *ir, size_t *which)
{
    for (size_t i = 0; i < ir->n_private; i++) {
        *which = i;
        int fd = open_private(ir->private_name[i]);
        int err = fd < 0 ? errno : 0;
        struct stat st;
        if (!err && fstat(fd, &st) != 0)
            err = errno;
        if (!err && !S_ISREG(st.st_mode))
            err = S_ISLNK(st.st_mode) ? ELOOP : S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        if (!err && st.st_uid != INTERACTOR_UID) {
            if (!become_user())
                err = errno ? errno : EPERM;
            else {
                if (fchmod(fd, 0600) != 0)
                    err = errno;
                become_root();
            }
        }
        if (!err && st.st_uid != INTERACTOR_UID && fchown(fd, INTERACTOR_UID, INTERACTOR_GID))
            err = errno;
        if (fd >= 0)
            close(fd);
        if (err)
            return err;
    }
    return 0;
}

/* The interactor may not create files in /box (the sandbox user's), so its stderr file is
 * created for it: as the sandbox user (no links), then handed over with fchown.  A failure is
 * left to the interactor's own open, which reports it as SE. */
static void give_stderr_file(const struct exec_req *irq)
{
    if (!irq->path[2] || !become_user())
        return;
    int fd = open(irq->path[2], O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
                                    O_CLOEXEC, 0644);
    become_root();
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == SANDBOX_UID)
        (void)fchown(fd, INTERACTOR_UID, INTERACTOR_GID);
    if (fd >= 0)
        close(fd);
}

/* Forks one side with its report pipe; the parent keeps the read end in s->rfd. */
static void start_side(struct side *s)
{
    int pfd[2];
    s->rfd = -1;
    if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) != 0) {
        s->o.fork_errno = errno;
        return;
    }
    s->r.t0 = now_ns();
    s->r.pid = fork();
    if (s->r.pid == 0) {
        close(pfd[0]);
        child_main(s->rq, pfd[1]);
    }
    close(pfd[1]);
    if (s->r.pid < 0) {
        s->o.fork_errno = errno;
        s->r.main_done = true;
        s->r.t_end = now_ns();
        close(pfd[0]);
        return;
    }
    s->rfd = pfd[0];
}

/* Runs both sides until both main processes ended, each under its own limits.  The program's
 * real-time limit runs from the start; the interactor's from the program's end, because an
 * interactor waiting for a stalled program is not at fault (the program gets the TLE), and one
 * that waited for a slow but correct program must still get its time to finish.  When a
 * side's main process ends or a side exceeds a limit, its leftovers are killed, so its pipe ends
 * close and the other side sees EOF or EPIPE and can finish. */
static void supervise_pair(struct side s[2])
{
    struct baseline base;
    struct run strays = {.pid = -1};
    reap(&strays);
    malloc_trim(0);
    take_baseline(&base);

    int p2i[2], i2p[2];                     /* program -> interactor, interactor -> program */
    if (pipe2(p2i, O_CLOEXEC) != 0) {
        s[0].o.fork_errno = s[1].o.fork_errno = errno;
        return;
    }
    if (pipe2(i2p, O_CLOEXEC) != 0) {
        s[0].o.fork_errno = s[1].o.fork_errno = errno;
        close(p2i[0]);
        close(p2i[1]);
        return;
    }
    struct exec_req prq = *s[0].rq, irq = *s[1].rq;
    prq.pipe_fd[0] = i2p[0];
    prq.pipe_fd[1] = p2i[1];
    irq.pipe_fd[0] = p2i[0];
    irq.pipe_fd[1] = i2p[1];
    const struct exec_req *orig[2] = {s[0].rq, s[1].rq};
    s[0].rq = &prq;
    s[1].rq = &irq;
    start_side(&s[1]);                      /* the interactor first: it usually speaks first */
    start_side(&s[0]);
    close(p2i[0]);
    close(p2i[1]);
    close(i2p[0]);
    close(i2p[1]);

    for (;;) {
        reap_pair(s);
        for (int k = 0; k < 2; k++)
            if (s[k].r.main_done && !s[k].tree_killed) {
                kill_uid(s[k].rq->uid, s[k].rq->gid);
                s[k].tree_killed = true;
            }
        if (s[0].r.main_done && s[1].r.main_done)
            break;
        int64_t cpu[2], anon[2], tasks[2], wait = POLL_NS;
        proc_walk(pair_side, 2, cpu, anon, tasks);
        int64_t elapsed = now_ns() - s[0].r.t0;
        for (int k = 0; k < 2; k++) {
            struct side *sd = &s[k];
            if (sd->r.main_done || sd->o.reason != KR_NONE)
                continue;
            const int64_t cpu_limit = sd->rq->cpu_ms * NS_PER_MS;
            const int64_t wall_limit = sd->rq->wall_ms * NS_PER_MS;
            int64_t used = sd->reaped_cpu_ns + cpu[k];
            /* The interactor's real time counts from the program's end (see above). */
            int64_t waited = k == 0 ? elapsed : now_ns() - s[0].r.t_end;
            if (anon[k] > sd->peak_anon)
                sd->peak_anon = anon[k];
            if (used > cpu_limit)
                sd->o.reason = KR_CPU;
            else if (waited > wall_limit && (k == 0 || s[0].r.main_done))
                sd->o.reason = KR_WALL;
            else if (sd->peak_anon > sd->rq->mem_kib * 1024)
                sd->o.reason = KR_MEM;
            else if (sd->rq->process_limit > 0 && tasks[k] > sd->rq->process_limit)
                sd->o.reason = KR_PROC;
            if (sd->o.reason != KR_NONE) {
                kill_uid(sd->rq->uid, sd->rq->gid);
                if (sd->r.pid > 0)
                    (void)kill(sd->r.pid, SIGKILL);     /* still root if it never got going */
                continue;
            }
            if (cpu_limit - used < wait)
                wait = cpu_limit - used > NS_PER_MS ? cpu_limit - used : NS_PER_MS;
            if ((k == 0 || s[0].r.main_done) && wall_limit - waited < wait && wall_limit > waited)
                wait = wall_limit - waited + 1;
        }
        sleep_for_sigchld(wait);
    }
    /* Everything else (nothing, normally) dies now; then the exact final figures. */
    int64_t deadline = now_ns() + KILL_GIVE_UP_NS;
    for (;;) {
        (void)kill(-1, SIGKILL);
        if (reap_pair(s) || now_ns() > deadline)
            break;
        sleep_for_sigchld(NS_PER_MS);
    }
    int64_t v;
    bool oom = base.oom_ok && cg_oom_kills(&v) && v > base.oom;
    for (int k = 0; k < 2; k++) {
        struct side *sd = &s[k];
        struct outcome *o = &sd->o;
        if (sd->rfd >= 0) {
            if (read(sd->rfd, &o->report, sizeof o->report) != (ssize_t)sizeof o->report)
                o->report.stage = 0;
            close(sd->rfd);
        }
        o->cpu_ns = sd->reaped_cpu_ns;
        if (k == 1 && s[0].r.t_end > s[1].r.t0)
            o->unlimited_ns = s[0].r.t_end - s[1].r.t0;
        o->real_ns = (sd->r.main_done && sd->r.t_end ? sd->r.t_end : now_ns()) - sd->r.t0;
        o->mem_kib = sd->peak_anon / 1024;
        if (sd->r.maxrss_kib > o->mem_kib)
            o->mem_kib = sd->r.maxrss_kib;
        if (sd->r.main_done && WIFEXITED(sd->r.wstatus))
            o->exit_code = WEXITSTATUS(sd->r.wstatus);
        if (sd->r.main_done && WIFSIGNALED(sd->r.wstatus))
            o->sig = WTERMSIG(sd->r.wstatus);
        /* The cgroup's OOM killer (the fence) picks processes, not sides: blame the side whose
         * main process died of SIGKILL without us sending it. */
        o->oom = oom && o->reason == KR_NONE && o->sig == SIGKILL;
        sd->rq = orig[k];
    }
}

/* The meta object of one side (PROTOCOL.md, `exec`). */
static void put_meta(struct sb *b, const char *status, const struct sb *msg,
                     const struct outcome *o)
{
    sb_puts(b, "{\"status\":");
    json_cstr(b, status);
    sb_puts(b, ",\"message\":");
    json_str(b, sb_str(msg), msg->n);
    sb_printf(b,
              ",\"memory-usage\":%lld,\"cpu-time-usage\":%lld,\"real-time-usage\":%lld,"
              "\"exit-code\":%d,\"signal\":%d}",
              (long long)o->mem_kib, (long long)(o->cpu_ns / NS_PER_MS),
              (long long)(o->real_ns / NS_PER_MS), o->exit_code, o->sig);
}

/* Verdict and record of one side, as its user.  Streams nothing: the records are read into
 * memory (each at most what the request asked for, and the orchestrator caps those). */
static void finish_side(struct side *sd, struct sb *out)
{
    const struct exec_req *rq = sd->rq;
    struct outcome *o = &sd->o;
    bool setup_error = is_setup_error(o);
    int rec_fd[3] = {-1, -1, -1};
    int64_t rec_len[3] = {0, 0, 0};
    scan_redirects(rq, o, setup_error, rec_fd, rec_len);
    struct sb msg = {0};
    const char *status = verdict(rq, o, &msg);
    if (setup_error)
        o->exit_code = o->sig = 0;
    sb_puts(out, "\"meta\":");
    put_meta(out, status, &msg, o);
    sb_puts(out, ",\"record\":{");
    static const char *const keys[3] = {NULL, "\"stdout\":\"", "\",\"stderr\":\""};
    for (int i = 1; i <= 2; i++) {
        sb_puts(out, keys[i]);
        if (rec_fd[i] < 0)
            continue;
        unsigned char *buf = xmalloc((size_t)rec_len[i] + 1);
        size_t fill = 0;
        while (fill < (size_t)rec_len[i]) {
            ssize_t r = read(rec_fd[i], buf + fill, (size_t)rec_len[i] - fill);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            fill += (size_t)r;
        }
        base64_encode(out, buf, fill);
        free(buf);
        close(rec_fd[i]);
    }
    sb_puts(out, "\"}");
    sb_free(&msg);
}

void op_exec_interactive(const struct exec_req *rq, const struct interactor_req *ir)
{
    struct side s[2];
    memset(s, 0, sizeof s);
    s[0].rq = rq;
    s[1].rq = &ir->rq;
    s[0].r.pid = s[1].r.pid = -1;
    s[0].rfd = s[1].rfd = -1;

    size_t which = 0;
    int err = make_private(ir, &which);
    if (err) {
        unlock_dirs();
        struct sb m = {0};
        sb_printf(&m, "cannot make private file '%s' private: %s", ir->private_name[which],
                  err == ENOENT ? "not found" : errstr(err));
        struct sb b = {0};
        struct outcome none;
        memset(&none, 0, sizeof none);
        sb_puts(&b, "{\"ok\":true,\"op\":\"exec\",\"meta\":");
        put_meta(&b, "SE", &m, &none);
        sb_puts(&b, ",\"record\":{\"stdout\":\"\",\"stderr\":\"\"},\"interactor\":{\"meta\":");
        put_meta(&b, "SE", &m, &none);
        sb_puts(&b, ",\"record\":{\"stdout\":\"\",\"stderr\":\"\"}}}\n");
        out_sb(&b);
        sb_free(&b);
        sb_free(&m);
        return;
    }
    give_stderr_file(&ir->rq);
    supervise_pair(s);
    unlock_dirs();                          /* nothing of the execute runs any more */

    struct sb b = {0};
    sb_puts(&b, "{\"ok\":true,\"op\":\"exec\",");
    finish_side(&s[0], &b);
    sb_puts(&b, ",\"interactor\":{");
    finish_side(&s[1], &b);
    sb_puts(&b, "}}\n");
    out_sb(&b);
    sb_free(&b);
}

/* The optional "interactor" object of an exec request: the fields of an exec but stdin and
 * stdout (they are the pipes), plus "private", a list of paths. */
bool parse_interactor(const struct jval *obj, struct arena *a, struct interactor_req *ir)
{
    memset(ir, 0, sizeof *ir);
    if (obj->type != J_OBJ)
        return fail_field("field 'interactor' must be an object");
    if (!parse_exec(obj, a, &ir->rq)) {
        char inner[sizeof g_reqerr];
        memcpy(inner, g_reqerr, sizeof inner);
        return fail_field("interactor: %s", inner);
    }
    if (ir->rq.name[0][0] || ir->rq.name[1][0])
        return fail_field("interactor: 'stdin' and 'stdout' are the pipes and must be empty");
    ir->rq.uid = INTERACTOR_UID;
    ir->rq.gid = INTERACTOR_GID;
    const struct jval *priv = member(obj, "private");
    if (!priv)
        return true;
    if (priv->type != J_ARR || priv->count > MAX_PRIVATE)
        return fail_field("field 'interactor.private' must be a list of at most %d strings",
                          MAX_PRIVATE);
    for (const struct jval *e = priv->child; e; e = e->next) {
        if (e->type != J_STR || strlen(e->s) != e->n || e->n == 0)
            return fail_field("field 'interactor.private' must be a list of non-empty strings "
                              "without NUL characters");
        ir->private_name[ir->n_private] = e->s;
        ir->private_path[ir->n_private++] = box_path(a, e->s);
    }
    return true;
}
