/* prog.h - run the system programs abota relies on (resize2fs, mkfs.ext4,
 * tar): found in the system's sbin/bin directories, not through $PATH (the
 * environment of whoever started the install does not choose what root
 * runs), stdout sent to stderr (abota's stdout is for its results), no
 * shell. */
#ifndef ABOTA_PROG_H
#define ABOTA_PROG_H

#include <stddef.h>

#include "abota/error.h"

/* The absolute path of program `name` in /usr/sbin, /sbin, /usr/bin or /bin
 * (written to buf), or NULL. */
const char *prog_find(const char *name, char *buf, size_t n);

/* Runs argv (argv[0] a path from prog_find) with stdin from stdin_fd (-1:
 * /dev/null) and waits: 0 when it exited 0, else a negative errno with err
 * naming the program and its exit status or signal. */
int prog_run(char *const argv[], int stdin_fd, struct abota_error *err);

/* The same, started only: the child's pid (the caller passes it to
 * prog_wait), or a negative errno. */
int prog_start(char *const argv[], int stdin_fd, struct abota_error *err);
int prog_wait(int pid, const char *what, struct abota_error *err);

#endif
