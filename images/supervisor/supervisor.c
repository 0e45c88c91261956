/*
 * supervisor.c - PID 1 of every judge sandbox container.
 *
 * The contract is PROTOCOL.md next to this file; read it first.  In short: the orchestrator
 * writes one JSON request per line on our stdin, we answer one JSON line on stdout.  The `exec`
 * request runs one untrusted command as uid/gid 10001 under CPU, real-time, memory and output
 * limits, then kills every process left in the container before answering.
 *
 * Build: gcc -O2 -Wall -Wextra -Werror -static -o supervisor supervisor.c
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
 *  - The supervisor keeps its resident memory small, because a forked child starts with a copy
 *    of our page tables and that RSS would show up in the child's ru_maxrss.
 */
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
#define KILL_GIVE_UP_NS (5 * NS_PER_SEC)    /* see kill_all() */

/* The command's whole environment (PROTOCOL.md); nothing of ours leaks into it. */
static char *clean_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/box",
    "LANG=C.UTF-8",
    "TMPDIR=/tmp",
    NULL,
};

extern char **environ;

static sigset_t g_sigchld;                  /* {SIGCHLD}, blocked for our whole life */
static long g_clk_tck = 100;

/* ------------------------------------------------------------------------------------------ */
/* Small utilities                                                                             */
/* ------------------------------------------------------------------------------------------ */

/* Diagnostics go to stderr, which production discards (log driver none); they help tests. */
static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
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
static _Noreturn void fatal(const char *what)
{
    logmsg("supervisor: fatal: %s: %s", what, strerror(errno));
    _exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        fatal("out of memory");
    return p;
}

static int64_t ts_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * NS_PER_SEC + ts->tv_nsec;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts_ns(&ts);
}

/* Our own CPU time: the container cgroup counts it too, so it is subtracted from the figure. */
static int64_t self_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return 0;
    return ts_ns(&ts);
}

static int64_t tv_ns(const struct timeval *tv)
{
    return (int64_t)tv->tv_sec * NS_PER_SEC + (int64_t)tv->tv_usec * 1000;
}

/* CPU time of every reaped descendant (the fallback when no cgroup file is readable). */
static int64_t children_cpu_ns(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_CHILDREN, &ru) != 0)
        return 0;
    return tv_ns(&ru.ru_utime) + tv_ns(&ru.ru_stime);
}

static void sleep_for_sigchld(int64_t ns)
{
    if (ns < MIN_POLL_NS)
        ns = MIN_POLL_NS;
    struct timespec ts = {.tv_sec = (time_t)(ns / NS_PER_SEC), .tv_nsec = (long)(ns % NS_PER_SEC)};
    /* Returns on SIGCHLD (consumed; we reap with wait4 anyway), on timeout or on EINTR. */
    (void)sigtimedwait(&g_sigchld, NULL, &ts);
}

/* "Too many levels of symbolic links" is what O_NOFOLLOW yields on a link; say it plainly. */
static const char *errstr(int err)
{
    if (err == ELOOP)
        return "is a symbolic link (refused)";
    return strerror(err);
}

/* ------------------------------------------------------------------------------------------ */
/* String builder                                                                              */
/* ------------------------------------------------------------------------------------------ */

struct sb {
    char *p;
    size_t n, cap;
};

static void sb_reserve(struct sb *b, size_t extra)
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

static void sb_put(struct sb *b, const void *s, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_puts(struct sb *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_putc(struct sb *b, char c) { sb_put(b, &c, 1); }

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...)
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

static void sb_free(struct sb *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

static const char *sb_str(const struct sb *b) { return b->p ? b->p : ""; }

/* ------------------------------------------------------------------------------------------ */
/* JSON output, base64                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid.  Output must be valid
 * UTF-8 JSON even when a request smuggled arbitrary bytes into a name we echo in a message. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;     /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;                      /* no overlong forms */
        if (c == 0xED)
            hi = 0x9F;                      /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;                      /* <= U+10FFFF */
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* Appends s as a JSON string literal; invalid UTF-8 bytes become U+FFFD. */
static void json_str(struct sb *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    sb_putc(b, '"');
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        if (c < 0x80) {
            switch (c) {
            case '"': sb_puts(b, "\\\""); break;
            case '\\': sb_puts(b, "\\\\"); break;
            case '\n': sb_puts(b, "\\n"); break;
            case '\r': sb_puts(b, "\\r"); break;
            case '\t': sb_puts(b, "\\t"); break;
            case '\b': sb_puts(b, "\\b"); break;
            case '\f': sb_puts(b, "\\f"); break;
            default:
                if (c < 0x20 || c == 0x7F)
                    sb_printf(b, "\\u%04x", c);
                else
                    sb_putc(b, (char)c);
            }
            i++;
            continue;
        }
        size_t len = utf8_len(u + i, n - i);
        if (len) {
            sb_put(b, s + i, len);
            i += len;
        } else {
            sb_puts(b, "\\ufffd");
            i++;
        }
    }
    sb_putc(b, '"');
}

static void json_cstr(struct sb *b, const char *s) { json_str(b, s, strlen(s)); }

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding.  Callers encode in chunks whose length is a multiple of 3, so
 * padding only ever appears at the very end. */
static void base64_encode(struct sb *b, const unsigned char *p, size_t n)
{
    sb_reserve(b, (n + 2) / 3 * 4);
    char *o = b->p + b->n;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = B64[v >> 18];
        *o++ = B64[(v >> 12) & 63];
        *o++ = B64[(v >> 6) & 63];
        *o++ = B64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = B64[v >> 18];
        *o++ = B64[(v >> 12) & 63];
        *o++ = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->n = (size_t)(o - b->p);
    b->p[b->n] = '\0';
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes standard base64 (padding optional, ASCII whitespace ignored) into a new buffer.
 * Returns false on any other character or an impossible length. */
static bool base64_decode(const char *s, size_t n, unsigned char **out, size_t *outlen)
{
    unsigned char *o = xmalloc(n / 4 * 3 + 3);
    size_t k = 0, syms = 0;
    uint32_t acc = 0;
    bool padding = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (c == '=') {
            padding = true;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || padding)               /* data after padding is malformed */
            goto bad;
        acc = acc << 6 | (uint32_t)v;
        if (++syms % 4 == 0) {
            o[k++] = (unsigned char)(acc >> 16);
            o[k++] = (unsigned char)(acc >> 8);
            o[k++] = (unsigned char)acc;
            acc = 0;
        }
    }
    switch (syms % 4) {
    case 1:
        goto bad;
    case 2:
        o[k++] = (unsigned char)(acc >> 4);
        break;
    case 3:
        o[k++] = (unsigned char)(acc >> 10);
        o[k++] = (unsigned char)(acc >> 2);
        break;
    }
    *out = o;
    *outlen = k;
    return true;
bad:
    free(o);
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* stdout                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Every byte of a response must reach the orchestrator: retry on EINTR and partial writes, wait
 * on a non-blocking pipe.  SIGPIPE is ignored, so a vanished reader shows up as EPIPE here; then
 * nobody can hear us any more and we exit (taking the container down). */
static void out_write(const void *buf, size_t n)
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

static void out_sb(const struct sb *b) { out_write(b->p, b->n); }

static void respond_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void respond_error(const char *fmt, ...)
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
/* Minimal JSON parser                                                                         */
/* ------------------------------------------------------------------------------------------ */
/* Builds a small tree in an arena that is thrown away after each request.  Supports the whole
 * JSON grammar (so unknown fields of any shape can be skipped) with a nesting limit. */

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct arena {
    struct arena_chunk *head;
};

static void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct arena_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ((size_t)32 << 10) ? n : ((size_t)32 << 10);
        c = xmalloc(sizeof *c + cap);
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

static void arena_free(struct arena *a)
{
    while (a->head) {
        struct arena_chunk *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

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

struct parser {
    const char *p, *end;
    struct arena *a;
    const char *err;
    int depth;
};

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits of a \u escape at ps->p (just after "\u"). */
static bool parse_hex4(struct parser *ps, unsigned *out)
{
    if (ps->end - ps->p < 4)
        return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(ps->p[i]);
        if (h < 0)
            return false;
        v = v << 4 | (unsigned)h;
    }
    ps->p += 4;
    *out = v;
    return true;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ps->p is at the opening quote.  The decoded text is never longer than the raw text (an escape
 * of 6 or 12 characters yields at most 4 bytes), so one allocation of the raw length suffices. */
static bool parse_string(struct parser *ps, const char **out, size_t *outlen)
{
    const char *q = ++ps->p;
    while (q < ps->end && *q != '"')
        q += (*q == '\\') ? 2 : 1;
    if (q >= ps->end) {
        ps->err = "unterminated string";
        return false;
    }
    char *buf = arena_alloc(ps->a, (size_t)(q - ps->p) + 1);
    size_t k = 0;
    while (*ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20) {
            ps->err = "control character in string";
            return false;
        }
        if (c != '\\') {
            buf[k++] = (char)c;
            ps->p++;
            continue;
        }
        ps->p++;
        char e = *ps->p++;
        switch (e) {
        case '"': buf[k++] = '"'; break;
        case '\\': buf[k++] = '\\'; break;
        case '/': buf[k++] = '/'; break;
        case 'b': buf[k++] = '\b'; break;
        case 'f': buf[k++] = '\f'; break;
        case 'n': buf[k++] = '\n'; break;
        case 'r': buf[k++] = '\r'; break;
        case 't': buf[k++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (!parse_hex4(ps, &cp)) {
                ps->err = "invalid \\u escape";
                return false;
            }
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                ps->err = "unpaired surrogate in \\u escape";
                return false;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') {
                    ps->err = "unpaired surrogate in \\u escape";
                    return false;
                }
                ps->p += 2;
                if (!parse_hex4(ps, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                    ps->err = "unpaired surrogate in \\u escape";
                    return false;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            k += put_utf8(buf + k, cp);
            break;
        }
        default:
            ps->err = "invalid escape in string";
            return false;
        }
    }
    ps->p++;                                /* closing quote */
    buf[k] = '\0';
    *out = buf;
    *outlen = k;
    return true;
}

static bool parse_number(struct parser *ps, struct jval *v)
{
    const char *p = ps->p;
    bool neg = false, integral = true, overflow = false;
    uint64_t acc = 0;
    if (p < ps->end && *p == '-') {
        neg = true;
        p++;
    }
    if (p >= ps->end || *p < '0' || *p > '9')
        goto bad;
    if (*p == '0') {
        p++;
    } else {
        while (p < ps->end && *p >= '0' && *p <= '9') {
            unsigned d = (unsigned)(*p - '0');
            if (acc > (UINT64_MAX - d) / 10)
                overflow = true;
            else
                acc = acc * 10 + d;
            p++;
        }
    }
    if (p < ps->end && *p == '.') {
        integral = false;
        p++;
        if (p >= ps->end || *p < '0' || *p > '9')
            goto bad;
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        integral = false;
        p++;
        if (p < ps->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= ps->end || *p < '0' || *p > '9')
            goto bad;
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++;
    }
    ps->p = p;
    v->type = J_NUM;
    if (integral && !overflow) {
        if (!neg && acc <= (uint64_t)INT64_MAX) {
            v->is_int = true;
            v->i = (int64_t)acc;
        } else if (neg && acc <= (uint64_t)INT64_MAX + 1) {
            v->is_int = true;
            v->i = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
        }
    }
    return true;
bad:
    ps->err = "invalid number";
    return false;
}

static bool parse_literal(struct parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
        ps->err = "invalid literal";
        return false;
    }
    ps->p += n;
    return true;
}

static struct jval *parse_value(struct parser *ps);

/* Arrays and objects share this: elements are linked in order, members carry their key. */
static bool parse_container(struct parser *ps, struct jval *v, bool object)
{
    char close = object ? '}' : ']';
    if (++ps->depth > JSON_MAX_DEPTH) {
        ps->err = "nesting too deep";
        return false;
    }
    v->type = object ? J_OBJ : J_ARR;
    ps->p++;                                /* '{' or '[' */
    skip_ws(ps);
    struct jval **tail = &v->child;
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return true;
    }
    for (;;) {
        const char *key = NULL;
        size_t keylen = 0;
        skip_ws(ps);
        if (object) {
            if (ps->p >= ps->end || *ps->p != '"') {
                ps->err = "expected a member name";
                return false;
            }
            if (!parse_string(ps, &key, &keylen))
                return false;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                ps->err = "expected ':'";
                return false;
            }
            ps->p++;
        }
        struct jval *item = parse_value(ps);
        if (!item)
            return false;
        item->key = key;
        item->keylen = keylen;
        *tail = item;
        tail = &item->next;
        v->count++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            ps->depth--;
            return true;
        }
        ps->err = object ? "expected ',' or '}'" : "expected ',' or ']'";
        return false;
    }
}

