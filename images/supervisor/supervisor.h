/*
 * supervisor.h - what the parts of the supervisor share.
 *
 * The supervisor is PID 1 of every judge sandbox container.  The contract is PROTOCOL.md next
 * to this file; read it first.  In short: the orchestrator writes one JSON request per line on
 * our stdin, we answer one JSON line on stdout.  The `exec` request runs one untrusted command
 * as uid/gid 10001 under CPU, real-time, memory and output limits, then kills every process left
 * in the container before answering.
 *
 * The parts, one job each:
 *   channel.c      the line protocol: reading requests, writing answers, dispatch, main()
 *   json.c         JSON parsing and output, base64, request field validation
 *   util.c         string builder, time, diagnostics, acting as the sandbox user, signal names
 *   cgroup.c       the measurements: cgroup v1/v2 counters and the /proc walk
 *   limits.c       limit arithmetic and the verdict (pure: unit-tested on the host)
 *   spawn.c        a command's process: the child's set-up between vfork/fork and execvp
 *   exec.c         one command: supervision under the limits, the exec answer
 *   interactive.c  an exec with an interactor: two commands wired by pipes
 *   stream.c       a streaming exec: stdin, stdout and stderr relayed over the channel
 *   merged.c       an exec with `merged`: stdout and stderr through pipes into their files and
 *                  one file of both in the order they were read
 *   files.c        the file operations write, put, list, read
 *
 * Build: gcc -O2 -Wall -Wextra -Werror -static -o supervisor *.c
 *
 * Design notes (the "why"):
 *  - We are PID 1 of the container's PID namespace, so kill(-1, SIGKILL) reaches every process
 *    but ourselves and every orphan is re-parented to us.  That is what makes "nothing survives
 *    an execute" cheap and exact.  Outside a PID namespace the same call would kill the whole
 *    machine's processes, hence the getpid() == 1 check before anything else.
 *  - The container runs us as root with only CAP_SETUID, CAP_SETGID, CAP_KILL and CAP_CHOWN (to
 *    hand an interactor its private files).  Root without
 *    CAP_DAC_OVERRIDE has no special file access; everything touching /box (redirections,
 *    records, the `write` op) is nevertheless done with the sandbox user's credentials, so a
 *    hostile program cannot trick us into reading or writing through its symbolic links.
 *  - Files move over this channel too (protocol 2: put, list, read, an exec's meta_file): one
 *    round trip instead of an engine archive call, every path component opened O_NOFOLLOW.
 *  - SIGCHLD stays blocked; the monitor sleeps in sigtimedwait() for at most 5 ms, so a child's
 *    death wakes us at once and the limits are polled at least 200 times a second.
 *  - CPU time and memory come from the container's cgroup, which counts every descendant,
 *    including daemonized orphans and processes reaped by someone else.  Memory is anonymous
 *    memory plus shared memory (memfd, MAP_SHARED, /dev/shm, SysV); files in /box and /tmp are
 *    not memory of the command: they are bounded by the sizes of those mounts.
 *  - No stdio on stdout: responses are assembled in memory (or streamed, for records) and written
 *    with a loop that survives EINTR, partial writes and a non-blocking pipe.
 *  - The supervisor keeps its resident memory small, because a command's ru_maxrss starts at
 *    what it came from: a forked child's copy of our page tables, or (vfork, see spawn.c) our
 *    current memory once our peak is reset.
 */
#ifndef JUDGE_SUPERVISOR_H
#define JUDGE_SUPERVISOR_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
#define HAVE_SIGABBREV_NP 1
#endif

/* ------------------------------------------------------------------------------------------ */
/* Constants                                                                                   */
/* ------------------------------------------------------------------------------------------ */

#define PROTOCOL_VERSION 2                  /* 2: the file operations put, list, read */
#define SANDBOX_UID ((uid_t)10001)
#define SANDBOX_GID ((gid_t)10001)
#define INTERACTOR_UID ((uid_t)10002)       /* an interactive execute's interactor */
#define INTERACTOR_GID ((gid_t)10002)
#define BOX_DIR "/box"

