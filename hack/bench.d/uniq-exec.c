/* hack/bench.d/uniq-exec.c: exec a command with every "{id}" in its arguments replaced by an id
 * unique to this run ("b<pid>-<ns>"), for timing with hyperfine, whose {i} parameter is not unique
 * per run. It costs one exec (~0.5 ms); measure `uniq-exec /bin/true` to subtract it.
 *
 *   hyperfine -N 'uniq-exec /usr/bin/crun run --bundle B {id}' ...   (hack/bench --hyperfine does this)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PROG [ARG...]   (each {id} becomes a unique id)\n", argv[0]);
        return 2;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char id[64];
    snprintf(id, sizeof id, "b%d-%lld%09ld", (int)getpid(), (long long)ts.tv_sec, ts.tv_nsec);
    for (int i = 1; i < argc; i++) {
        char *p = strstr(argv[i], "{id}");
        if (!p)
            continue;
        size_t n = strlen(argv[i]) + strlen(id) + 1;
        char *s = malloc(n);
        if (!s)
            return 127;
        snprintf(s, n, "%.*s%s%s", (int)(p - argv[i]), argv[i], id, p + 4);
        argv[i] = s; /* one {id} per argument is all the bench needs */
    }
    execv(argv[1], argv + 1);
    perror(argv[1]);
    return 127;
}
