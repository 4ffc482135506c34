#include <fcgiapp.h>
// The accept loop waits in epoll and is woken through an eventfd; Glibc's Swift module
// leaves both headers out.
#include <sys/epoll.h>
#include <sys/eventfd.h>
