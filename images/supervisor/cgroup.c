/*
 * cgroup.c - measurements: the container cgroup's counters (v1 and v2) and the /proc walk
 * used where no cgroup file is readable (gVisor) and for the two sides of an interactive
 * execute.
 */
#include "supervisor.h"

long g_clk_tck = 100;

/* ------------------------------------------------------------------------------------------ */
/* cgroup measurements                                                                         */
/* ------------------------------------------------------------------------------------------ */
/* The files are opened once and pread() from offset 0 on every poll: no path lookups in the
 * hot loop, and nothing the sandbox can swap underneath us. */

struct cgroup_files cg = {"none", false, -1, -1, -1, -1};

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

bool cg_cpu_ns(int64_t *out)
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

bool cg_anon_bytes(int64_t *out)
{
    return cg.mem_fd >= 0 && read_fd_text(cg.mem_fd) &&
           find_key(cg.v2 ? "anon" : "total_rss", out);
}

/* Shared memory: memfd files, MAP_SHARED|MAP_ANONYMOUS, /dev/shm and SysV segments live in
 * shmem, which the cgroup counts apart from anonymous memory; without it, 200 MiB written into a
 * memfd passed a 64 MiB limit.  The tmpfs files of /box and /tmp are shmem too, but they have
 * their own caps (the mounts' sizes), so what those mounts gained is taken out again (see
 * shared_growth). */
bool cg_shmem_bytes(int64_t *out)
{
    return cg.mem_fd >= 0 && read_fd_text(cg.mem_fd) &&
           find_key(cg.v2 ? "shmem" : "total_shmem", out);
}

/* Anonymous and shared memory from one read of memory.stat (it is the costliest file of a poll):
 * false when the anonymous figure cannot be read; *shmem_ok says whether shmem could. */
bool cg_memory(int64_t *anon, bool *shmem_ok, int64_t *shmem)
{
    if (cg.mem_fd < 0 || !read_fd_text(cg.mem_fd) ||
        !find_key(cg.v2 ? "anon" : "total_rss", anon)) {
        *shmem_ok = false;
        return false;
    }
    *shmem_ok = find_key(cg.v2 ? "shmem" : "total_shmem", shmem);
    return true;
}

static int g_tmpfs_fds[2] = {-1, -1};

