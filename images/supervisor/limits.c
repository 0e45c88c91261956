/*
 * limits.c - limit arithmetic and the verdict: pure functions of a request and an outcome, so
 * the host-side unit test (tests/unit/test_supervisor_units.py) can check them without a
 * sandbox.
 */
#include "supervisor.h"

/* The value to set soft = hard to for a limit of `want`: we cannot raise a hard limit (no
 * CAP_SYS_RESOURCE), so a lower one inherited from the engine (hard_max, -1 = unlimited) is
 * kept. */
int64_t rlimit_value(int64_t want, int64_t hard_max)
{
    return hard_max >= 0 && want > hard_max ? hard_max : want;
}

/* RLIMIT_STACK: stack_kib when the request sets it, else the memory limit, at least
 * MIN_STACK_BYTES (recursion-heavy solutions get the whole memory limit). */
int64_t stack_limit_bytes(const struct exec_req *rq)
{
    if (rq->stack_kib > 0)
        return rq->stack_kib * 1024;
    int64_t stack = rq->mem_kib * 1024;
    return stack < MIN_STACK_BYTES ? MIN_STACK_BYTES : stack;
}

/* Whether file_size_kib, not out_kib, is the largest file the command may write. */
static bool file_size_rules(const struct exec_req *rq)
{
    return rq->file_size_kib >= 0 && rq->file_size_kib < rq->out_kib;
}

/* RLIMIT_FSIZE: the output limit, or the file-size limit when that is lower (a redirected
 * stdout is a file too, so it can never pass the output limit). */
int64_t file_size_limit_bytes(const struct exec_req *rq)
{
    return (file_size_rules(rq) ? rq->file_size_kib : rq->out_kib) * 1024;
}

/* How long the monitor may sleep before its next poll, given the CPU and real time left.  No
 * longer than the time left (CPU time cannot outrun real time on one CPU; with several, the
 * next poll is at most POLL_NS away anyway).  At least 1 ms for CPU time, so a command that
 * burnt nearly all of it and then sleeps does not keep us polling at the minimum interval
 * until the real-time limit. */
int64_t next_poll_ns(int64_t cpu_left, int64_t wall_left)
{
    int64_t wait = POLL_NS;
    if (cpu_left < wait)
        wait = cpu_left > NS_PER_MS ? cpu_left : NS_PER_MS;
    if (wall_left < wait)
        wait = wall_left + 1;
    return wait;
}

bool is_setup_error(const struct outcome *o)
{
    return o->fork_errno != 0 || (o->report.stage != 0 && o->report.stage != ST_EXEC);
}

/* Status and message; first match wins (PROTOCOL.md). */
const char *verdict(const struct exec_req *rq, const struct outcome *o, struct sb *msg)
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
        case ST_MERGED:
            sb_printf(msg, "cannot open merged file '%s': %s", rq->merged_name, errstr(rp->err));
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
    if (o->reason == KR_PROC) {
        sb_printf(msg, "process limit exceeded (%lld)", (long long)rq->process_limit);
        return "RE";
    }
    if (o->reason == KR_OUTPUT) {
        sb_printf(msg, "output limit exceeded (%lld KiB)", (long long)rq->out_kib);
        return "OLE";
    }
    /* KR_FILE: with `merged` the supervisor writes the streams' files and judges a stream past
     * the largest file itself (its SIGXFSZ may have been ignored, or come too late). */
    if (o->reason == KR_FILE || o->sig == SIGXFSZ ||
        (o->output_full && (o->exit_code != 0 || o->sig != 0))) {
        if (file_size_rules(rq))
            sb_printf(msg, "file size limit exceeded (%lld KiB)", (long long)rq->file_size_kib);
        else
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
