/*
 * spawn.c - starting a command's process: the child's set-up between vfork (or fork) and
 * execvp, and the choice between the two.
 */
#include "supervisor.h"

/* The command's whole environment (PROTOCOL.md); nothing of ours leaks into it. */
static char *clean_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/box",
    "LANG=C.UTF-8",
    "TMPDIR=/tmp",
    NULL,
};

extern char **environ;

/* /proc/self/clear_refs, open for writing, or -1 where it cannot be (gVisor has none): see
 * spawn_command. */
static int g_clear_refs = -1;

void spawn_setup(void)
{
    /* execvp looks PATH up in environ: the command's is ours from the start, so the child
     * (which shares our memory until it execs) writes nothing of ours.  Nothing of the
     * supervisor reads its own environment. */
    environ = clean_env;
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd >= 0 && write(fd, "5", 1) == 1)
        g_clear_refs = fd;
    else if (fd >= 0)
        close(fd);
}

/* ------------------------------------------------------------------------------------------ */
/* The command's process (between fork and execvp)                                            */
/* ------------------------------------------------------------------------------------------ */

static _Noreturn void child_fail(int fd, int stage, int err)
{
    struct child_report r = {.stage = stage, .err = err};
    ssize_t w = write(fd, &r, sizeof r);
    (void)w;
    _exit(127);
}

/* Opens a redirection as the (already unprivileged) child.  O_NONBLOCK only guards the open
 * itself, so that a FIFO planted in /box cannot hang the setup; it is cleared right after. */
int open_redirect(const char *path, int flags)
{
    int fd = open(path ? path : "/dev/null",
                  flags | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

/* Lowers soft and hard limit to v, so the command cannot raise it again.  We cannot raise a hard
 * limit (no CAP_SYS_RESOURCE), so a lower one inherited from the engine is kept. */
static int set_limit(int resource, int64_t v)
{
    struct rlimit cur, nl;
    if (getrlimit(resource, &cur) != 0)
        return -1;
    int64_t hard = cur.rlim_max == RLIM_INFINITY ? -1 : (int64_t)cur.rlim_max;
    nl.rlim_cur = nl.rlim_max = (rlim_t)rlimit_value(v, hard);
    return setrlimit(resource, &nl);
}

_Noreturn void child_main(const struct exec_req *rq, int rfd)
{
    /* Dispositions: execve resets handled signals (SIGTERM, SIGINT, SIGHUP: see on_terminate
     * for one that arrives before) but keeps ignored ones, and the supervisor ignores SIGPIPE
     * alone.  Then unblock everything. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGPIPE, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    (void)setsid();

    /* Make the command, not the supervisor, the memory cgroup OOM killer's first choice.
     * Raising the value needs no privilege; it is inherited by all descendants. */
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t w = write(fd, "1000", 4);
        (void)w;
        close(fd);
    }

    /* Drop privileges for good: real, effective, saved and file-system IDs.  Changing all uids
     * from 0 to non-zero also clears every capability set.  Raw system calls: they change this
     * process alone, where libc's wrappers may first look at its thread bookkeeping, which a
     * vfork child shares with the supervisor. */
    if (syscall(SYS_setgroups, 0, NULL) != 0 ||
        syscall(SYS_setresgid, rq->gid, rq->gid, rq->gid) != 0 ||
        syscall(SYS_setresuid, rq->uid, rq->uid, rq->uid) != 0)
        child_fail(rfd, ST_PRIV, errno);
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != rq->uid ||
        eu != rq->uid || su != rq->uid || rg != rq->gid || eg != rq->gid || sg != rq->gid)
        child_fail(rfd, ST_PRIV, EPERM);
    (void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    umask(022);

    if (chdir(BOX_DIR) != 0)
        child_fail(rfd, ST_CHDIR, errno);

    int in = rq->pipe_fd[0] >= 0 ? rq->pipe_fd[0] : open_redirect(rq->path[0], O_RDONLY);
    if (in < 0)
        child_fail(rfd, ST_STDIN, errno);
    int out = rq->pipe_fd[1] >= 0 ? rq->pipe_fd[1]
                                  : open_redirect(rq->path[1], O_WRONLY | O_CREAT | O_TRUNC);
    if (out < 0)
        child_fail(rfd, ST_STDOUT, errno);
    int err;
    if (rq->pipe_fd[2] >= 0) {
        err = rq->pipe_fd[2];
    } else if (rq->path[1] && rq->path[2] && strcmp(rq->path[1], rq->path[2]) == 0) {
        err = out;                          /* one open file: a shared offset, no clobbering */
    } else {
        err = open_redirect(rq->path[2], O_WRONLY | O_CREAT | O_TRUNC);
        if (err < 0)
            child_fail(rfd, ST_STDERR, errno);
        /* Different spellings of the same file ("out" and "./out") share one open file too. */
        struct stat so, se;
        if (rq->path[1] && rq->path[2] && fstat(out, &so) == 0 && fstat(err, &se) == 0 &&
            S_ISREG(so.st_mode) && so.st_dev == se.st_dev && so.st_ino == se.st_ino) {
            close(err);
            err = out;
        }
    }
    /* The supervisor's fds 0-2 are always open, so in/out/err are >= 3 and dup2 cannot clobber
     * one of them.  dup2 clears close-on-exec on the targets only. */
    if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
        dup2(err, STDERR_FILENO) < 0)
        child_fail(rfd, ST_STDIN, errno);

    if (set_limit(RLIMIT_FSIZE, file_size_limit_bytes(rq)) != 0 ||
        set_limit(RLIMIT_CORE, 0) != 0 ||
        set_limit(RLIMIT_STACK, stack_limit_bytes(rq)) != 0 ||
        set_limit(RLIMIT_NOFILE, 1024) != 0)
        child_fail(rfd, ST_RLIMIT, errno);

    /* environ is clean_env since spawn_setup: execvp looks PATH up there. */
    execvp(rq->argv[0], rq->argv);
    child_fail(rfd, ST_EXEC, errno);
}

/* Starts child_main(rq, pfd[1]) in a new process and returns its pid (-1 and errno when none
 * could be made); the child closes pfd[0].
 *
 * vfork, where /proc/self/clear_refs can be written: the child borrows our memory until it
 * execs, so nothing is copied (a fork of the supervisor, page tables and the copy-on-write
 * faults after it, was a fifth of an execute's cost beyond the command).  We are suspended
 * meanwhile; child_main only makes system calls, writes nothing of ours and never returns
 * (execvp or _exit), and nothing in the sandbox can stop it before it execs (the previous
 * command's processes are gone, and it is root until it becomes the sandbox user).
 * The command's peak memory (ru_maxrss) starts at the peak of the memory it came from: a forked
 * child's is a copy of ours as it is now, a vfork child's is ours, whose peak could be a large
 * request's.  Writing "5" to clear_refs resets our peak to what we hold now, which makes the
 * two the same.  Without it (gVisor), fork. */
pid_t spawn_command(const struct exec_req *rq, const int pfd[2])
{
    pid_t pid;
    if (g_clear_refs >= 0 && write(g_clear_refs, "5", 1) == 1)
        pid = vfork();
    else
        pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        child_main(rq, pfd[1]);
    }
    return pid;
}
