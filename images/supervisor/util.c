/*
 * util.c - small utilities: diagnostics, time, the string builder, acting as the sandbox
 * user, signal names.
 */
#include "supervisor.h"

#include <sys/signalfd.h>

sigset_t g_sigchld;                         /* {SIGCHLD}, blocked for our whole life */

/* ------------------------------------------------------------------------------------------ */
/* Small utilities                                                                             */
/* ------------------------------------------------------------------------------------------ */

/* Diagnostics go to stderr, which production discards (log driver none); they help tests. */
void logmsg(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, (size_t)n);
    (void)w;
}

/* Something that must not fail failed (e.g. regaining root).  As PID 1 our exit takes the whole
 * container, and every process in it, down with us, which is the safe outcome. */
_Noreturn void fatal(const char *what)
{
    logmsg("supervisor: fatal: %s: %s", what, strerror(errno));
    _exit(1);
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        fatal("out of memory");
    return p;
}

int64_t ts_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * NS_PER_SEC + ts->tv_nsec;
}

int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts_ns(&ts);
}

/* Our own CPU time: the container cgroup counts it too, so it is subtracted from the figure. */
int64_t self_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return 0;
    return ts_ns(&ts);
}

int64_t tv_ns(const struct timeval *tv)
{
    return (int64_t)tv->tv_sec * NS_PER_SEC + (int64_t)tv->tv_usec * 1000;
}

/* CPU time of every reaped descendant (the fallback when no cgroup file is readable). */
int64_t children_cpu_ns(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_CHILDREN, &ru) != 0)
        return 0;
    return tv_ns(&ru.ru_utime) + tv_ns(&ru.ru_stime);
}

void sleep_for_sigchld(int64_t ns)
{
    if (ns < MIN_POLL_NS)
        ns = MIN_POLL_NS;
    struct timespec ts = {.tv_sec = (time_t)(ns / NS_PER_SEC), .tv_nsec = (long)(ns % NS_PER_SEC)};
    /* Returns on SIGCHLD (consumed; we reap with wait4 anyway), on timeout or on EINTR. */
    (void)sigtimedwait(&g_sigchld, NULL, &ts);
}

/* "Too many levels of symbolic links" is what O_NOFOLLOW yields on a link; say it plainly. */
const char *errstr(int err)
{
    if (err == ELOOP)
        return "is a symbolic link (refused)";
    if (err == EFTYPE_NOTREG)
        return "not a regular file (refused)";
    if (err == EFTYPE_SAME)
        return "it is also the stdout or stderr file (refused)";
    return strerror(err);
}

/* ------------------------------------------------------------------------------------------ */
/* String builder                                                                              */
/* ------------------------------------------------------------------------------------------ */

void sb_reserve(struct sb *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->n)
        fatal("string too large");
    size_t need = b->n + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        fatal("out of memory");
    b->p = p;
    b->cap = cap;
}

void sb_put(struct sb *b, const void *s, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void sb_puts(struct sb *b, const char *s) { sb_put(b, s, strlen(s)); }
void sb_putc(struct sb *b, char c) { sb_put(b, &c, 1); }

void sb_printf(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    sb_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

void sb_free(struct sb *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

const char *sb_str(const struct sb *b) { return b->p ? b->p : ""; }

/* ------------------------------------------------------------------------------------------ */
/* Acting as the sandbox user                                                                  */
/* ------------------------------------------------------------------------------------------ */
/* The saved set-user-ID stays 0, so switching back needs no capability; the file-system IDs
 * follow the effective IDs.  Root's supplementary groups were dropped at start-up, so the user's
 * access is exactly uid/gid 10001. */

bool become_uid(uid_t uid, gid_t gid)
{
    if (setegid(gid) != 0)
        return false;
    if (seteuid(uid) != 0) {
        if (setegid(0) != 0)
            fatal("setegid(0)");
        return false;
    }
    return true;
}

bool become_user(void) { return become_uid(SANDBOX_UID, SANDBOX_GID); }

void become_root(void)
{
    if (seteuid(0) != 0 || setegid(0) != 0)
        fatal("cannot regain root after acting as the sandbox user");
}

/* ------------------------------------------------------------------------------------------ */
/* Signals                                                                                     */
/* ------------------------------------------------------------------------------------------ */

void signal_name(int sig, char *buf, size_t cap)
{
    buf[0] = '\0';
#ifdef HAVE_SIGABBREV_NP
    const char *abbrev = sigabbrev_np(sig);
    if (abbrev) {
        snprintf(buf, cap, "SIG%s", abbrev);
        return;
    }
#else
    static const struct { int sig; const char *name; } names[] = {
        {SIGHUP, "SIGHUP"}, {SIGINT, "SIGINT"}, {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},
        {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"}, {SIGFPE, "SIGFPE"},
        {SIGKILL, "SIGKILL"}, {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
        {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
        {SIGSTKFLT, "SIGSTKFLT"}, {SIGCHLD, "SIGCHLD"}, {SIGCONT, "SIGCONT"},
        {SIGSTOP, "SIGSTOP"}, {SIGTSTP, "SIGTSTP"}, {SIGTTIN, "SIGTTIN"}, {SIGTTOU, "SIGTTOU"},
        {SIGURG, "SIGURG"}, {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"},
        {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGWINCH, "SIGWINCH"},
        {SIGIO, "SIGIO"}, {SIGPWR, "SIGPWR"}, {SIGSYS, "SIGSYS"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].sig == sig) {
            snprintf(buf, cap, "%s", names[i].name);
            return;
        }
#endif
    if (sig >= SIGRTMIN && sig <= SIGRTMAX)
        snprintf(buf, cap, "SIGRTMIN+%d", sig - SIGRTMIN);
}

/* SIGTERM/SIGINT/SIGHUP (e.g. `docker stop`): as PID 1 we would otherwise ignore them.  Exiting
 * makes the kernel kill every process of the namespace.  A command forked but not yet past
 * resetting its dispositions (a streaming exec's signal can come that early) still has this
 * handler: there the signal is the command's, so it takes its default action.  Only
 * async-signal-safe calls. */
void on_terminate(int sig)
{
    if (getpid() != 1) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        (void)sigaction(sig, &dfl, NULL);
        (void)raise(sig);                   /* delivered when this handler returns */
        return;
    }
    _exit(0);
}

/* ------------------------------------------------------------------------------------------ */
/* File descriptors and waiting on several (the streaming and merged executes)                */
/* ------------------------------------------------------------------------------------------ */

int set_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* ppoll() on fds until deadline_ns (CLOCK_MONOTONIC), but at least MIN_POLL_NS; > 0 when some
 * fd is ready. */
int poll_until(struct pollfd *fds, int nfds, int64_t deadline_ns)
{
    int64_t left = deadline_ns - now_ns();
    if (left < MIN_POLL_NS)
        left = MIN_POLL_NS;
    struct timespec ts = {.tv_sec = (time_t)(left / NS_PER_SEC),
                          .tv_nsec = (long)(left % NS_PER_SEC)};
    return ppoll(fds, (nfds_t)nfds, &ts, NULL);
}

/* Empties a non-blocking signalfd (the SIGCHLDs that woke us: reap() does the rest). */
void drain_signalfd(int sfd)
{
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
        ;
}