static struct jval *parse_value(struct parser *ps)
{
    skip_ws(ps);
    if (ps->p >= ps->end) {
        ps->err = "unexpected end of input";
        return NULL;
    }
    struct jval *v = arena_alloc(ps->a, sizeof *v);
    memset(v, 0, sizeof *v);
    bool ok;
    switch (*ps->p) {
    case '{': ok = parse_container(ps, v, true); break;
    case '[': ok = parse_container(ps, v, false); break;
    case '"':
        v->type = J_STR;
        ok = parse_string(ps, &v->s, &v->n);
        break;
    case 't':
        v->type = J_BOOL;
        v->b = true;
        ok = parse_literal(ps, "true");
        break;
    case 'f':
        v->type = J_BOOL;
        ok = parse_literal(ps, "false");
        break;
    case 'n':
        v->type = J_NULL;
        ok = parse_literal(ps, "null");
        break;
    default:
        ok = parse_number(ps, v);
    }
    return ok ? v : NULL;
}

/* Parses one whole document; returns NULL and sets *err on malformed input. */
static struct jval *json_parse(const char *s, size_t n, struct arena *a, const char **err)
{
    struct parser ps = {.p = s, .end = s + n, .a = a, .err = NULL, .depth = 0};
    struct jval *v = parse_value(&ps);
    if (v) {
        skip_ws(&ps);
        if (ps.p != ps.end) {
            ps.err = "trailing characters after the JSON value";
            v = NULL;
        }
    }
    *err = ps.err ? ps.err : "invalid JSON";
    return v;
}

/* The member named key (the last one if repeated), or NULL.  JSON null counts as absent. */
static const struct jval *member(const struct jval *obj, const char *key)
{
    size_t kl = strlen(key);
    const struct jval *found = NULL;
    for (const struct jval *c = obj->child; c; c = c->next)
        if (c->keylen == kl && memcmp(c->key, key, kl) == 0)
            found = c;
    if (found && found->type == J_NULL)
        return NULL;
    return found;
}

/* ------------------------------------------------------------------------------------------ */
/* Request field validation                                                                    */
/* ------------------------------------------------------------------------------------------ */

static char g_reqerr[512];

static bool fail_field(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool fail_field(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_reqerr, sizeof g_reqerr, fmt, ap);
    va_end(ap);
    return false;
}

static bool get_int(const struct jval *req, const char *key, bool required, int64_t dflt,
                    int64_t lo, int64_t hi, int64_t *out)
{
    const struct jval *v = member(req, key);
    if (!v) {
        if (required)
            return fail_field("missing field '%s'", key);
        *out = dflt;
        return true;
    }
    if (v->type != J_NUM || !v->is_int || v->i < lo || v->i > hi)
        return fail_field("field '%s' must be an integer from %lld to %lld", key,
                          (long long)lo, (long long)hi);
    *out = v->i;
    return true;
}

/* A string field without NUL bytes (they could not be passed to the kernel). */
static bool get_str(const struct jval *req, const char *key, bool required, const char **out)
{
    const struct jval *v = member(req, key);
    if (!v) {
        if (required)
            return fail_field("missing field '%s'", key);
        *out = "";
        return true;
    }
    if (v->type != J_STR || strlen(v->s) != v->n)
        return fail_field("field '%s' must be a string without NUL characters", key);
    *out = v->s;
    return true;
}

