/*
 * The ceiling for deploy/bench: the least work a libfcgi responder can do
 * behind the same nginx config as the Swift workers, so that the Swift
 * numbers can be read as a fraction of what this transport allows.
 *
 * Usage: bench-ceiling SOCKET_PATH [THREADS]    (THREADS default 8)
 *        bench-ceiling - [THREADS]              accept on the inherited fd 0
 *
 * Every request: drain the body (a POST costs what it costs the real worker
 * to read it), answer 200 with a tiny JSON body. One connection per request,
 * as nginx is configured (no fastcgi_keep_conn), and no accept mutex: Linux
 * wakes one accept()er per connection.
 *
 * SIGTERM/SIGINT: FCGX_Init installs a SIGTERM handler that only the thread
 * taking the signal would notice, while the others stay in accept(). So the
 * signals are blocked before FCGX_Init and before any thread exists, and the
 * main thread sigwait()s, removes the socket it created and exits.
 *
 * Build: cc -O2 -pthread -o bench-ceiling bench-ceiling.c -lfcgi
 */
#include <errno.h>
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static const char response[] =
    "Status: 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 16\r\n"
    "\r\n"
    "{\"status\":\"ok\"}\n";

static int listen_fd;

static void *serve(void *unused)
{
    (void)unused;
    /* libfcgi's streams point back into the request: it must not move. */
    FCGX_Request *req = calloc(1, sizeof *req);
    char sink[16384];
    if (req == NULL || FCGX_InitRequest(req, listen_fd, 0) != 0) {
        fprintf(stderr, "bench-ceiling: cannot set up a request\n");
        exit(1);
    }
    for (;;) {
        if (FCGX_Accept_r(req) < 0) {
            /* A peer that vanished between accept and read: keep going. */
            continue;
        }
        while (FCGX_GetStr(sink, sizeof sink, req->in) > 0) {
        }
        FCGX_PutStr(response, sizeof response - 1, req->out);
        FCGX_Finish_r(req);
    }
    return NULL;
}

static int open_socket(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "bench-ceiling: socket path too long\n");
        exit(2);
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("bench-ceiling: socket");
        exit(1);
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        perror("bench-ceiling: unlink");
        exit(1);
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("bench-ceiling: bind");
        exit(1);
    }
    /* The umask would decide otherwise (0755 typically), and nginx needs
     * write permission to connect. */
    if (chmod(path, 0660) != 0) {
        perror("bench-ceiling: chmod");
        exit(1);
    }
    /* Capped by net.core.somaxconn; a full backlog is an instant 502. */
    if (listen(fd, 4096) != 0) {
        perror("bench-ceiling: listen");
        exit(1);
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bench-ceiling SOCKET_PATH|- [THREADS]\n");
        return 2;
    }
    const char *path = strcmp(argv[1], "-") == 0 ? NULL : argv[1];
    int threads = argc == 3 ? atoi(argv[2]) : 8;
    if (threads < 1 || threads > 1024) {
        fprintf(stderr, "bench-ceiling: THREADS must be 1..1024\n");
        return 2;
    }

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    listen_fd = path ? open_socket(path) : 0;
    if (FCGX_Init() != 0) {
        fprintf(stderr, "bench-ceiling: FCGX_Init failed\n");
        return 1;
    }
    for (int i = 0; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, serve, NULL) != 0) {
            fprintf(stderr, "bench-ceiling: pthread_create failed\n");
            return 1;
        }
    }

    int sig;
    do {
        sigwait(&stop, &sig);
    } while (sig == SIGHUP);  /* nothing to reload */
    if (path) {
        unlink(path);
    }
    _exit(0);
}
