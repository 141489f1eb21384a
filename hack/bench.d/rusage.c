/* hack/bench.d/rusage.c: run a command and write its wait4() rusage to a file.
 *
 *   rusage OUT PROG [ARG...]   ->  OUT gets "maxrss_kib utime_us stime_us exit_code"
 *
 * The harness (python) cannot read a command's peak RSS itself: it starts commands with
 * posix_spawn (vfork), and exec() records the hiwater RSS of the mm it leaves -- the parent's --
 * in the child's ru_maxrss. This small program forks (its own RSS is ~1 MiB), so the figure is the
 * runtime's own peak (plus any child it waited for).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s OUT PROG [ARG...]\n", argv[0]);
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("rusage: fork");
        return 127;
    }
    if (pid == 0) {
        execv(argv[2], argv + 2);
        perror("rusage: exec");
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("rusage: wait4");
        return 127;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror(argv[1]);
        return 127;
    }
    fprintf(f, "%ld %ld %ld %d\n", ru.ru_maxrss,
            (long)(ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec),
            (long)(ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec), code);
    fclose(f);
    return code;
}