/* "/box/<name>": the name is always taken relative to /box, even with a leading slash. */
static const char *box_path(struct arena *a, const char *name)
{
    size_t n = strlen(name);
    char *p = arena_alloc(a, sizeof BOX_DIR + 1 + n);
    memcpy(p, BOX_DIR "/", sizeof BOX_DIR);
    memcpy(p + sizeof BOX_DIR, name, n + 1);
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* Acting as the sandbox user                                                                  */
/* ------------------------------------------------------------------------------------------ */
/* The saved set-user-ID stays 0, so switching back needs no capability; the file-system IDs
 * follow the effective IDs.  Root's supplementary groups were dropped at start-up, so the user's
 * access is exactly uid/gid 10001. */

static bool become_uid(uid_t uid, gid_t gid)
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

static bool become_user(void) { return become_uid(SANDBOX_UID, SANDBOX_GID); }

static void become_root(void)
{
    if (seteuid(0) != 0 || setegid(0) != 0)
        fatal("cannot regain root after acting as the sandbox user");
}

/* ------------------------------------------------------------------------------------------ */
/* cgroup measurements                                                                         */
/* ------------------------------------------------------------------------------------------ */
/* The files are opened once and pread() from offset 0 on every poll: no path lookups in the
 * hot loop, and nothing the sandbox can swap underneath us. */

static struct {
    const char *version;    /* "v1", "v2" or "none" as announced in hello */
    bool v2;
    int cpu_fd;             /* v1 cpuacct.usage (ns) / v2 cpu.stat usage_usec */
    int mem_fd;             /* v1 memory.stat total_rss / v2 memory.stat anon (bytes) */
    int oom_fd;             /* v1 memory.oom_control / v2 memory.events: oom_kill */
} cg = {"none", false, -1, -1, -1};

static char g_filebuf[16384];

/* Whole (small) file from offset 0 into g_filebuf, NUL-terminated.  A short read means end of
 * file for these seq_file-backed files, which saves a second system call on every poll. */
static bool read_fd_text(int fd)
{
    size_t n = 0;
    while (n < sizeof g_filebuf - 1) {
        size_t want = sizeof g_filebuf - 1 - n;
        ssize_t r = pread(fd, g_filebuf + n, want, (off_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return false;
        n += (size_t)r;
        if ((size_t)r < want)
            break;
    }
    g_filebuf[n] = '\0';
    return true;
}

static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno != 0)
        return false;
    *out = v;
    return true;
}

/* The value of the "key value" line in g_filebuf.  Matching "key " at a line start keeps
 * "anon" from matching "anon_thp" and "total_rss" from matching "total_rss_huge". */
static bool find_key(const char *key, int64_t *out)
{
    size_t kl = strlen(key);
    for (const char *p = g_filebuf; p && *p;) {
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
            return parse_i64(p + kl + 1, out);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return false;
}

static bool cg_cpu_ns(int64_t *out)
{
    int64_t v;
    if (cg.cpu_fd < 0 || !read_fd_text(cg.cpu_fd))
        return false;
    if (cg.v2) {
        if (!find_key("usage_usec", &v))
            return false;
        v *= 1000;
    } else if (!parse_i64(g_filebuf, &v)) {
        return false;
    }
    *out = v;
    return true;
}

static bool cg_anon_bytes(int64_t *out)
{
    return cg.mem_fd >= 0 && read_fd_text(cg.mem_fd) &&
           find_key(cg.v2 ? "anon" : "total_rss", out);
}

/* Shared memory: memfd files, MAP_SHARED|MAP_ANONYMOUS, /dev/shm and SysV segments live in
 * shmem, which the cgroup counts apart from anonymous memory; without it, 200 MiB written into a
 * memfd passed a 64 MiB limit.  The tmpfs files of /box and /tmp are shmem too, but they have
 * their own caps (the mounts' sizes), so what those mounts gained is taken out again (see
 * shared_growth). */
static bool cg_shmem_bytes(int64_t *out)
{
    return cg.mem_fd >= 0 && read_fd_text(cg.mem_fd) &&
           find_key(cg.v2 ? "shmem" : "total_shmem", out);
}

static int g_tmpfs_fds[2] = {-1, -1};

static void tmpfs_open(void)
{
    static const char *const mounts[] = {"/box", "/tmp"};
    for (int i = 0; i < 2; i++)
        g_tmpfs_fds[i] = open(mounts[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Bytes the files of /box and /tmp occupy now. */
static int64_t tmpfs_used_bytes(void)
{
    int64_t used = 0;
    for (int i = 0; i < 2; i++) {
        struct statfs st;
        if (g_tmpfs_fds[i] >= 0 && fstatfs(g_tmpfs_fds[i], &st) == 0)
            used += (int64_t)(st.f_blocks - st.f_bfree) * (int64_t)st.f_bsize;
    }
    return used;
}

/* Shared memory the command gained since the baseline, files of /box and /tmp excepted.  The
 * cgroup file is read before the mounts, so a file growing in between is under-counted rather
 * than counted twice; files deleted meanwhile are not credited (those the judge put in were
 * charged to the engine, not to us), so at most what the mounts held before can be hidden. */
static int64_t shared_growth(bool base_ok, int64_t base_shmem, int64_t base_files)
{
    int64_t shmem;
    if (!base_ok || !cg_shmem_bytes(&shmem))
        return 0;
    int64_t files = tmpfs_used_bytes() - base_files;
    int64_t grown = shmem - base_shmem - (files > 0 ? files : 0);
    return grown > 0 ? grown : 0;
}

static bool cg_oom_kills(int64_t *out)
{
    return cg.oom_fd >= 0 && read_fd_text(cg.oom_fd) && find_key("oom_kill", out);
}

/* Our cgroup path from /proc/self/cgroup ("id:controllers:path") for a v1 controller, or for
 * the v2 hierarchy when controller is NULL.  It is "/" with a private cgroup namespace; with the
 * host's namespace it names our directory, which then exists below /sys/fs/cgroup if the whole
 * hierarchy is mounted (v2 with cgroupns=host) and usually not (v1: Docker bind-mounts our own
 * directory), hence callers try it first and then the mount's root. */
static bool own_cgroup_path(const char *controller, char *out, size_t cap)
{
    int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = read_fd_text(fd);
    close(fd);
    if (!ok)
        return false;
    for (char *line = g_filebuf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2) {
            *c1 = *c2 = '\0';
            const char *ctrls = c1 + 1, *path = c2 + 1;
            bool match = false;
            if (!controller) {
                match = strcmp(line, "0") == 0 && *ctrls == '\0';
            } else {
                size_t cl = strlen(controller);
                for (const char *t = ctrls; *t;) {
                    size_t tl = strcspn(t, ",");
                    if (tl == cl && strncmp(t, controller, cl) == 0)
                        match = true;
                    t += tl;
                    if (*t == ',')
                        t++;
                }
            }
            if (match && strlen(path) < cap) {
                strcpy(out, strcmp(path, "/") == 0 ? "" : path);
                return true;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return false;
}

typedef bool (*cg_probe_fn)(int64_t *);

/* Opens the first candidate <dir><own>/<file> or <dir>/<file> that can be read and parsed. */
static int cg_open(const char *const *dirs, const char *own, const char *file, int *slot,
                   cg_probe_fn probe)
{
    char path[PATH_MAX];
    for (const char *const *d = dirs; *d; d++) {
        for (int pass = 0; pass < 2; pass++) {
            const char *sub = pass == 0 ? own : "";
            if (pass == 0 && *own == '\0')
                continue;
            int n = snprintf(path, sizeof path, "%s%s/%s", *d, sub, file);
            if (n < 0 || (size_t)n >= sizeof path)
                continue;
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            int64_t v;
            *slot = fd;
            if (probe(&v)) {
                logmsg("supervisor: using %s", path);
                return fd;
            }
            *slot = -1;
            close(fd);
        }
    }
    return -1;
}

static void cg_detect(void)
{
    char own[PATH_MAX];
    if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
        static const char *const root[] = {"/sys/fs/cgroup", NULL};
        cg.v2 = true;
        if (!own_cgroup_path(NULL, own, sizeof own))
            own[0] = '\0';
        cg_open(root, own, "cpu.stat", &cg.cpu_fd, cg_cpu_ns);
        cg_open(root, own, "memory.stat", &cg.mem_fd, cg_anon_bytes);
        cg_open(root, own, "memory.events", &cg.oom_fd, cg_oom_kills);
        if (cg.cpu_fd >= 0 || cg.mem_fd >= 0)
            cg.version = "v2";
    } else {
        static const char *const cpu_dirs[] = {"/sys/fs/cgroup/cpuacct",
                                               "/sys/fs/cgroup/cpu,cpuacct",
                                               "/sys/fs/cgroup/cpuacct,cpu", NULL};
        static const char *const mem_dirs[] = {"/sys/fs/cgroup/memory", NULL};
        if (!own_cgroup_path("cpuacct", own, sizeof own))
            own[0] = '\0';
        cg_open(cpu_dirs, own, "cpuacct.usage", &cg.cpu_fd, cg_cpu_ns);
        if (!own_cgroup_path("memory", own, sizeof own))
            own[0] = '\0';
        cg_open(mem_dirs, own, "memory.stat", &cg.mem_fd, cg_anon_bytes);
        cg_open(mem_dirs, own, "memory.oom_control", &cg.oom_fd, cg_oom_kills);
        if (cg.cpu_fd >= 0 || cg.mem_fd >= 0)
            cg.version = "v1";
    }
    if (cg.cpu_fd < 0)
        logmsg("supervisor: no cgroup CPU counter; falling back to rusage and /proc");
    if (cg.mem_fd < 0)
        logmsg("supervisor: no cgroup memory counter; falling back to /proc");
}

/* Walk /proc and add up, per side, utime+stime+cutime+cstime and resident minus shared pages of
 * every process but PID 1 (us).  `side_of` puts a process in side 0..n-1 by its euid (the owner
 * of /proc/<pid>/stat), or leaves it out with -1; NULL puts every process in side 0.  Dead
 * processes reaped by a live parent are in its c-times; the ones we reaped are in our rusage. */
#define MAX_SIDES 2

static void proc_walk(int (*side_of)(uid_t), int n, int64_t cpu_ns[], int64_t anon[])
{
    int64_t ticks[MAX_SIDES] = {0}, pages[MAX_SIDES] = {0};
    if (n > MAX_SIDES)
        n = MAX_SIDES;
    for (int k = 0; k < n; k++)
        cpu_ns[k] = anon[k] = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return;
    char path[64], buf[1024];
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 1)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        int k = 0;
        if (side_of) {
            struct stat st;
            k = fstat(fd, &st) == 0 ? side_of(st.st_uid) : -1;
        }
        ssize_t r = k >= 0 && k < n ? read(fd, buf, sizeof buf - 1) : -1;
        close(fd);
        if (k < 0 || k >= n)
            continue;
        char *p = r > 0 ? (buf[r] = '\0', strrchr(buf, ')')) : NULL;
        /* After "(comm)": field 3 is the state; utime..cstime are fields 14..17. */
        for (int field = 2; p && field < 17;) {
            p = strchr(p + 1, ' ');
            if (p && ++field >= 14)
                ticks[k] += strtoll(p + 1, NULL, 10);
        }
        snprintf(path, sizeof path, "/proc/%ld/statm", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            r = read(fd, buf, sizeof buf - 1);
            close(fd);
            long long size, resident, shared;
            if (r > 0 && (buf[r] = '\0', sscanf(buf, "%lld %lld %lld", &size, &resident,
                                                &shared) == 3) && resident > shared)
                pages[k] += resident - shared;
        }
    }
    closedir(d);
    for (int k = 0; k < n; k++) {
        cpu_ns[k] = ticks[k] * (NS_PER_SEC / g_clk_tck);
        anon[k] = pages[k] * sysconf(_SC_PAGESIZE);
    }
}

/* Fallback when a cgroup file is missing: every process but us belongs to the command. */
static void proc_scan(int64_t *cpu_ns, int64_t *anon_bytes)
{
    proc_walk(NULL, 1, cpu_ns, anon_bytes);
}

/* ------------------------------------------------------------------------------------------ */
/* Signals                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static void signal_name(int sig, char *buf, size_t cap)
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
 * makes the kernel kill every process of the namespace.  Only async-signal-safe calls. */
static void on_terminate(int sig)
{
    (void)sig;
    _exit(0);
}

/* ------------------------------------------------------------------------------------------ */
/* The command's process (between fork and execvp)                                            */
/* ------------------------------------------------------------------------------------------ */

enum stage { ST_PRIV = 1, ST_CHDIR, ST_STDIN, ST_STDOUT, ST_STDERR, ST_RLIMIT, ST_EXEC };

/* What the child tells the parent through the close-on-exec pipe when a step fails.  A
 * successful execvp closes the pipe silently.  It is smaller than PIPE_BUF, so atomic. */
struct child_report {
    int stage;
    int err;
};

struct exec_req {
    char **argv;
    int64_t cpu_ms, wall_ms, mem_kib, out_kib;
    int64_t record[3];      /* [1] stdout, [2] stderr bytes to return */
    const char *name[3];    /* redirection as given; "" = /dev/null */
    const char *path[3];    /* "/box/<name>", NULL for /dev/null */
    const char *meta_file;  /* protocol 2: write the meta here too ("" = do not) */
    uid_t uid;              /* who runs it: SANDBOX_UID, or INTERACTOR_UID for an interactor */
    gid_t gid;
    int pipe_fd[2];         /* interactive: stdin/stdout pipe ends instead of path[0]/[1]; -1 */
};

static _Noreturn void child_fail(int fd, int stage, int err)
{
    struct child_report r = {.stage = stage, .err = err};
    ssize_t w = write(fd, &r, sizeof r);
    (void)w;
    _exit(127);
}

/* Opens a redirection as the (already unprivileged) child.  O_NONBLOCK only guards the open
 * itself, so that a FIFO planted in /box cannot hang the setup; it is cleared right after. */
static int open_redirect(const char *path, int flags)
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
    rlim_t want = (rlim_t)v;
    if (cur.rlim_max != RLIM_INFINITY && want > cur.rlim_max)
        want = cur.rlim_max;
    nl.rlim_cur = nl.rlim_max = want;
    return setrlimit(resource, &nl);
}

static _Noreturn void child_main(const struct exec_req *rq, int rfd)
{
    /* Dispositions: SIGPIPE is ignored and SIGTERM handled in the parent; an ignored signal
     * would stay ignored across execve, so reset all of them.  Then unblock everything. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            (void)sigaction(s, &sa, NULL);  /* fails harmlessly for glibc's internal ones */
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
     * from 0 to non-zero also clears every capability set. */
    if (setgroups(0, NULL) != 0 || setresgid(rq->gid, rq->gid, rq->gid) != 0 ||
        setresuid(rq->uid, rq->uid, rq->uid) != 0)
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
    if (rq->path[1] && rq->path[2] && strcmp(rq->path[1], rq->path[2]) == 0) {
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

    int64_t stack = rq->mem_kib * 1024;
    if (stack < MIN_STACK_BYTES)
        stack = MIN_STACK_BYTES;
    if (set_limit(RLIMIT_FSIZE, rq->out_kib * 1024) != 0 || set_limit(RLIMIT_CORE, 0) != 0 ||
        set_limit(RLIMIT_STACK, stack) != 0 || set_limit(RLIMIT_NOFILE, 1024) != 0)
        child_fail(rfd, ST_RLIMIT, errno);

    /* execvp looks PATH up in environ, so the clean environment is installed, not passed. */
    environ = clean_env;
    execvp(rq->argv[0], rq->argv);
    child_fail(rfd, ST_EXEC, errno);
}

/* ------------------------------------------------------------------------------------------ */
/* Running and supervising a command                                                          */
/* ------------------------------------------------------------------------------------------ */

struct run {
    pid_t pid;              /* the command's main process */
    bool main_done;
    int wstatus;
    int64_t t0, t_end;      /* fork, main process reaped */
    long maxrss_kib;        /* max ru_maxrss over every reaped process */
};

/* Reaps every process that has ended, without blocking.  Returns true when we have no child
 * left at all (ECHILD).  __WALL: also children created by clone() with an unusual exit signal. */
static bool reap(struct run *r)
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
static void kill_all(struct run *r)
{
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

enum reason { KR_NONE, KR_CPU, KR_WALL, KR_MEM };

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
};

static void take_baseline(struct baseline *b)
{
    b->cg_cpu_ok = cg_cpu_ns(&b->cg_cpu);
    b->self_cpu = self_cpu_ns();
    b->children_cpu = children_cpu_ns();
    b->anon_ok = cg_anon_bytes(&b->anon);
    b->shmem_ok = cg_shmem_bytes(&b->shmem);
    b->files = tmpfs_used_bytes();
    b->oom_ok = cg_oom_kills(&b->oom);
}

/* The command's CPU time and anonymous memory now.  cgroup: deltas against the baseline, minus
 * our own CPU time (the cgroup counts us too).  Without the cgroup files: reaped descendants
 * (RUSAGE_CHILDREN) plus one /proc walk over the live processes, skipped when live is false
 * because everything has been reaped by then. */
static void measure(const struct baseline *b, bool live, int64_t *cpu, int64_t *anon)
{
    int64_t v, scan_cpu = 0, scan_anon = 0;
    bool scanned = false;
    if (b->cg_cpu_ok && cg_cpu_ns(&v)) {
        v = (v - b->cg_cpu) - (self_cpu_ns() - b->self_cpu);
    } else {
        if (live) {
            proc_scan(&scan_cpu, &scan_anon);
            scanned = true;
        }
        v = children_cpu_ns() - b->children_cpu + scan_cpu;
    }
    *cpu = v > 0 ? v : 0;
    if (b->anon_ok && cg_anon_bytes(&v)) {
        v -= b->anon;
        v += shared_growth(b->shmem_ok, b->shmem, b->files);
    } else if (live) {
        if (!scanned)
            proc_scan(&scan_cpu, &scan_anon);
        v = scan_anon;
    } else {
        v = 0;
    }
    *anon = v > 0 ? v : 0;
}

static bool oom_rose(const struct baseline *b)
{
    int64_t v;
    return b->oom_ok && cg_oom_kills(&v) && v > b->oom;
}

/* Opens a file to record as the sandbox user (caller switched): regular files only, no links,
 * and O_NONBLOCK so a FIFO cannot block us.  Returns -1 when there is nothing to record. */
static int open_record(const char *path, int64_t want, int64_t *size)
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

/* Streams up to n bytes of fd as base64 straight to stdout, so a large record never needs a
 * large buffer in the supervisor.  Chunks are multiples of 3 bytes: padding only at the end. */
static void stream_record(int fd, int64_t n)
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
        enc.n = 0;
        base64_encode(&enc, buf, fill);
        out_write(enc.p, enc.n);
        done += (int64_t)fill;
    }
    sb_free(&enc);
    free(buf);
}

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

/* Forks the command, enforces the limits until its main process ends or a limit is hit, kills
 * and reaps everything, and measures.  Leaves the user/root switching to the caller. */
static void supervise(const struct exec_req *rq, struct outcome *o)
{
    struct run r = {.pid = -1};
    struct baseline base;
    int64_t peak_anon = 0;
    int pfd[2];

    memset(o, 0, sizeof *o);
    struct run strays = {.pid = -1};
    reap(&strays);                          /* stray zombies must not count for this command */
    malloc_trim(0);                         /* the child starts with our resident pages */
    take_baseline(&base);

    /* Both ends non-blocking: the parent reads it only after the child is gone, so a child
     * stuck before execvp can never block us. */
    if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) != 0) {
        o->fork_errno = errno;
        return;
    }
    r.t0 = now_ns();
    r.pid = fork();
    if (r.pid == 0) {
        close(pfd[0]);
        child_main(rq, pfd[1]);
    }
    close(pfd[1]);
    if (r.pid < 0) {
        o->fork_errno = errno;
        close(pfd[0]);
        return;
    }

    const int64_t cpu_limit = rq->cpu_ms * NS_PER_MS, wall_limit = rq->wall_ms * NS_PER_MS;
    const int64_t mem_limit = rq->mem_kib * 1024;
    for (;;) {
        reap(&r);
        if (r.main_done)
            break;
        int64_t cpu, anon, wait = POLL_NS;
        measure(&base, true, &cpu, &anon);
        if (cpu > cpu_limit) {
            o->reason = KR_CPU;
            break;
        }
        int64_t elapsed = now_ns() - r.t0;
        if (elapsed > wall_limit) {
            o->reason = KR_WALL;
            break;
        }
        if (anon > peak_anon)
            peak_anon = anon;
        if (peak_anon > mem_limit || oom_rose(&base)) {
            o->reason = KR_MEM;
            break;
        }
        /* Sleep no longer than the time left (CPU time cannot outrun real time on one CPU;
         * with several, the next poll is at most POLL_NS away anyway).  At least 1 ms for CPU
         * time, so a command that burnt nearly all of it and then sleeps does not keep us
         * polling at the minimum interval until the real-time limit. */
        if (cpu_limit - cpu < wait)
            wait = cpu_limit - cpu > NS_PER_MS ? cpu_limit - cpu : NS_PER_MS;
        if (wall_limit - elapsed < wait)
            wait = wall_limit - elapsed + 1;
        sleep_for_sigchld(wait);
    }
    kill_all(&r);
    int64_t t_end = r.main_done ? r.t_end : now_ns();

    /* Final figures, now that every process is gone and its CPU time is in the counters. */
    int64_t anon;
    measure(&base, false, &o->cpu_ns, &anon);
    if (anon > peak_anon)
        peak_anon = anon;
    o->oom = oom_rose(&base);
    if (read(pfd[0], &o->report, sizeof o->report) != (ssize_t)sizeof o->report)
        o->report.stage = 0;
    close(pfd[0]);

    o->real_ns = t_end - r.t0;
    o->mem_kib = peak_anon / 1024;
    if (r.maxrss_kib > o->mem_kib)
        o->mem_kib = r.maxrss_kib;
    if (r.main_done && WIFEXITED(r.wstatus))
        o->exit_code = WEXITSTATUS(r.wstatus);
    if (r.main_done && WIFSIGNALED(r.wstatus))
        o->sig = WTERMSIG(r.wstatus);
}