#define MAX_LINE ((size_t)1 << 20)          /* longest accepted request line, bytes */
#define READ_CHUNK ((size_t)64 << 10)       /* stdin read size */
#define LINE_BUF_KEEP ((size_t)128 << 10)   /* shrink the line buffer back to this */
#define JSON_MAX_DEPTH 64                   /* hostile nesting must not blow our stack */
#define LIMIT_MAX ((int64_t)1 << 40)        /* upper bound of any numeric request field */
#define MIN_STACK_BYTES ((int64_t)8 << 20)  /* RLIMIT_STACK floor */

#define NS_PER_MS 1000000LL
#define NS_PER_SEC 1000000000LL
#define POLL_NS (5 * NS_PER_MS)             /* the limits are checked at least this often */
#define MIN_POLL_NS (200 * 1000LL)          /* but never busy-loop */
#define EFTYPE_NOTREG (-1000)               /* our own "errno": not a regular file */
#define EFTYPE_SAME (-1001)                 /* our own "errno": the merged file is stdout's */
#define KILL_GIVE_UP_NS (5 * NS_PER_SEC)    /* see kill_all() */

extern sigset_t g_sigchld;                  /* {SIGCHLD}, blocked for our whole life */
extern long g_clk_tck;

/* ------------------------------------------------------------------------------------------ */
/* util.c: diagnostics, time, the string builder, acting as another user, signal names        */
/* ------------------------------------------------------------------------------------------ */

void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatal(const char *what);
void *xmalloc(size_t n);
int64_t ts_ns(const struct timespec *ts);
int64_t now_ns(void);
int64_t self_cpu_ns(void);
int64_t tv_ns(const struct timeval *tv);
int64_t children_cpu_ns(void);
void sleep_for_sigchld(int64_t ns);
const char *errstr(int err);

struct sb {
    char *p;
    size_t n, cap;
};

void sb_reserve(struct sb *b, size_t extra);
void sb_put(struct sb *b, const void *s, size_t n);
void sb_puts(struct sb *b, const char *s);
void sb_putc(struct sb *b, char c);
void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_free(struct sb *b);
const char *sb_str(const struct sb *b);

bool become_uid(uid_t uid, gid_t gid);
bool become_user(void);
void become_root(void);

void signal_name(int sig, char *buf, size_t cap);
void on_terminate(int sig);

int set_nonblock(int fd, bool on);
void close_fd(int *fd);
int poll_until(struct pollfd *fds, int nfds, int64_t deadline_ns);
void drain_signalfd(int sfd);

/* ------------------------------------------------------------------------------------------ */
/* json.c: JSON output and parsing, base64, request fields                                     */
/* ------------------------------------------------------------------------------------------ */

size_t utf8_len(const unsigned char *s, size_t n);
void json_str(struct sb *b, const char *s, size_t n);
void json_cstr(struct sb *b, const char *s);
void base64_encode(struct sb *b, const unsigned char *p, size_t n);
bool base64_decode(const char *s, size_t n, unsigned char **out, size_t *outlen);

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct arena {
    struct arena_chunk *head;
};

void *arena_alloc(struct arena *a, size_t n);
void arena_free(struct arena *a);

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
    enum jtype type;
    bool b;                 /* J_BOOL */
    bool is_int;            /* J_NUM: integral and fits in int64_t */
    int64_t i;              /* J_NUM when is_int */
    const char *s;          /* J_STR: decoded bytes, NUL-terminated (may contain NUL) */
    size_t n;
    const char *key;        /* the member name when this value sits in an object */
    size_t keylen;
    struct jval *child;     /* J_ARR / J_OBJ: first element or member */
    struct jval *next;      /* next sibling */
    size_t count;           /* J_ARR / J_OBJ: number of children */
};

struct jval *json_parse(const char *s, size_t n, struct arena *a, const char **err);
const struct jval *member(const struct jval *obj, const char *key);

