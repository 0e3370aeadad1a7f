/* Spawn a job straight into its slot cgroup: clone3(CLONE_INTO_CGROUP).
 *
 * The portable path (stockade.sandbox.cgroup.SlotCgroup.spawning) moves the
 * whole stockade process into the slot cgroup for the fork and back again:
 * two cgroup migrations per job, each of which can wait for an RCU grace
 * period on hosts with a hybrid cgroup layout, on the event loop's thread.
 * clone3 (Linux 5.7+) places the child in the cgroup as it is created, so
 * nothing migrates and the job is still born inside (no race with its first
 * fork). CLONE_PIDFD hands back the pidfd the supervisor waits on, saving a
 * pidfd_open.
 *
 * The child shares the parent's memory until it execs, like vfork
 * (CLONE_VM | CLONE_VFORK; a copy-on-write fork of a worker-sized heap cost
 * 4 ms of page-table copying, more than the whole job): it runs on the
 * suspended parent's stack, below the frame of spawn(), which is why the
 * system call is inline assembly in that frame (a libc wrapper's return
 * address could be overwritten by the child) and the child never returns.
 * All signals are blocked around the clone, so no handler of the parent runs
 * in the child; the child resets every handled signal to its default before
 * unblocking. It makes only async-signal-safe system calls and reports a
 * failed chdir or exec through a close-on-exec pipe.
 *
 * Python side: stockade.sandbox.clonespawn, which falls back to the portable
 * path when this module is missing or clone3 is refused (ENOSYS, EPERM ...).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#if defined(__x86_64__)
#define HAVE_CLONE3_VFORK 1
static inline __attribute__((always_inline)) long clone3_vfork(struct clone_args *ca) {
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"((long)SYS_clone3), "D"(ca), "S"(sizeof *ca)
                     : "rcx", "r11", "memory");
    return ret;
}
#elif defined(__aarch64__)
#define HAVE_CLONE3_VFORK 1
static inline __attribute__((always_inline)) long clone3_vfork(struct clone_args *ca) {
    register long x8 __asm__("x8") = SYS_clone3;
    register long x0 __asm__("x0") = (long)ca;
    register long x1 __asm__("x1") = (long)sizeof *ca;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1) : "memory");
    return x0;
}
#endif

/* What failed in the child, reported through the error pipe. */
enum { STAGE_SETUP = 1, STAGE_CHDIR = 2, STAGE_EXEC = 3 };

struct child_error {
    int stage;
    int err;
};

static __attribute__((noreturn)) void report(int fd, int stage, int err) {
    struct child_error e = {stage, err};
    ssize_t unused = write(fd, &e, sizeof e);
    (void)unused;
    _exit(127);
}

/* Move fd out of 0..2 so the dup2 onto the standard streams cannot clobber it. */
static int lift(int fd) {
    if (fd < 0 || fd > 2) return fd;
    return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/* Never inlined: its locals must live in its own frame, below the suspended
   parent's, not in stack slots of spawn() that the parent still uses. */
static __attribute__((noinline, noreturn)) void child(char *const *paths, char *const *argv, char *const *envp, const char *cwd,
                  int in_fd, int out_fd, int err_fd, const int *keep, Py_ssize_t nkeep,
                  int errpipe) {
    sigset_t none;
    struct sigaction dfl, old;
    int fds[3], i, sig;

    /* Handlers would run Python's C handler on shared memory: back to the
       defaults first. Python ignores SIGPIPE and SIGXFSZ; a job starts with
       the defaults, as subprocess.Popen(restore_signals=True) gives it. */
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (sig = 1; sig < NSIG; sig++) {
        if (sigaction(sig, NULL, &old) < 0) continue;
        int handled = old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN;
        if (handled || sig == SIGPIPE || sig == SIGXFSZ) sigaction(sig, &dfl, NULL);
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setsid() < 0) report(errpipe, STAGE_SETUP, errno);

    if (in_fd < 0) {
        in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in_fd < 0) report(errpipe, STAGE_SETUP, errno);
    }
    fds[0] = lift(in_fd);
    fds[1] = lift(out_fd);
    fds[2] = lift(err_fd);
    errpipe = lift(errpipe);
    for (i = 0; i < 3; i++) {
        if (fds[i] < 0 || dup2(fds[i], i) < 0) report(errpipe, STAGE_SETUP, errno);
    }
    /* Everything else closes at exec (stockade's fds are close-on-exec
       already; this catches any a library opened without the flag). */
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
        int fd, max = (int)sysconf(_SC_OPEN_MAX);
        for (fd = 3; fd < max; fd++) {
            int flags = fcntl(fd, F_GETFD);
            if (flags >= 0 && fd != errpipe) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        }
    }
    for (i = 0; i < nkeep; i++) {
        int flags = fcntl(keep[i], F_GETFD);
        if (flags < 0 || fcntl(keep[i], F_SETFD, flags & ~FD_CLOEXEC) < 0)
            report(errpipe, STAGE_SETUP, errno);
    }
    if (cwd != NULL && chdir(cwd) < 0) report(errpipe, STAGE_CHDIR, errno);

    /* The first candidate that is not missing decides, as execvpe does. */
    int saved = ENOENT;
    for (i = 0; paths[i] != NULL; i++) {
        execve(paths[i], argv, envp);
        if (errno != ENOENT && errno != ENOTDIR && saved == ENOENT) saved = errno;
    }
    report(errpipe, STAGE_EXEC, saved);
}

