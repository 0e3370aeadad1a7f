/* The spool shim in C: the same program as spoolshim.py, without an interpreter.
 *
 *     _spoolshim PREFIX CMD ARG...
 *
 * Same protocol and semantics as stockade/sandbox/spoolshim.py (read its
 * docstring): PREFIX.out and PREFIX.err appended to (O_NOFOLLOW, 0600), the
 * command started with the signals the shim ignores set back to their
 * defaults, PREFIX.pid ("SHIM START JOB CGROUP") renamed into place, the
 * job's output spooled first then forwarded (only spooled once forwarding
 * fails: the worker is gone), the end seen through a pidfd, PREFIX.status
 * ("CODE SIGNAL UTIME STIME MAXRSS_KB INBLOCK OUBLOCK": the job's rusage,
 * from wait4) renamed into place, and the shim ending the way the command
 * did. A Python interpreter's start-up is most of what the shim costs a short
 * job; this costs an exec.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

extern char **environ;

/* Every signal a stop or a dump may send to the whole job (a task names any)
 * but those that must keep their effect on the shim: KILL, STOP, CONT, CHLD
 * and the faults (ILL, TRAP, BUS, FPE, SEGV, SYS). The job gets them back
 * at their defaults. Kept equal to _IGNORED in spoolshim.py. */
static const int IGNORED[] = {
    SIGHUP,  SIGINT,  SIGQUIT, SIGABRT, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM,  SIGSTKFLT,
    SIGTSTP, SIGTTIN, SIGTTOU, SIGURG,  SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO,
    SIGPWR,
};
#define N_IGNORED (sizeof IGNORED / sizeof IGNORED[0])
#define READ_SIZE (1 << 16)
#define SPOOL_FLAGS (O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW)

static const char *prefix;
static int spools[3] = {-1, -1, -1}; /* indexed by target: 1 stdout, 2 stderr */
static int forwarding[3] = {0, 1, 1};
static char buffer[READ_SIZE];

/* What the Python shim does on an error it does not expect: report, exit 1. */
static void die(const char *what) {
    int saved = errno;
    dprintf(2, "spoolshim: %s: %s\n", what, strerror(saved));
    _exit(1);
}

static char *path_of(const char *suffix) {
    size_t n = strlen(prefix) + strlen(suffix) + 1;
    char *path = malloc(n);
    if (path == NULL) die("malloc");
    snprintf(path, n, "%s%s", prefix, suffix);
    return path;
}

static int write_all(int fd, const char *data, size_t size) {
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

/* Write text to PREFIX+suffix atomically: a temporary file renamed into place. */
static void put(const char *suffix, const char *text) {
    char *path = path_of(suffix);
    size_t n = strlen(path) + 5;
    char *temporary = malloc(n);
    if (temporary == NULL) die("malloc");
    snprintf(temporary, n, "%s.tmp", path);
    int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) die(temporary);
    int failed = write_all(fd, text, strlen(text));
    close(fd);
    if (failed) die(temporary);
    if (rename(temporary, path) < 0) die(path);
    free(temporary);
    free(path);
}

static void forward(int target, const char *data, size_t size) {
    if (forwarding[target] && write_all(target, data, size) < 0)
        forwarding[target] = 0; /* the worker is gone: spool only */
}

/* Move one read of fd to its spool, then to the worker: 0 at EOF, 1 moved,
 * -1 nothing to read (a non-blocking end). */
static int pump(int fd, int target) {
    ssize_t n;
    do n = read(fd, buffer, sizeof buffer);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN) return -1;
        die("read");
    }
    if (n == 0) return 0;
    if (write_all(spools[target], buffer, (size_t)n) < 0) die("spool");
    forward(target, buffer, (size_t)n);
    return 1;
}