extern char g_reqerr[512];  /* why the last get_int/get_str/fail_field failed */
bool fail_field(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool get_int(const struct jval *req, const char *key, bool required, int64_t dflt, int64_t lo,
             int64_t hi, int64_t *out);
bool get_str(const struct jval *req, const char *key, bool required, const char **out);
const char *box_path(struct arena *a, const char *name);

/* ------------------------------------------------------------------------------------------ */
/* channel.c: answers on stdout                                                                */
/* ------------------------------------------------------------------------------------------ */

/* The next complete request line: LINE_OK with *line and *n (valid until the next call),
 * LINE_TOO_LONG (to be answered with an error), or LINE_NONE (channel_fill first). */
enum take { LINE_NONE, LINE_OK, LINE_TOO_LONG };
enum take channel_take_line(const char **line, size_t *n);
/* Reads what stdin has once: > 0 bytes, 0 at its end (or a broken stdin), -1 with errno
 * EAGAIN or EINTR when nothing came. */
ssize_t channel_fill(void);
/* At the end of stdin: an unterminated last line, if any. */
enum take channel_take_rest(const char **line, size_t *n);

void out_write(const void *buf, size_t n);
void out_sb(const struct sb *b);
void respond_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------------------------------------ */
/* cgroup.c: measurements                                                                      */
/* ------------------------------------------------------------------------------------------ */

struct cgroup_files {
    const char *version;    /* "v1", "v2" or "none" as announced in hello */
    bool v2;
    int cpu_fd;             /* v1 cpuacct.usage (ns) / v2 cpu.stat usage_usec */
    int mem_fd;             /* v1 memory.stat total_rss / v2 memory.stat anon (bytes) */
    int oom_fd;             /* v1 memory.oom_control / v2 memory.events: oom_kill */
    int pids_fd;            /* v1 and v2 pids.current: tasks in the container */
};
extern struct cgroup_files cg;

/* Where cg_detect looks: "/sys/fs/cgroup" and "/proc/self/cgroup" in a sandbox; a recorded
 * tree in the host-side unit test. */
void cg_detect(const char *sys_cgroup, const char *proc_self_cgroup);
bool cg_cpu_ns(int64_t *out);
bool cg_anon_bytes(int64_t *out);
bool cg_shmem_bytes(int64_t *out);
bool cg_memory(int64_t *anon, bool *shmem_ok, int64_t *shmem);
bool cg_oom_kills(int64_t *out);
bool cg_tasks(int64_t *out);
void tmpfs_open(void);
int64_t tmpfs_used_bytes(void);
int64_t shared_growth(bool base_ok, int64_t base_shmem, int64_t shmem, int64_t base_files);

#define MAX_SIDES 2
void proc_walk(int (*side_of)(uid_t), int n, int64_t cpu_ns[], int64_t anon[], int64_t tasks[]);
void proc_scan(int64_t *cpu_ns, int64_t *anon_bytes, int64_t *tasks);

/* ------------------------------------------------------------------------------------------ */
/* exec.c: one command                                                                         */
/* ------------------------------------------------------------------------------------------ */

enum stage {
    ST_PRIV = 1, ST_CHDIR, ST_STDIN, ST_STDOUT, ST_STDERR, ST_RLIMIT, ST_EXEC, ST_MERGED
};

/* What the child tells the parent through the close-on-exec pipe when a step fails.  A
 * successful execvp closes the pipe silently.  It is smaller than PIPE_BUF, so atomic. */
struct child_report {
    int stage;
    int err;
};

struct exec_req {
    char **argv;
    int64_t cpu_ms, wall_ms, mem_kib, out_kib;
    int64_t process_limit;  /* tasks alive at once; 0 = no limit of ours (the pids fence) */
    int64_t file_size_kib;  /* RLIMIT_FSIZE when below out_kib; -1 = absent */
    int64_t stack_kib;      /* RLIMIT_STACK; 0 = absent (the memory limit, at least 8 MiB) */
    int64_t record[3];      /* [1] stdout, [2] stderr bytes to return */
    const char *name[3];    /* redirection as given; "" = /dev/null */
    const char *path[3];    /* "/box/<name>", NULL for /dev/null */
    const char *meta_file;  /* protocol 2: write the meta here too ("" = do not) */
    const char *merged_name; /* feature `merged`: both streams in read order ("" = none) */
    const char *merged_path; /* "/box/<merged_name>", NULL for none */
    int64_t record_merged;  /* bytes of the merged file to return */
    uid_t uid;              /* who runs it: SANDBOX_UID, or INTERACTOR_UID for an interactor */
    gid_t gid;
    int pipe_fd[3];         /* pipe ends instead of path[0..2], -1 if none: stdin/stdout for an
                               interactive exec, all three for a streaming one */
};

struct run {
    pid_t pid;              /* the command's main process */
    bool main_done;
    int wstatus;
    int64_t t0, t_end;      /* fork, main process reaped */
    long maxrss_kib;        /* max ru_maxrss over every reaped process */
};

/* Why the supervisor killed a command: a limit, (streaming) its output over output_kib or
 * the channel closed; or (merged, KR_FILE, no kill) a stream went over the largest-file limit
 * (the command got SIGXFSZ as the kernel would have sent it). */
enum reason { KR_NONE, KR_CPU, KR_WALL, KR_MEM, KR_PROC, KR_OUTPUT, KR_GONE, KR_FILE };

/* Baselines taken just before fork, so the figures are the command's alone. */
struct baseline {
    bool cg_cpu_ok;
    int64_t cg_cpu, self_cpu, children_cpu;
    bool anon_ok;
    int64_t anon;
    bool shmem_ok;
    int64_t shmem, files;
    bool oom_ok;
    int64_t oom;
    bool tasks_ok;
    int64_t tasks;          /* pids.current: the supervisor (and zombies not reaped yet) */
};

/* Everything the verdict and the figures are made of. */
struct outcome {
    int fork_errno;                 /* fork() failed */
    struct child_report report;     /* stage 0: the command was executed */
    enum reason reason;             /* why we killed it, if we did */
    bool oom;                       /* the cgroup's OOM-kill counter rose */
    bool output_full;               /* a redirected output file reached output_kib */
    int64_t cpu_ns, real_ns, mem_kib;
    int64_t unlimited_ns;           /* real time not counted against the limit (an interactor
                                       waiting for its program) */
    int exit_code, sig;
};

_Noreturn void child_main(const struct exec_req *rq, int rfd);
void spawn_setup(void);                  /* once, at start */
pid_t spawn_command(const struct exec_req *rq, const int pfd[2]);
int open_redirect(const char *path, int flags);
bool reap(struct run *r);
void kill_all(struct run *r);
void take_baseline(struct baseline *b);
int64_t check_limits(const struct exec_req *rq, const struct baseline *base, const struct run *r,
                     int64_t *peak_anon, struct outcome *o);
int open_record(const char *path, int64_t want, int64_t *size);
bool start_command(const struct exec_req *rq, struct run *r, struct baseline *base, int *rfd,
                   struct outcome *o);
void finish_command(struct run *r, const struct baseline *base, int rfd, int64_t peak_anon,
                    struct outcome *o);
bool parse_exec(const struct jval *req, struct arena *a, struct exec_req *rq);
void op_exec(const struct exec_req *rq);
void scan_redirects(const struct exec_req *rq, struct outcome *o, bool setup_error,
                    int rec_fd[3], int64_t rec_len[3]);
void answer_exec(const struct exec_req *rq, struct outcome *o, const char *extra);

/* ------------------------------------------------------------------------------------------ */
/* limits.c: arithmetic and the verdict                                                        */
/* ------------------------------------------------------------------------------------------ */

int64_t rlimit_value(int64_t want, int64_t hard_max);
int64_t stack_limit_bytes(const struct exec_req *rq);
int64_t file_size_limit_bytes(const struct exec_req *rq);
int64_t next_poll_ns(int64_t cpu_left, int64_t wall_left);
bool is_setup_error(const struct outcome *o);
const char *verdict(const struct exec_req *rq, const struct outcome *o, struct sb *msg);

/* ------------------------------------------------------------------------------------------ */
/* interactive.c, files.c                                                                      */
/* ------------------------------------------------------------------------------------------ */

#define MAX_PRIVATE 64

struct interactor_req {
    struct exec_req rq;
    const char *private_name[MAX_PRIVATE];
    const char *private_path[MAX_PRIVATE];
    size_t n_private;
};

bool parse_interactor(const struct jval *obj, struct arena *a, struct interactor_req *ir);
void op_exec_interactive(const struct exec_req *rq, const struct interactor_req *ir);
void op_exec_stream(const struct exec_req *rq);
void op_exec_merged(const struct exec_req *rq);

int walk_parent(const char *rel, bool mkdirs, char leaf[NAME_MAX + 1]);
bool write_all(int fd, const unsigned char *p, size_t n);
void op_write(const struct jval *req, struct arena *a);
void op_put(const struct jval *req);
void op_list(const struct jval *req);
void op_read(const struct jval *req);

#endif