/* A NULL-terminated char* array over a list of bytes (borrowed pointers). */
static char **byte_array(PyObject *list, const char *what) {
    Py_ssize_t n, i;
    char **out;
    if (!PyList_Check(list)) {
        PyErr_Format(PyExc_TypeError, "%s must be a list of bytes", what);
        return NULL;
    }
    n = PyList_GET_SIZE(list);
    out = PyMem_Calloc((size_t)n + 1, sizeof(char *));
    if (out == NULL) return (char **)PyErr_NoMemory();
    for (i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
        if (!PyBytes_Check(item)) {
            PyMem_Free(out);
            PyErr_Format(PyExc_TypeError, "%s must be a list of bytes", what);
            return NULL;
        }
        out[i] = PyBytes_AS_STRING(item);
    }
    return out;
}

#ifdef HAVE_CLONE3_VFORK
PyDoc_STRVAR(spawn_doc,
"spawn(paths, argv, envp, cwd, cgroup_fd, want_stdin, keep_fds, pipe_size)\n"
"-> (pid, pidfd, stdin_w, stdout_r, stderr_r)\n\n"
"Start a new session leader born in the cgroup open as cgroup_fd, running\n"
"the first of paths that exists, its stdout and stderr on new pipes whose\n"
"read ends (non-blocking, pipe_size bytes if the host allows) are returned;\n"
"stdin is a new pipe too (write end returned) if want_stdin, else /dev/null\n"
"(stdin_w is then -1). Raises\n"
"OSError: from clone3 itself (caller falls back), or naming the program\n"
"(exec) or cwd (chdir) that failed in the child.");

/* Making the job's pipes failed (no fd left, say): a launch error, not a
   reason to give up clone3 for the rest of the process. */
enum { STAGE_PIPES = 4 };

/* Mark the pending OSError with the stage that failed (child_stage): the
   caller falls back to the portable spawn only for errors without one,
   those of clone3 itself. */
static void tag_stage(int stage) {
    PyObject *type, *value, *tb;
    if (!PyErr_Occurred()) return;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject *number = PyLong_FromLong(stage);
    if (value != NULL && number != NULL) PyObject_SetAttrString(value, "child_stage", number);
    Py_XDECREF(number);
    PyErr_Restore(type, value, tb);
}

/* The job's pipes, for both spawns: stdin (if wanted), stdout, stderr.
   The read ends are ours: non-blocking for the event loop, and widened so
   a fast writer fills more between two reads (the default stays if the
   host refuses). The job's ends stay blocking. -1 with errno set; what was
   made stays in ends for the caller to close. */
