/* The pod sandbox's process for hack/cri/test.sh (what kubelet's pause image does): pid 1 of the
 * pod's pid namespace when containers share it, so it reaps every orphan, and it exits 0 on
 * SIGINT/SIGTERM so that StopPodSandbox ends it without a SIGKILL. Built static, nothing else in
 * the image. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }

static void reap(int sig)
{
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

static void on(int sig, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = SA_RESTART;
    sigaction(sig, &sa, NULL);
}

int main(void)
{
    on(SIGINT, quit);
    on(SIGTERM, quit);
    on(SIGCHLD, reap);
    for (;;)
        pause();
}