static bool is_setup_error(const struct outcome *o)
{
    return o->fork_errno != 0 || (o->report.stage != 0 && o->report.stage != ST_EXEC);
}

/* Status and message; first match wins (PROTOCOL.md). */
static const char *verdict(const struct exec_req *rq, const struct outcome *o, struct sb *msg)
{
    static const char *const which[] = {[ST_STDIN] = "stdin", [ST_STDOUT] = "stdout",
                                        [ST_STDERR] = "stderr"};
    const struct child_report *rp = &o->report;
    if (o->fork_errno) {
        sb_printf(msg, "cannot start the command: %s", strerror(o->fork_errno));
        return "SE";
    }
    if (is_setup_error(o)) {
        switch (rp->stage) {
        case ST_PRIV:
            sb_printf(msg, "cannot drop privileges: %s", strerror(rp->err));
            break;
        case ST_CHDIR:
            sb_printf(msg, "cannot enter " BOX_DIR ": %s", strerror(rp->err));
            break;
        case ST_STDIN:
        case ST_STDOUT:
        case ST_STDERR:
            if (rp->stage == ST_STDIN && rp->err == ENOENT)
                sb_printf(msg, "stdin file '%s' not found", rq->name[0]);
            else
                sb_printf(msg, "cannot open %s file '%s': %s", which[rp->stage],
                          rq->name[rp->stage - ST_STDIN], errstr(rp->err));
            break;
        case ST_RLIMIT:
            sb_printf(msg, "cannot set resource limits: %s", strerror(rp->err));
            break;
        default:
            sb_printf(msg, "command setup failed at step %d: %s", rp->stage, strerror(rp->err));
        }
        return "SE";
    }
    /* The kill reason decides between the two TLE messages; without a kill, the final figures
     * (a command can end between two polls slightly over a limit). */
    if (o->reason == KR_CPU || (o->reason != KR_WALL && o->cpu_ns > rq->cpu_ms * NS_PER_MS)) {
        sb_printf(msg, "CPU time limit exceeded (%lld ms)", (long long)rq->cpu_ms);
        return "TLE";
    }
    if (o->reason == KR_WALL || o->real_ns - o->unlimited_ns > rq->wall_ms * NS_PER_MS) {
        sb_printf(msg, "real time limit exceeded (%lld ms)", (long long)rq->wall_ms);
        return "TLE";
    }
    if (o->reason == KR_MEM || o->oom || o->mem_kib > rq->mem_kib) {
        sb_printf(msg, "memory limit exceeded (%lld KiB)", (long long)rq->mem_kib);
        return "MLE";
    }
    if (o->sig == SIGXFSZ || (o->output_full && (o->exit_code != 0 || o->sig != 0))) {
        sb_printf(msg, "output limit exceeded (%lld KiB)", (long long)rq->out_kib);
        return "OLE";
    }
    if (rp->stage == ST_EXEC) {
        if (rp->err == ENOENT)
            sb_printf(msg, "command '%s' not found", rq->argv[0]);
        else
            sb_printf(msg, "cannot execute '%s': %s", rq->argv[0], strerror(rp->err));
        return "RE";
    }
    if (o->sig) {
        char name[32];
        signal_name(o->sig, name, sizeof name);
        if (name[0])
            sb_printf(msg, "killed by signal %d (%s)", o->sig, name);
        else
            sb_printf(msg, "killed by signal %d", o->sig);
        return "RE";
    }
    if (o->exit_code) {
        sb_printf(msg, "exited with code %d", o->exit_code);
        return "RE";
    }
    return "";
}