static int make_pipes(int ends[3][2], int want_stdin, int pipe_size) {
    for (int i = 0; i < 3; i++) {
        if (i == 0 && !want_stdin) continue;
        if (pipe2(ends[i], O_CLOEXEC) < 0) return -1;
    }
    for (int i = 1; i < 3; i++) {
        int flags = fcntl(ends[i][0], F_GETFL);
        if (flags < 0 || fcntl(ends[i][0], F_SETFL, flags | O_NONBLOCK) < 0) return -1;
        if (pipe_size > 0) (void)fcntl(ends[i][0], F_SETPIPE_SZ, pipe_size);
    }
    return 0;
}

static PyObject *spawn(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *paths_o, *argv_o, *envp_o, *cwd_o, *keep_o;
    int cgroup_fd, in_fd, out_fd, err_fd;
    char **paths = NULL, **argv = NULL, **envp = NULL;
    const char *cwd = NULL;
    int *keep = NULL;
    Py_ssize_t nkeep = 0, i;
    int pipefd[2] = {-1, -1};
    int pidfd = -1;
    long pid;
    PyObject *result = NULL;

    int want_stdin, pipe_size;
    /* Parent ends of the job's pipes: stdin's write end, stdout's and stderr's read ends. */
    int ends[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};

    if (!PyArg_ParseTuple(args, "OOOOipOi", &paths_o, &argv_o, &envp_o, &cwd_o, &cgroup_fd,
                          &want_stdin, &keep_o, &pipe_size))
        return NULL;
    if (cwd_o != Py_None) {
        if (!PyBytes_Check(cwd_o)) return PyErr_Format(PyExc_TypeError, "cwd must be bytes");
        cwd = PyBytes_AS_STRING(cwd_o);
    }
    if (!PyTuple_Check(keep_o)) return PyErr_Format(PyExc_TypeError, "keep_fds must be a tuple");
    if ((paths = byte_array(paths_o, "paths")) == NULL) goto done;
    if ((argv = byte_array(argv_o, "argv")) == NULL) goto done;
    if ((envp = byte_array(envp_o, "envp")) == NULL) goto done;
    nkeep = PyTuple_GET_SIZE(keep_o);
    keep = PyMem_Calloc((size_t)nkeep + 1, sizeof(int));
    if (keep == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (i = 0; i < nkeep; i++) {
        keep[i] = (int)PyLong_AsLong(PyTuple_GET_ITEM(keep_o, i));
        if (keep[i] == -1 && PyErr_Occurred()) goto done;
    }
    /* The pipes are made here, not in Python: each os.pipe, set_blocking
       and fcntl call from Python is a system call that also lets other
       threads take the GIL, and a job needs a dozen of them. */
    if (make_pipes(ends, want_stdin, pipe_size) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        tag_stage(STAGE_PIPES); /* ours, not clone3 refused: no fallback */
        goto done;
    }
    in_fd = ends[0][0];
    out_fd = ends[1][1];
    err_fd = ends[2][1];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        tag_stage(STAGE_PIPES); /* ours, not clone3 refused: no fallback */
        goto done;
    }

    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_INTO_CGROUP | CLONE_PIDFD | CLONE_VFORK | CLONE_VM;
    ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
    ca.exit_signal = SIGCHLD;
    ca.cgroup = (uint64_t)cgroup_fd;

    struct child_error e;
    ssize_t got = 0;
    int clone_errno = 0;
    /* The GIL is kept while the child starts (the parent thread is
       suspended until the exec, a tenth of a millisecond or so). Releasing
       it looked free but was not: a worker's store thread takes the GIL at
       once and runs Python until its next blocking call, and the event loop
       then waits that long again to get it back; with a busy store thread a
       spawn took several times as long. The child runs no Python and only
       reads memory the parent holds until this call returns. */
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pid = clone3_vfork(&ca);
    if (pid == 0) {
        child(paths, argv, envp, cwd, in_fd, out_fd, err_fd, keep, nkeep, pipefd[1]);
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (pid < 0) {
        clone_errno = (int)-pid;
    } else {
        close(pipefd[1]);
        pipefd[1] = -1;
        do {
            got = read(pipefd[0], &e, sizeof e);
        } while (got < 0 && errno == EINTR);
    }
    if (pid < 0) {
        errno = clone_errno;
        PyErr_SetFromErrno(PyExc_OSError);
        goto done;
    }
    if (got == (ssize_t)sizeof e) {
        int status;
        while (waitpid((pid_t)pid, &status, 0) < 0 && errno == EINTR) {
        }
        close(pidfd);
        errno = e.err;
        if (e.stage == STAGE_EXEC)
            PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, PyList_GET_ITEM(argv_o, 0));
        else if (e.stage == STAGE_CHDIR)
            PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, cwd_o);
        else
            PyErr_SetFromErrno(PyExc_OSError);
        tag_stage(e.stage); /* the child's failure: do not fall back */
        goto done;
    }
    result = Py_BuildValue("(liiii)", pid, pidfd, ends[0][1], ends[1][0], ends[2][0]);
    ends[0][1] = ends[1][0] = ends[2][0] = -1; /* the caller's now */

