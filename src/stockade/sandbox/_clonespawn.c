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
    for (i = 0; i < 3; i++) {
        if (i == 0 && !want_stdin) continue;
        if (pipe2(ends[i], O_CLOEXEC) < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            tag_stage(STAGE_PIPES); /* ours, not clone3 refused: no fallback */
            goto done;
        }
    }
    for (i = 1; i < 3; i++) {
        /* The read ends are ours: non-blocking for the event loop, and
           widened so a fast writer fills more between two reads (the
           default stays if the host refuses). The job's ends stay blocking. */
        int flags = fcntl(ends[i][0], F_GETFL);
        if (flags < 0 || fcntl(ends[i][0], F_SETFL, flags | O_NONBLOCK) < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            tag_stage(STAGE_PIPES); /* ours, not clone3 refused: no fallback */
            goto done;
        }
        if (pipe_size > 0) (void)fcntl(ends[i][0], F_SETPIPE_SZ, pipe_size);
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

#endif /* HAVE_CLONE3_VFORK */

static PyMethodDef methods[] = {
#ifdef HAVE_CLONE3_VFORK
    {"spawn", spawn, METH_VARARGS, spawn_doc},
#endif
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_clonespawn",
    "clone3(CLONE_INTO_CGROUP) spawner; see stockade.sandbox.clonespawn.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__clonespawn(void) { return PyModule_Create(&module); }
