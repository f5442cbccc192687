/* prog.c - run the system programs abota relies on. */
#include "abota/prog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *prog_find(const char *name, char *buf, size_t n)
{
	static const char *const dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (snprintf(buf, n, "%s/%s", dirs[i], name) < (int)n && access(buf, X_OK) == 0)
			return buf;
	return NULL;
}

int prog_start(char *const argv[], int stdin_fd, struct abota_error *err)
{
	pid_t pid = fork();
	if (pid < 0)
		return abota_error_set(err, -errno, "%s: fork: %s", argv[0], strerror(errno));
	if (pid == 0) {
		int fd = stdin_fd >= 0 ? stdin_fd : open("/dev/null", O_RDONLY);
		if (fd >= 0 && fd != 0)
			dup2(fd, 0);
		dup2(2, 1);
		execv(argv[0], argv);
		fprintf(stderr, "abota: cannot execute %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return (int)pid;
}

int prog_wait(int pid, const char *what, struct abota_error *err)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return abota_error_set(err, -errno, "%s: waitpid: %s", what, strerror(errno));
	if (WIFSIGNALED(status))
		return abota_error_set(err, -EINTR, "%s was killed by signal %d", what,
				       WTERMSIG(status));
	if (WEXITSTATUS(status) != 0)
		return abota_error_set(err, -EIO, "%s failed with exit code %d", what,
				       WEXITSTATUS(status));
	return 0;
}

int prog_run(char *const argv[], int stdin_fd, struct abota_error *err)
{
	int pid = prog_start(argv, stdin_fd, err);
	return pid < 0 ? pid : prog_wait(pid, argv[0], err);
}