done:
    for (i = 0; i < 3; i++) {
        if (ends[i][0] >= 0) close(ends[i][0]);
        if (ends[i][1] >= 0) close(ends[i][1]);
    }
    if (pipefd[0] >= 0) close(pipefd[0]);
    if (pipefd[1] >= 0) close(pipefd[1]);
    PyMem_Free(paths);
    PyMem_Free(argv);
    PyMem_Free(envp);
    PyMem_Free(keep);
    return result;
}


#if defined(__x86_64__)
#define HAVE_CLONE3_ASYNC 1
/* spawn_async: the same child, but the parent does not wait for its exec.

   With CLONE_VFORK the calling thread is suspended until the child execs:
   a tenth of a millisecond on an idle machine, but on a busy one the new
   child waits for a CPU first (it is usually placed on the other, busy
   one) and the event loop waits with it, for up to a scheduler slice.
   Here the child gets a stack of its own in a fresh mapping and the parent
   returns at once. The child shares the parent's memory (CLONE_VM) and
   even its thread-local storage until it execs, while the parent keeps
   running, so it touches nothing the parent uses: its arguments are copied
   into the mapping, it makes raw system calls only (a libc wrapper would
   write errno, the parent thread's errno) and it reports a failure in the
   mapping's header, not through a pipe. The parent unmaps the mapping only
   after it has reaped the child (release()), when nothing can run on it. */

static inline __attribute__((always_inline)) long rsys(long n, long a, long b, long c, long d) {
    long ret;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
}

/* The mapping's header; the child's strings and arrays follow it and its
   stack grows down from the mapping's end. */
struct region {
    size_t size;
    volatile int stage, err; /* the child's failure, if any */
    int in_fd, out_fd, err_fd;
    Py_ssize_t nkeep;
    char *cwd;
    char **paths, **argv, **envp;
    int *keep;
};

#define CHILD_STACK (32 * 1024)

/* The kernel's struct sigaction (rt_sigaction), not libc's. */
struct ksigaction {
    unsigned long handler, flags, restorer, mask;
};

static __attribute__((noreturn)) void async_fail(struct region *r, int stage, long err) {
    r->err = (int)-err;
    r->stage = stage;
    for (;;) rsys(SYS_exit_group, 127, 0, 0, 0);
}

static long async_lift(long fd) {
    if (fd < 0 || fd > 2) return fd;
    return rsys(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 3, 0);
}