void tmpfs_open(void)
{
    static const char *const mounts[] = {"/box", "/tmp"};
    for (int i = 0; i < 2; i++)
        g_tmpfs_fds[i] = open(mounts[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Bytes the files of /box and /tmp occupy now. */
int64_t tmpfs_used_bytes(void)
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
int64_t shared_growth(bool base_ok, int64_t base_shmem, int64_t shmem, int64_t base_files)
{
    if (!base_ok)
        return 0;
    int64_t files = tmpfs_used_bytes() - base_files;
    int64_t grown = shmem - base_shmem - (files > 0 ? files : 0);
    return grown > 0 ? grown : 0;
}

bool cg_oom_kills(int64_t *out)
{
    return cg.oom_fd >= 0 && read_fd_text(cg.oom_fd) && find_key("oom_kill", out);
}

/* Tasks (processes and threads, zombies included until reaped) in the container's pids cgroup,
 * the supervisor among them: v1 and v2 pids.current, one number. */
bool cg_tasks(int64_t *out)
{
    return cg.pids_fd >= 0 && read_fd_text(cg.pids_fd) && parse_i64(g_filebuf, out);
}

/* Our cgroup path from file (/proc/self/cgroup: "id:controllers:path") for a v1 controller, or for
 * the v2 hierarchy when controller is NULL.  It is "/" with a private cgroup namespace; with the
 * host's namespace it names our directory, which then exists below /sys/fs/cgroup if the whole
 * hierarchy is mounted (v2 with cgroupns=host) and usually not (v1: Docker bind-mounts our own
 * directory), hence callers try it first and then the mount's root. */
static bool own_cgroup_path(const char *file, const char *controller, char *out, size_t cap)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
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

void cg_detect(const char *sys_cgroup, const char *proc_self_cgroup)
{
    char own[PATH_MAX], probe[PATH_MAX];
    char v2root[PATH_MAX], cpu1[3][PATH_MAX], mem1[PATH_MAX], pids1[PATH_MAX];
    snprintf(probe, sizeof probe, "%s/cgroup.controllers", sys_cgroup);
    if (access(probe, F_OK) == 0) {
        snprintf(v2root, sizeof v2root, "%s", sys_cgroup);
        const char *const root[] = {v2root, NULL};
        cg.v2 = true;
        if (!own_cgroup_path(proc_self_cgroup, NULL, own, sizeof own))
            own[0] = '\0';
        cg_open(root, own, "cpu.stat", &cg.cpu_fd, cg_cpu_ns);
        cg_open(root, own, "memory.stat", &cg.mem_fd, cg_anon_bytes);
        cg_open(root, own, "memory.events", &cg.oom_fd, cg_oom_kills);
        cg_open(root, own, "pids.current", &cg.pids_fd, cg_tasks);
        if (cg.cpu_fd >= 0 || cg.mem_fd >= 0)
            cg.version = "v2";
    } else {
        static const char *const cpu_names[] = {"cpuacct", "cpu,cpuacct", "cpuacct,cpu"};
        for (int i = 0; i < 3; i++)
            snprintf(cpu1[i], sizeof cpu1[i], "%s/%s", sys_cgroup, cpu_names[i]);
        snprintf(mem1, sizeof mem1, "%s/memory", sys_cgroup);
        snprintf(pids1, sizeof pids1, "%s/pids", sys_cgroup);
        const char *const cpu_dirs[] = {cpu1[0], cpu1[1], cpu1[2], NULL};
        const char *const mem_dirs[] = {mem1, NULL};
        const char *const pids_dirs[] = {pids1, NULL};
        if (!own_cgroup_path(proc_self_cgroup, "cpuacct", own, sizeof own))
            own[0] = '\0';
        cg_open(cpu_dirs, own, "cpuacct.usage", &cg.cpu_fd, cg_cpu_ns);
        if (!own_cgroup_path(proc_self_cgroup, "memory", own, sizeof own))
            own[0] = '\0';
        cg_open(mem_dirs, own, "memory.stat", &cg.mem_fd, cg_anon_bytes);
        cg_open(mem_dirs, own, "memory.oom_control", &cg.oom_fd, cg_oom_kills);
        if (!own_cgroup_path(proc_self_cgroup, "pids", own, sizeof own))
            own[0] = '\0';
        cg_open(pids_dirs, own, "pids.current", &cg.pids_fd, cg_tasks);
        if (cg.cpu_fd >= 0 || cg.mem_fd >= 0)
            cg.version = "v1";
    }
    if (cg.cpu_fd < 0)
        logmsg("supervisor: no cgroup CPU counter; falling back to rusage and /proc");
    if (cg.mem_fd < 0)
        logmsg("supervisor: no cgroup memory counter; falling back to /proc");
}

/* Walk /proc and add up, per side, utime+stime+cutime+cstime, resident minus shared pages and
 * the number of threads (tasks) of every process but PID 1 (us).  `side_of` puts a process in
 * side 0..n-1 by its euid (the owner of /proc/<pid>/stat), or leaves it out with -1; NULL puts
 * every process in side 0.  Dead processes reaped by a live parent are in its c-times; the ones
 * we reaped are in our rusage.  tasks may be NULL. */
void proc_walk(int (*side_of)(uid_t), int n, int64_t cpu_ns[], int64_t anon[], int64_t tasks[])
{
    int64_t ticks[MAX_SIDES] = {0}, pages[MAX_SIDES] = {0}, threads[MAX_SIDES] = {0};
    if (n > MAX_SIDES)
        n = MAX_SIDES;
    for (int k = 0; k < n; k++) {
        cpu_ns[k] = anon[k] = 0;
        if (tasks)
            tasks[k] = 0;
    }
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
        /* After "(comm)": field 3 is the state; utime..cstime are fields 14..17, num_threads
         * is field 20.  A process read at all counts as at least one task. */
        int64_t nthreads = 1;
        for (int field = 2; p && field < 20;) {
            p = strchr(p + 1, ' ');
            if (!p)
                break;
            ++field;
            if (field >= 14 && field <= 17)
                ticks[k] += strtoll(p + 1, NULL, 10);
            else if (field == 20 && strtoll(p + 1, NULL, 10) > 1)
                nthreads = strtoll(p + 1, NULL, 10);
        }
        threads[k] += nthreads;
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
        if (tasks)
            tasks[k] = threads[k];
    }
}

/* Fallback when a cgroup file is missing: every process but us belongs to the command. */
void proc_scan(int64_t *cpu_ns, int64_t *anon_bytes, int64_t *tasks)
{
    proc_walk(NULL, 1, cpu_ns, anon_bytes, tasks);
}