static int walk_parent(const char *rel, bool mkdirs, char leaf[NAME_MAX + 1]);
static bool write_all(int fd, const unsigned char *p, size_t n);

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

static void op_exec(const struct exec_req *rq)
{
    struct outcome o;
    supervise(rq, &o);

    /* The redirected files, as the sandbox user: sizes for OLE, open fds for the records.  (No
     * records after SE: a file the command never opened may hold an earlier execute's data.) */
    bool setup_error = is_setup_error(&o);
    int rec_fd[3] = {-1, -1, -1};
    int64_t rec_len[3] = {0, 0, 0};
    if (o.fork_errno == 0 && become_user()) {
        for (int i = 1; i <= 2; i++) {
            struct stat st;
            if (rq->path[i] && lstat(rq->path[i], &st) == 0 && S_ISREG(st.st_mode) &&
                st.st_size >= rq->out_kib * 1024)
                o.output_full = true;
            if (!setup_error)
                rec_fd[i] = open_record(rq->path[i], rq->record[i], &rec_len[i]);
        }
        become_root();
    }

    struct sb msg = {0};
    const char *status = verdict(rq, &o, &msg);
    if (setup_error)
        o.exit_code = o.sig = 0;            /* the command never ran */

    struct sb b = {0};
    sb_puts(&b, "{\"ok\":true,\"op\":\"exec\",\"meta\":{\"status\":");
    json_cstr(&b, status);
    sb_puts(&b, ",\"message\":");
    json_str(&b, sb_str(&msg), msg.n);
    sb_printf(&b,
              ",\"memory-usage\":%lld,\"cpu-time-usage\":%lld,\"real-time-usage\":%lld,"
              "\"exit-code\":%d,\"signal\":%d}",
              (long long)o.mem_kib, (long long)(o.cpu_ns / NS_PER_MS),
              (long long)(o.real_ns / NS_PER_MS), o.exit_code, o.sig);
    if (rq->meta_file && rq->meta_file[0])
        write_meta_file(&b, rq->meta_file, status, &msg, &o);
    sb_puts(&b, ",\"record\":{\"stdout\":\"");
    out_sb(&b);
    if (rec_fd[1] >= 0)
        stream_record(rec_fd[1], rec_len[1]);
    out_write("\",\"stderr\":\"", 12);
    if (rec_fd[2] >= 0)
        stream_record(rec_fd[2], rec_len[2]);
    out_write("\"}}\n", 4);
    for (int i = 1; i <= 2; i++)
        if (rec_fd[i] >= 0)
            close(rec_fd[i]);
    sb_free(&b);
    sb_free(&msg);
}