static __attribute__((noreturn, used)) void async_child(struct region *r) {
    struct ksigaction dfl, old;
    unsigned long none = 0;
    long fds[3], e, fd;
    int i, sig;

    dfl.handler = 0; /* SIG_DFL */
    dfl.flags = dfl.restorer = dfl.mask = 0;
    for (sig = 1; sig <= 64; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        if (rsys(SYS_rt_sigaction, sig, 0, (long)&old, 8) < 0) continue;
        int handled = old.handler != (unsigned long)SIG_DFL && old.handler != (unsigned long)SIG_IGN;
        if (handled || sig == SIGPIPE || sig == SIGXFSZ) rsys(SYS_rt_sigaction, sig, (long)&dfl, 0, 8);
    }
    rsys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&none, 0, 8);
    if ((e = rsys(SYS_setsid, 0, 0, 0, 0)) < 0) async_fail(r, STAGE_SETUP, e);
    fd = r->in_fd;
    if (fd < 0 && (fd = rsys(SYS_openat, AT_FDCWD, (long)"/dev/null", O_RDONLY | O_CLOEXEC, 0)) < 0)
        async_fail(r, STAGE_SETUP, fd);
    fds[0] = async_lift(fd);
    fds[1] = async_lift(r->out_fd);
    fds[2] = async_lift(r->err_fd);
    for (i = 0; i < 3; i++) {
        if (fds[i] < 0) async_fail(r, STAGE_SETUP, fds[i]);
        if ((e = rsys(SYS_dup2, fds[i], i, 0, 0)) < 0) async_fail(r, STAGE_SETUP, e);
    }
    if (rsys(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC, 0) < 0) {
        unsigned long lim[2] = {1024, 1024};
        rsys(SYS_getrlimit, RLIMIT_NOFILE, (long)lim, 0, 0);
        for (fd = 3; fd < (long)lim[0]; fd++) {
            long flags = rsys(SYS_fcntl, fd, F_GETFD, 0, 0);
            if (flags >= 0) rsys(SYS_fcntl, fd, F_SETFD, flags | FD_CLOEXEC, 0);
        }
    }
    for (i = 0; i < r->nkeep; i++) {
        long flags = rsys(SYS_fcntl, r->keep[i], F_GETFD, 0, 0);
        if (flags < 0) async_fail(r, STAGE_SETUP, flags);
        if ((e = rsys(SYS_fcntl, r->keep[i], F_SETFD, flags & ~FD_CLOEXEC, 0)) < 0)
            async_fail(r, STAGE_SETUP, e);
    }
    if (r->cwd != NULL && (e = rsys(SYS_chdir, (long)r->cwd, 0, 0, 0)) < 0)
        async_fail(r, STAGE_CHDIR, e);
    long saved = -ENOENT;
    for (i = 0; r->paths[i] != NULL; i++) {
        e = rsys(SYS_execve, (long)r->paths[i], (long)r->argv, (long)r->envp, 0);
        if (e != -ENOENT && e != -ENOTDIR && saved == -ENOENT) saved = e;
    }
    async_fail(r, STAGE_EXEC, saved);
}

/* clone3 onto the child's own stack: the child starts on an empty stack
   at the system call's return, so it must call straight into C from the
   assembly (no locals of this frame exist for it). */
static inline __attribute__((always_inline)) long clone3_stack(struct clone_args *ca, struct region *r) {
    long ret;
    register long r12 __asm__("r12") = (long)async_child;
    register long r13 __asm__("r13") = (long)r;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "xor %%ebp, %%ebp\n\t"
                     "mov %%r13, %%rdi\n\t"
                     "call *%%r12\n\t"
                     "ud2\n"
                     "1:"
                     : "=a"(ret)
                     : "0"((long)SYS_clone3), "D"(ca), "S"(sizeof *ca), "r"(r12), "r"(r13)
                     : "rcx", "r11", "memory");
    return ret;
}

/* Copy a list of bytes into the mapping at *cursor: a NULL-terminated array
   of pointers to NUL-terminated copies. */
static char **copy_array(PyObject *list, char **cursor) {
    Py_ssize_t n = PyList_GET_SIZE(list), i;
    *cursor = (char *)(((uintptr_t)*cursor + 7) & ~(uintptr_t)7); /* the pointers aligned */
    char **out = (char **)*cursor;
    *cursor += (size_t)(n + 1) * sizeof(char *);
    for (i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
        Py_ssize_t len = PyBytes_GET_SIZE(item);
        memcpy(*cursor, PyBytes_AS_STRING(item), (size_t)len + 1);
        out[i] = *cursor;
        *cursor += len + 1;
    }
    out[n] = NULL;
    return out;
}

static int array_size(PyObject *list, const char *what, size_t *size) {
    Py_ssize_t n, i;
    if (!PyList_Check(list)) {
        PyErr_Format(PyExc_TypeError, "%s must be a list of bytes", what);
        return -1;
    }
    n = PyList_GET_SIZE(list);
    *size += (size_t)(n + 1) * sizeof(char *) + 7; /* and its alignment */
    for (i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
        if (!PyBytes_Check(item)) {
            PyErr_Format(PyExc_TypeError, "%s must be a list of bytes", what);
            return -1;
        }
        *size += (size_t)PyBytes_GET_SIZE(item) + 1;
    }
    return 0;
}

