#include <fcgiapp.h>
// The accept loop waits in epoll and is woken through an eventfd; Glibc's Swift module
// leaves both headers out.
#include <sys/epoll.h>
#include <sys/eventfd.h>
// prctl is variadic, which Swift cannot call; pthread_setname_np needs _GNU_SOURCE.
#include <sys/prctl.h>

static inline int fastcgi_name_current_thread(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}
