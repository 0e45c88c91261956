/*
 * files.c - the file operations: write, and (protocol 2) put, list and read, all as the
 * sandbox user with every path component opened O_NOFOLLOW.
 */
#include "supervisor.h"

void op_write(const struct jval *req, struct arena *a)
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
int walk_parent(const char *rel, bool mkdirs, char leaf[NAME_MAX + 1])
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

bool write_all(int fd, const unsigned char *p, size_t n)
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
void op_put(const struct jval *req)
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
void op_list(const struct jval *req)
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
void op_read(const struct jval *req)
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