/* Mappings of reaped children, kept for the next spawns: a fresh mmap per
   spawn, and its munmap after the reap, cost a worker 30-40 us a job on a
   2-CPU VM (page faults, and the TLB shootdown of an munmap while its other
   CPU runs in this mm). Only touched with the GIL held. */
#define POOL_MAX 16
static struct {
    void *map;
    size_t size;
} pool[POOL_MAX];
static int pooled;

/* A mapping of at least *size bytes (*size becomes its size); MAP_FAILED if none. */
static void *pool_take(size_t *size) {
    for (int i = pooled - 1; i >= 0; i--) {
        if (pool[i].size >= *size) {
            void *map = pool[i].map;
            *size = pool[i].size;
            pool[i] = pool[--pooled];
            return map;
        }
    }
    return mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
}

static void pool_give(void *map, size_t size) {
    if (pooled < POOL_MAX) {
        pool[pooled].map = map;
        pool[pooled].size = size;
        pooled++;
        return;
    }
    munmap(map, size);
}

PyDoc_STRVAR(spawn_async_doc,
"spawn_async(paths, argv, envp, cwd, cgroup_fd, want_stdin, keep_fds, pipe_size)\n"
"-> (pid, pidfd, stdin_w, stdout_r, stderr_r, token)\n\n"
"As spawn(), but returns without waiting for the child's exec. A failure\n"
"in the child (no such program, a bad cwd) shows only once it has exited\n"
"(code 127): after reaping it, release(token) frees its memory and returns\n"
"None, or (stage, errno) for what failed. Raises OSError from clone3 itself\n"
"(caller falls back) or, tagged with child_stage, for the pipes.");

