/* hack/bench.d/floor.c: the floor for `run /bin/true` -- the kernel work a runtime cannot avoid,
 * with no runtime logic: clone(NEWPID|NEWNS|NEWUTS|NEWIPC|NEWNET), make the mount tree private,
 * bind the rootfs onto itself, mount a fresh proc, pivot_root into it, drop the old root and exec
 * /bin/true; the parent waits and exits with the child's status.
 *
 *   gcc -O2 -o floor floor.c && ./floor ROOTFS [PROG]     (PROG defaults to /bin/true)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *rootfs, *prog = "/bin/true";

static void die(const char *what)
{
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    _exit(127);
}

static int child(void *arg)
{
    (void)arg;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        die("make / private");
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        die("bind rootfs");
    if (chdir(rootfs) < 0)
        die("chdir rootfs");
    if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        die("mount proc");
    /* pivot_root(".", ".") stacks the old root on top of the new one; detach it right away. */
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        die("pivot_root");
    if (umount2(".", MNT_DETACH) < 0)
        die("umount old root");
    if (chdir("/") < 0)
        die("chdir /");
    char *argv[] = {(char *)prog, NULL};
    char *envp[] = {"PATH=/bin:/usr/bin:/sbin:/usr/sbin", NULL};
    execve(prog, argv, envp);
    die("execve");
    return 127;
}

int main(int argc, char **argv)
{
    static char stack[64 * 1024] __attribute__((aligned(16)));
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s ROOTFS [PROG]\n", argv[0]);
        return 2;
    }
    rootfs = argv[1];
    if (argc == 3)
        prog = argv[2];
    int flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | SIGCHLD;
    pid_t pid = clone(child, stack + sizeof stack, flags, NULL);
    if (pid < 0)
        die("clone");
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid");
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