static bool parse_exec(const struct jval *req, struct arena *a, struct exec_req *rq);

/* ------------------------------------------------------------------------------------------ */
/* Interactive executes: a program and its interactor, wired by pipes                          */
/* ------------------------------------------------------------------------------------------ */
/* Both run at once in this sandbox: the program as uid 10001, the interactor as uid 10002,
 * the program's stdout feeding the interactor's stdin and the other way round.  The cgroup
 * counts both, so each side is measured on its own from per-process figures: the rusage of
 * every process we reap (attributed by the uid waitid reports before the reap) and, while they
 * run, /proc of every live process of the side's uid.  See PROTOCOL.md, "Interactive". */

#define MAX_PRIVATE 64

struct interactor_req {
    struct exec_req rq;
    const char *private_name[MAX_PRIVATE];
    const char *private_path[MAX_PRIVATE];
    size_t n_private;
};

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
        int64_t cpu[2], anon[2], wait = POLL_NS;
        proc_walk(pair_side, 2, cpu, anon);
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
    if (o->fork_errno == 0 && become_uid(rq->uid, rq->gid)) {
        for (int i = 1; i <= 2; i++) {
            struct stat st;
            if (rq->path[i] && lstat(rq->path[i], &st) == 0 && S_ISREG(st.st_mode) &&
                st.st_size >= rq->out_kib * 1024)
                o->output_full = true;
            if (!setup_error)
                rec_fd[i] = open_record(rq->path[i], rq->record[i], &rec_len[i]);
        }
        become_root();
    }
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

static void op_exec_interactive(const struct exec_req *rq, const struct interactor_req *ir)
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
static bool parse_interactor(const struct jval *obj, struct arena *a, struct interactor_req *ir)
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

/* ------------------------------------------------------------------------------------------ */
/* Requests                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static bool parse_exec(const struct jval *req, struct arena *a, struct exec_req *rq)
{
    static const char *const names[3] = {"stdin", "stdout", "stderr"};
    static const char *const recs[3] = {NULL, "record_stdout", "record_stderr"};
    memset(rq, 0, sizeof *rq);
    rq->uid = SANDBOX_UID;
    rq->gid = SANDBOX_GID;
    rq->pipe_fd[0] = rq->pipe_fd[1] = -1;

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
        !get_int(req, "output_kib", true, 0, 0, LIMIT_MAX, &rq->out_kib))
        return false;
    for (int k = 0; k < 3; k++) {
        if (!get_str(req, names[k], false, &rq->name[k]))
            return false;
        rq->path[k] = rq->name[k][0] ? box_path(a, rq->name[k]) : NULL;
        if (recs[k] && !get_int(req, recs[k], false, 0, 0, LIMIT_MAX, &rq->record[k]))
            return false;
    }
    return get_str(req, "meta_file", false, &rq->meta_file);
}

static void op_write(const struct jval *req, struct arena *a)
{
    const char *name, *data;
    if (!get_str(req, "path", true, &name) || !get_str(req, "data", true, &data)) {
        respond_error("invalid request: %s", g_reqerr);
        return;
    }
    unsigned char *bytes;
    size_t n;
    if (!base64_decode(data, strlen(data), &bytes, &n)) {
        respond_error("invalid request: field 'data' is not valid base64");
        return;
    }
    const char *path = box_path(a, name);
    int err = 0;
    if (!become_user()) {
        err = errno;
    } else {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
                                O_CLOEXEC, 0644);
        if (fd < 0) {
            err = errno;
        } else {
            for (size_t off = 0; off < n && !err;) {
                ssize_t w = write(fd, bytes + off, n - off);
                if (w > 0)
                    off += (size_t)w;
                else if (w < 0 && errno == EINTR)
                    continue;
                else
                    err = w < 0 ? errno : EIO;
            }
            if (close(fd) != 0 && !err)
                err = errno;
        }
        become_root();
    }
    free(bytes);
    struct sb b = {0};
    if (err) {
        struct sb msg = {0};
        sb_printf(&msg, "cannot write '%s': %s", name, errstr(err));
        sb_puts(&b, "{\"ok\":false,\"error\":");
        json_str(&b, msg.p, msg.n);
        sb_puts(&b, "}\n");
        sb_free(&msg);
    } else {
        sb_puts(&b, "{\"ok\":true,\"op\":\"write\"}\n");
    }
    out_sb(&b);
    sb_free(&b);
}

/* ------------------------------------------------------------------------------------------ */
/* File operations (protocol version 2): put, list, read                                       */
/* ------------------------------------------------------------------------------------------ */
/* Files move over this channel instead of the engine's archive calls: one round trip instead of
 * a tar unpacked by the daemon.  Everything runs as the sandbox user, every path component is
 * opened with O_NOFOLLOW from /box down (a symbolic link anywhere in a path is refused, never
 * followed), ".." is refused, and only regular files are read or written. */

#define FILE_OP_MAX_DEPTH 128                /* directory nesting a listing descends */
#define LIST_MAX_OUT ((size_t)768 << 10)     /* longest list answer (the reader takes 1 MiB) */
#define READ_MAX_BYTES ((int64_t)512 << 10)  /* most file bytes one read answer carries */