static PyObject *spawn_async(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *paths_o, *argv_o, *envp_o, *cwd_o, *keep_o;
    int cgroup_fd, want_stdin, pipe_size, i;
    int ends[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    int pidfd = -1;
    size_t data = sizeof(struct region), size;
    struct region *r = NULL;
    PyObject *result = NULL;
    long pid;

    if (!PyArg_ParseTuple(args, "OOOOipOi", &paths_o, &argv_o, &envp_o, &cwd_o, &cgroup_fd,
                          &want_stdin, &keep_o, &pipe_size))
        return NULL;
    if (cwd_o != Py_None && !PyBytes_Check(cwd_o)) return PyErr_Format(PyExc_TypeError, "cwd must be bytes");
    if (!PyTuple_Check(keep_o)) return PyErr_Format(PyExc_TypeError, "keep_fds must be a tuple");
    if (array_size(paths_o, "paths", &data) < 0 || array_size(argv_o, "argv", &data) < 0 ||
        array_size(envp_o, "envp", &data) < 0)
        return NULL;
    Py_ssize_t nkeep = PyTuple_GET_SIZE(keep_o);
    data += (size_t)nkeep * sizeof(int) + 7;
    if (cwd_o != Py_None) data += (size_t)PyBytes_GET_SIZE(cwd_o) + 1;
    data = (data + 15) & ~(size_t)15;
    size = (data + CHILD_STACK + 4095) & ~(size_t)4095;

    void *map = pool_take(&size);
    if (map == MAP_FAILED) {
        PyErr_SetFromErrno(PyExc_OSError);
        tag_stage(STAGE_PIPES);
        return NULL;
    }
    r = (struct region *)map;
    r->size = size;
    char *cursor = (char *)map + sizeof(struct region);
    cursor = (char *)(((uintptr_t)cursor + 7) & ~(uintptr_t)7);
    r->paths = copy_array(paths_o, &cursor);
    r->argv = copy_array(argv_o, &cursor);
    r->envp = copy_array(envp_o, &cursor);
    cursor = (char *)(((uintptr_t)cursor + 7) & ~(uintptr_t)7);
    r->keep = (int *)cursor;
    r->nkeep = nkeep;
    for (Py_ssize_t k = 0; k < nkeep; k++) {
        r->keep[k] = (int)PyLong_AsLong(PyTuple_GET_ITEM(keep_o, k));
        if (r->keep[k] == -1 && PyErr_Occurred()) goto fail;
    }
    cursor += (size_t)nkeep * sizeof(int);
    r->cwd = NULL;
    if (cwd_o != Py_None) {
        memcpy(cursor, PyBytes_AS_STRING(cwd_o), (size_t)PyBytes_GET_SIZE(cwd_o) + 1);
        r->cwd = cursor;
    }
    if (make_pipes(ends, want_stdin, pipe_size) < 0) goto pipe_fail;
    r->in_fd = ends[0][0];
    r->out_fd = ends[1][1];
    r->err_fd = ends[2][1];
    r->stage = r->err = 0;

    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_INTO_CGROUP | CLONE_PIDFD | CLONE_VM;
    ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
    ca.exit_signal = SIGCHLD;
    ca.cgroup = (uint64_t)cgroup_fd;
    ca.stack = (uint64_t)(uintptr_t)((char *)map + data);
    ca.stack_size = (uint64_t)(size - data);

    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pid = clone3_stack(&ca, r);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (pid < 0) {
        errno = (int)-pid;
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    /* The child has its own fd table (no CLONE_FILES): its ends close here. */
    result = Py_BuildValue("(liiiik)", pid, pidfd, ends[0][1], ends[1][0], ends[2][0],
                           (unsigned long)(uintptr_t)map);
    if (result == NULL) {
        /* The child runs on the mapping: it stays (a leak, never a crash). */
        map = NULL;
        goto fail;
    }
    ends[0][1] = ends[1][0] = ends[2][0] = -1;
    map = NULL; /* the caller's now, through release() */
    goto done;

pipe_fail:
    PyErr_SetFromErrno(PyExc_OSError);
    tag_stage(STAGE_PIPES); /* ours, not clone3 refused: no fallback */
fail:
done:
    for (i = 0; i < 3; i++) {
        if (ends[i][0] >= 0) close(ends[i][0]);
        if (ends[i][1] >= 0) close(ends[i][1]);
    }
    if (map != NULL) pool_give(map, size);
    return result;
}

PyDoc_STRVAR(release_doc,
"release(token) -> None or (stage, errno)\n\n"
"Free what spawn_async() gave its child, which must be reaped already;\n"
"what failed in it before its exec, if anything.");

static PyObject *release(PyObject *Py_UNUSED(self), PyObject *arg) {
    unsigned long token = PyLong_AsUnsignedLong(arg);
    if (token == (unsigned long)-1 && PyErr_Occurred()) return NULL;
    struct region *r = (struct region *)(uintptr_t)token;
    int stage = r->stage, err = r->err;
    pool_give(r, r->size);
    if (stage == 0) Py_RETURN_NONE;
    return Py_BuildValue("(ii)", stage, err);
}
#endif /* __x86_64__ */

#endif /* HAVE_CLONE3_VFORK */

PyDoc_STRVAR(set_subreaper_doc,
"set_subreaper() -> bool\n\n"
"prctl(PR_SET_CHILD_SUBREAPER, 1): whether this process is now the reaper of\n"
"its descendants' orphans. Here so that the CLI need not load ctypes for one\n"
"system call (see stockade.sandbox.proctree.enable_subreaper).");

static PyObject *set_subreaper(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(arg)) {
    return PyBool_FromLong(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0);
}

static PyMethodDef methods[] = {
    {"set_subreaper", set_subreaper, METH_NOARGS, set_subreaper_doc},
#ifdef HAVE_CLONE3_VFORK
    {"spawn", spawn, METH_VARARGS, spawn_doc},
#endif
#ifdef HAVE_CLONE3_ASYNC
    {"spawn_async", spawn_async, METH_VARARGS, spawn_async_doc},
    {"release", release, METH_O, release_doc},
#endif
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_clonespawn",
    "clone3(CLONE_INTO_CGROUP) spawner; see stockade.sandbox.clonespawn.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__clonespawn(void) { return PyModule_Create(&module); }
