/* A static probe for the seccomp tests: each argument names one raw syscall; the probe
 * prints "name=OK" or "name=<errno name>" for it. Raw syscall(2) everywhere, so libc
 * never substitutes another call (clone3 -> clone, socket -> socketcall...). */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static const char *err_name(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    default: return strerror(e);
    }
}

static long one(const char *name) {
    if (!strcmp(name, "nosys")) return syscall(1000);
    if (!strcmp(name, "getpid")) return syscall(SYS_getpid);
    if (!strcmp(name, "vsock")) return syscall(SYS_socket, AF_VSOCK, SOCK_STREAM, 0);
    if (!strcmp(name, "inet")) return syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0);
    if (!strcmp(name, "keyctl")) return syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3, 0);
    if (!strcmp(name, "userns")) return syscall(SYS_unshare, CLONE_NEWUSER);
    if (!strcmp(name, "mntns")) return syscall(SYS_unshare, CLONE_NEWNS);
    if (!strcmp(name, "personality")) return syscall(SYS_personality, 0x0400000);
    errno = EINVAL;
    return -2;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        errno = 0;
        long r = one(argv[i]);
        if (r == -2 && errno == EINVAL) {
            printf("%s=UNKNOWN\n", argv[i]);
        } else if (r < 0) {
            printf("%s=%s\n", argv[i], err_name(errno));
        } else {
            printf("%s=OK\n", argv[i]);
        }
    }
    return 0;
}