static const char *errno_name(int err)
{
    switch (err) {
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case ELOOP: return "ELOOP";
    case EISDIR: return "EISDIR";
    case EEXIST: return "EEXIST";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOSPC: return "ENOSPC";
    case EFBIG: return "EFBIG";
    case EINVAL: return "EINVAL";
    case E2BIG: return "E2BIG";
    case ENOBUFS: return "ENOBUFS";
    case EFTYPE_NOTREG: return "ENOTREG";
    default: return "EIO";
    }
}

/* Answers {"ok":false,"error":"<what> '<path>': <why>","code":"<errno name>"[,"index":i]}. */
static void respond_file_error(const char *what, const char *path, int err, int64_t index)
{
    struct sb b = {0}, msg = {0};
    sb_printf(&msg, "%s '%s': %s", what, path,
              err == EFTYPE_NOTREG ? "not a regular file (refused)"
              : err == E2BIG      ? "too large"
              : err == ENOBUFS    ? "too many entries"
                                  : errstr(err));
    sb_puts(&b, "{\"ok\":false,\"error\":");
    json_str(&b, msg.p, msg.n);
    sb_printf(&b, ",\"code\":\"%s\"", errno_name(err));
    if (index >= 0)
        sb_printf(&b, ",\"index\":%lld", (long long)index);
    sb_puts(&b, "}\n");
    out_sb(&b);
    sb_free(&b);
    sb_free(&msg);
}

/* Opens the directory holding the last component of rel (relative to /box) and copies that
 * component into leaf (empty for /box itself).  Every directory on the way is opened with
 * O_NOFOLLOW|O_DIRECTORY; with mkdirs, missing ones are created (0755).  Returns an fd or -1
 * with errno (ELOOP for a link on the way, EINVAL for ".." or an over-long name). */
static int walk_parent(const char *rel, bool mkdirs, char leaf[NAME_MAX + 1])
{
    int dfd = open(BOX_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    leaf[0] = '\0';
    const char *p = rel;
    for (;;) {
        while (*p == '/')
            p++;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *rest = end ? end : p + n;
        while (*rest == '/')
            rest++;
        if (n == 0)
            return dfd;                     /* trailing slashes: leaf stays as it was */
        if (n > NAME_MAX || (n == 2 && p[0] == '.' && p[1] == '.')) {
            close(dfd);
            errno = EINVAL;
            return -1;
        }
        if (n == 1 && p[0] == '.') {
            p = rest;
            continue;
        }
        if (*rest == '\0') {                /* the last component */
            memcpy(leaf, p, n);
            leaf[n] = '\0';
            return dfd;
        }
        char comp[NAME_MAX + 1];
        memcpy(comp, p, n);
        comp[n] = '\0';
        int next = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && mkdirs) {
            if (mkdirat(dfd, comp, 0755) != 0 && errno != EEXIST) {
                int e = errno;
                close(dfd);
                errno = e;
                return -1;
            }
            next = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (next < 0) {
            int e = errno;
            struct stat st;
            if (e == ENOTDIR && fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(st.st_mode))
                e = ELOOP;
            close(dfd);
            errno = e;
            return -1;
        }
        close(dfd);
        dfd = next;
        p = rest;
    }
}

static bool write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            if (w == 0)
                errno = EIO;
            return false;
        }
    }
    return true;
}

/* One entry of a put: a directory (made if missing) or a regular file (created, truncated or
 * appended to).  A link or another non-regular file already at a file's path is replaced, as tar
 * extraction would, by unlinking it (never opening it). */
static int put_entry(const struct jval *e, bool parents)
{
    const char *path, *type, *data;
    int64_t mode, append;
    if (e->type != J_OBJ || !get_str(e, "path", true, &path) || !get_str(e, "type", false, &type) ||
        !get_str(e, "data", false, &data) || !get_int(e, "mode", false, -1, -1, 07777, &mode) ||
        !get_int(e, "append", false, 0, 0, 1, &append))
        return -2;
    bool dir = strcmp(type, "d") == 0;
    if (!dir && type[0] && strcmp(type, "f") != 0) {
        fail_field("field 'type' must be \"f\" or \"d\"");
        return -2;
    }
    unsigned char *bytes = NULL;
    size_t n = 0;
    if (!dir && !base64_decode(data, strlen(data), &bytes, &n)) {
        fail_field("field 'data' is not valid base64");
        return -2;
    }
    char leaf[NAME_MAX + 1];
    int err = 0;
    int dfd = walk_parent(path, parents, leaf);
    if (dfd < 0) {
        err = errno;
    } else if (!leaf[0]) {
        err = dir ? 0 : EISDIR;             /* "" or "." is /box itself */
    } else if (dir) {
        if (mkdirat(dfd, leaf, mode >= 0 ? (mode_t)(mode & 0777) : 0755) != 0) {
            struct stat st;
            err = errno;
            if (err == EEXIST && fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0)
                err = S_ISDIR(st.st_mode) ? 0 : S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR;
        }
    } else {
        int flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC) | O_NOFOLLOW | O_NONBLOCK |
                    O_NOCTTY | O_CLOEXEC;
        mode_t m = mode >= 0 ? (mode_t)(mode & 0777) : 0644;
        int fd = -1;
        for (int attempt = 0; attempt < 2 && fd < 0 && !err; attempt++) {
            struct stat st;
            bool other = fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                         !S_ISREG(st.st_mode);
            if (other && S_ISDIR(st.st_mode)) {
                err = EISDIR;
            } else if (other) {
                if (unlinkat(dfd, leaf, 0) != 0)
                    err = errno;
            } else {
                fd = openat(dfd, leaf, flags, m);
                if (fd < 0 && errno == EACCES && !append && attempt == 0) {
                    /* Another user's file (an interactor's private one): replaced, as unpacking
                     * a tar would, when the sandbox user may unlink it from its directory. */
                    if (unlinkat(dfd, leaf, 0) != 0)
                        err = EACCES;
                } else if (fd < 0 && errno != ELOOP && errno != ENXIO) {
                    err = errno;            /* ELOOP/ENXIO: swapped under us; look again */
                }
            }
        }
        if (fd < 0 && !err)
            err = ELOOP;
        if (fd >= 0) {
            struct stat st;
            if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
                err = EFTYPE_NOTREG;
            else if (mode >= 0 && fchmod(fd, m) != 0)
                err = errno;
            else if (!write_all(fd, bytes, n))
                err = errno;
            if (close(fd) != 0 && !err)
                err = errno;
        }
    }
    if (dfd >= 0)
        close(dfd);
    free(bytes);
    return err;
}

/* {"op":"put","parents":false,"entries":[{"path":..,"type":"f"|"d","data":..,"mode":..,
 *  "append":0|1},...]}: applied in order; the first failure stops and is answered. */
static void op_put(const struct jval *req)
{
    int64_t parents;
    const struct jval *entries = member(req, "entries");
    if (!get_int(req, "parents", false, 0, 0, 1, &parents)) {
        respond_error("invalid request: %s", g_reqerr);
        return;
    }
    if (!entries || entries->type != J_ARR) {
        respond_error("invalid request: field 'entries' must be a list");
        return;
    }
    int64_t i = 0;
    for (const struct jval *e = entries->child; e; e = e->next, i++) {
        if (!become_user()) {
            respond_file_error("cannot write", "", errno, i);
            return;
        }
        int err = put_entry(e, parents != 0);
        become_root();
        if (err == -2) {
            respond_error("invalid request: entry %lld: %s", (long long)i, g_reqerr);
            return;
        }
        if (err) {
            const struct jval *p = e->type == J_OBJ ? member(e, "path") : NULL;
            respond_file_error("cannot write", p && p->type == J_STR ? p->s : "?", err, i);
            return;
        }
    }
    static const char ok[] = "{\"ok\":true,\"op\":\"put\"}\n";
    out_write(ok, sizeof ok - 1);
}

struct listing {
    struct sb out;          /* the entries, JSON */
    int64_t files, bytes;   /* counted so far */
    int64_t max_entries, max_bytes;
    int64_t skip, emitted;  /* entries walked but not answered (earlier pages), answered */
    bool more;              /* the answer is full: the caller asks again with skip */
    int err;                /* first failure */
    char where[PATH_MAX];   /* the path it concerns */
};