/* The first field of the cgroup v2 line of /proc/self/cgroup ("" if none). */
static void cgroup_of_self(char *out, size_t size) {
    out[0] = '\0';
    FILE *fh = fopen("/proc/self/cgroup", "re");
    if (fh == NULL) return;
    char line[4096];
    while (fgets(line, sizeof line, fh) != NULL) {
        if (strncmp(line, "0::", 3) == 0) {
            char *start = line + 3, *end = start + strlen(start);
            while (end > start && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
            while (start < end && (*start == ' ' || *start == '\t')) start++;
            *end = '\0';
            snprintf(out, size, "%s", start);
            break;
        }
    }
    fclose(fh);
}

/* Field 22 of /proc/PID/stat (the start time in clock ticks), "0" if unknown. */
static void start_time(pid_t pid, char *out, size_t size) {
    snprintf(out, size, "0");
    char path[64], data[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, data, sizeof data - 1);
    close(fd);
    if (n <= 0) return;
    data[n] = '\0';
    char *field = strrchr(data, ')');
    if (field == NULL) return;
    field++;
    for (int i = 0; i <= 19; i++) { /* fields after the command's name, from 0 */
        while (*field == ' ') field++;
        if (*field == '\0' || *field == '\n') return;
        char *end = field + strcspn(field, " \n");
        if (i == 19) {
            snprintf(out, size, "%.*s", (int)(end - field), field);
            return;
        }
        field = end;
    }
}

/* The peak resident set of the shim's own memory in KiB (VmHWM; not its
 * ru_maxrss, which holds its spawner's peak, carried over at the shim's exec),
 * LONG_MAX if unknown. */
static long own_peak(void) {
    long peak = LONG_MAX;
    char line[256];
    FILE *fh = fopen("/proc/self/status", "re");
    if (fh == NULL) return peak;
    while (fgets(line, sizeof line, fh) != NULL)
        if (sscanf(line, "VmHWM: %ld", &peak) == 1) break;
    fclose(fh);
    return peak;
}

/* Move the job's output until both pipes are closed or the job has ended
 * (then what it wrote before it ended: a daemon it left may hold the pipes). */
static void relay(pid_t pid, const int ends[3]) {
    int exited = (int)syscall(SYS_pidfd_open, pid, 0);
    if (exited < 0) die("pidfd_open");
    struct pollfd fds[3] = {
        {.fd = ends[1], .events = POLLIN},
        {.fd = ends[2], .events = POLLIN},
        {.fd = exited, .events = POLLIN},
    };
    int open_ends = 2;
    while (open_ends > 0) {
        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR) continue;
            die("poll");
        }
        for (int target = 1; target <= 2; target++) {
            struct pollfd *end = &fds[target - 1];
            if (end->fd >= 0 && end->revents && pump(end->fd, target) == 0) {
                end->fd = -1; /* poll skips it from now on */
                open_ends--;
            }
        }
        if (fds[2].revents) {
            for (int target = 1; target <= 2; target++) {
                int fd = fds[target - 1].fd;
                if (fd < 0) continue;
                int flags = fcntl(fd, F_GETFL);
                if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) die("fcntl");
                while (pump(fd, target) > 0) {
                }
            }
            break;
        }
    }
    close(exited);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        dprintf(2, "usage: %s PREFIX CMD [ARG...]\n", argv[0]);
        return 2;
    }
    prefix = argv[1];
    char **command = argv + 2;
    for (size_t i = 0; i < N_IGNORED; i++) signal(IGNORED[i], SIG_IGN);
    char *out = path_of(".out"), *err = path_of(".err");
    if ((spools[1] = open(out, SPOOL_FLAGS, 0600)) < 0) die(out);
    if ((spools[2] = open(err, SPOOL_FLAGS, 0600)) < 0) die(err);

    int ends[3] = {-1, -1, -1}, writes[3] = {-1, -1, -1};
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    sigset_t defaults;
    if (posix_spawn_file_actions_init(&actions) || posix_spawnattr_init(&attributes))
        die("posix_spawn");
    for (int target = 1; target <= 2; target++) {
        int pair[2];
        if (pipe2(pair, O_CLOEXEC) < 0) die("pipe2");
        ends[target] = pair[0];
        writes[target] = pair[1];
        if (posix_spawn_file_actions_adddup2(&actions, pair[1], target)) die("posix_spawn");
    }
    sigemptyset(&defaults);
    for (size_t i = 0; i < N_IGNORED; i++) sigaddset(&defaults, IGNORED[i]);
    if (posix_spawnattr_setsigdefault(&attributes, &defaults) ||
        posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF))
        die("posix_spawn");

    pid_t pid;
    int failure = posix_spawnp(&pid, command[0], &actions, &attributes, command, environ);
    if (failure) {
        char message[4096];
        int n = snprintf(message, sizeof message, "cannot run '%s': %s\n", command[0],
                         strerror(failure));
        if (n < 0) n = 0;
        if ((size_t)n >= sizeof message) n = sizeof message - 1;
        if (write_all(spools[2], message, (size_t)n) < 0) die("spool");
        forward(2, message, (size_t)n);
        put(".status", "127 0\n");
        _exit(127);
    }
    close(writes[1]);
    close(writes[2]);

    pid_t me = getpid();
    char started[32], cgroup[4096], line[4200];
    start_time(me, started, sizeof started);
    cgroup_of_self(cgroup, sizeof cgroup);
    snprintf(line, sizeof line, "%d %s %d %s\n", (int)me, started, (int)pid, cgroup);
    put(".pid", line);

    relay(pid, ends);
    int status;
    struct rusage used;
    while (wait4(pid, &status, 0, &used) < 0)
        if (errno != EINTR) die("wait4");
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    int signum = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    /* The job's exec carried the peak of the shim's memory into its
     * ru_maxrss: a figure not above it may be the shim's, so it is 0. */
    long maxrss = used.ru_maxrss > own_peak() ? used.ru_maxrss : 0;
    snprintf(line, sizeof line, "%d %d %ld.%06ld %ld.%06ld %ld %ld %ld\n", code, signum,
             (long)used.ru_utime.tv_sec, (long)used.ru_utime.tv_usec, (long)used.ru_stime.tv_sec,
             (long)used.ru_stime.tv_usec, maxrss, used.ru_inblock, used.ru_oublock);
    put(".status", line);
    if (signum) {
        signal(signum, SIG_DFL);
        kill(me, signum);
    }
    _exit(code);
}