static void list_add(struct listing *l, const char *rel, const struct stat *st, int dfd,
                     const char *name)
{
    char type = S_ISREG(st->st_mode) ? 'f' : S_ISDIR(st->st_mode) ? 'd'
              : S_ISLNK(st->st_mode) ? 'l' : 'o';
    bool emit = l->files >= l->skip;
    l->files++;
    if (type == 'f')
        l->bytes += st->st_size;
    if (l->bytes > l->max_bytes || l->files > l->max_entries) {
        l->err = l->bytes > l->max_bytes ? E2BIG : ENOBUFS;
        snprintf(l->where, sizeof l->where, "%s", rel);
        return;
    }
    if (!emit)
        return;
    if (l->emitted++ > 0)
        sb_putc(&l->out, ',');
    sb_putc(&l->out, '[');
    json_cstr(&l->out, rel);
    sb_printf(&l->out, ",\"%c\",%u,%lld", type, (unsigned)(st->st_mode & 0777),
              type == 'f' ? (long long)st->st_size : 0LL);
    if (type == 'l') {                      /* its target, for the refusal's message only */
        char target[PATH_MAX];
        ssize_t n = readlinkat(dfd, name, target, sizeof target - 1);
        sb_putc(&l->out, ',');
        json_str(&l->out, target, n > 0 ? (size_t)n : 0);
    }
    sb_putc(&l->out, ']');
    if (l->out.n > LIST_MAX_OUT)
        l->more = true;                     /* stop here; the next page starts after it */
}

/* Lists the directory dfd (whose own entry is rel) depth first, parents before children. */
static void list_dir(struct listing *l, int dfd, const char *rel, int depth)
{
    if (depth > FILE_OP_MAX_DEPTH) {
        l->err = E2BIG;
        snprintf(l->where, sizeof l->where, "%s", rel);
        close(dfd);
        return;
    }
    DIR *d = fdopendir(dfd);
    if (!d) {
        l->err = errno;
        snprintf(l->where, sizeof l->where, "%s", rel);
        close(dfd);
        return;
    }
    struct dirent *de;
    while (!l->err && !l->more && (errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char child[PATH_MAX];
        if ((size_t)snprintf(child, sizeof child, "%s/%s", rel, de->d_name) >= sizeof child) {
            l->err = EINVAL;
            snprintf(l->where, sizeof l->where, "%s", rel);
            break;
        }
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            l->err = errno;
            snprintf(l->where, sizeof l->where, "%s", child);
            break;
        }
        list_add(l, child, &st, dirfd(d), de->d_name);
        if (!l->err && !l->more && S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                l->err = errno;
                snprintf(l->where, sizeof l->where, "%s", child);
            } else {
                list_dir(l, sub, child, depth + 1);
            }
        }
    }
    if (!l->err && !l->more && errno != 0) {
        l->err = errno;
        snprintf(l->where, sizeof l->where, "%s", rel);
    }
    closedir(d);
}

/* {"op":"list","path":"x","max_entries":N,"max_bytes":M} -> {"ok":true,"op":"list",
 * "entries":[["x","d",493,0],["x/a","f",420,12],["x/l","l",511,0,"target"],...]}: the path
 * and (for a directory) everything under it, as the sandbox user, never following a link.
 * Names are relative to the path's parent ("box" for the whole of /box).  E2BIG: the files
 * hold more than max_bytes; ENOBUFS: more than max_entries entries, or an answer too long. */
static void op_list(const struct jval *req)
{
    const char *path;
    struct listing l = {0};
    if (!get_str(req, "path", true, &path) ||
        !get_int(req, "max_entries", false, 100000, 1, LIMIT_MAX, &l.max_entries) ||
        !get_int(req, "max_bytes", false, LIMIT_MAX, 0, LIMIT_MAX, &l.max_bytes) ||
        !get_int(req, "skip", false, 0, 0, LIMIT_MAX, &l.skip)) {
        respond_error("invalid request: %s", g_reqerr);
        return;
    }
    if (!become_user()) {
        respond_file_error("cannot list", path, errno, -1);
        return;
    }
    char leaf[NAME_MAX + 1];
    int dfd = walk_parent(path, false, leaf);
    if (dfd < 0) {
        l.err = errno;
        snprintf(l.where, sizeof l.where, "%s", path);
    } else {
        const char *top = leaf[0] ? leaf : "box";
        struct stat st;
        int target = -1;
        if (!leaf[0]) {
            target = dfd;
            dfd = -1;
            if (fstat(target, &st) != 0)
                l.err = errno;
        } else if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            l.err = errno;
        } else if (S_ISDIR(st.st_mode)) {
            target = openat(dfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (target < 0)
                l.err = errno;
        }
        if (l.err) {
            snprintf(l.where, sizeof l.where, "%s", path);
        } else {
            list_add(&l, top, &st, dfd, leaf);
            if (!l.err && !l.more && target >= 0) {
                list_dir(&l, target, top, 0);
                target = -1;
            }
        }
        if (target >= 0)
            close(target);
        if (dfd >= 0)
            close(dfd);
    }
    become_root();
    if (l.err) {
        respond_file_error("cannot list", l.where, l.err, -1);
    } else {
        struct sb b = {0};
        sb_puts(&b, "{\"ok\":true,\"op\":\"list\",\"entries\":[");
        sb_put(&b, l.out.p ? l.out.p : "", l.out.n);
        sb_printf(&b, "],\"more\":%s}\n", l.more ? "true" : "false");
        out_sb(&b);
        sb_free(&b);
    }
    sb_free(&l.out);
}

/* {"op":"read","files":[{"path":..,"offset":0,"length":N},...]} -> {"ok":true,"op":"read",
 * "data":["<base64>",...]}: up to length bytes of each regular file from offset (fewer at its
 * end), as the sandbox user, never following a link.  At most READ_MAX_BYTES in all. */
static void op_read(const struct jval *req)
{
    const struct jval *files = member(req, "files");
    if (!files || files->type != J_ARR) {
        respond_error("invalid request: field 'files' must be a list");
        return;
    }
    int64_t total = 0, i = 0;
    for (const struct jval *f = files->child; f; f = f->next) {
        const char *path;
        int64_t off, len;
        if (f->type != J_OBJ || !get_str(f, "path", true, &path) ||
            !get_int(f, "offset", false, 0, 0, LIMIT_MAX, &off) ||
            !get_int(f, "length", true, 0, 0, READ_MAX_BYTES, &len)) {
            respond_error("invalid request: file %lld: %s", (long long)i, g_reqerr);
            return;
        }
        total += len;
        i++;
    }
    if (total > READ_MAX_BYTES) {
        respond_error("invalid request: more than %lld bytes asked for", (long long)READ_MAX_BYTES);
        return;
    }
    unsigned char *buf = xmalloc((size_t)total + 1);
    struct sb b = {0};
    sb_puts(&b, "{\"ok\":true,\"op\":\"read\",\"data\":[");
    i = 0;
    for (const struct jval *f = files->child; f; f = f->next, i++) {
        const char *path;
        int64_t off, len;
        (void)get_str(f, "path", true, &path);
        (void)get_int(f, "offset", false, 0, 0, LIMIT_MAX, &off);
        (void)get_int(f, "length", true, 0, 0, READ_MAX_BYTES, &len);
        int err = 0;
        size_t got = 0;
        if (!become_user()) {
            err = errno;
        } else {
            char leaf[NAME_MAX + 1];
            int dfd = walk_parent(path, false, leaf);
            int fd = -1;
            if (dfd < 0)
                err = errno;
            else if (!leaf[0])
                err = EISDIR;
            else if ((fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
                                                  O_CLOEXEC)) < 0)
                err = errno;
            if (fd >= 0) {
                struct stat st;
                if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
                    err = EFTYPE_NOTREG;
                while (!err && got < (size_t)len) {
                    ssize_t r = pread(fd, buf + got, (size_t)len - got, off + (off_t)got);
                    if (r < 0 && errno == EINTR)
                        continue;
                    if (r < 0)
                        err = errno;
                    if (r <= 0)
                        break;
                    got += (size_t)r;
                }
                close(fd);
            }
            if (dfd >= 0)
                close(dfd);
            become_root();
        }
        if (err) {
            sb_free(&b);
            free(buf);
            respond_file_error("cannot read", path, err, i);
            return;
        }
        if (i > 0)
            sb_putc(&b, ',');
        sb_putc(&b, '"');
        base64_encode(&b, buf, got);
        sb_putc(&b, '"');
    }
    sb_puts(&b, "]}\n");
    out_sb(&b);
    sb_free(&b);
    free(buf);
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

    cg_detect();
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
