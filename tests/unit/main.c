/* main.c — the unit-test runner: every test runs in a forked child with a
 * timeout (a crash or a hang fails that test, not the run), and the run ends
 * with the summary line "N passed, N failed".
 *   build/unit-tests            all tests
 *   build/unit-tests NAME...    the tests whose name contains NAME */
#include "tests/unit/unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define UT_LEAK_CHECK() __lsan_do_recoverable_leak_check()
#else
#define UT_LEAK_CHECK() 0
#endif

#define TEST(name) int name(void);
#include "tests/unit/tests.def"
#undef TEST

static const struct {
	const char *name;
	int (*fn)(void);
} tests[] = {
#define TEST(name) {#name, name},
#include "tests/unit/tests.def"
#undef TEST
};

static char tmpdir[256];

const char *ut_tmpdir(void)
{
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof tmpdir, "/tmp/openum-unit-XXXXXX");
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			abort();
		}
	}
	return tmpdir;
}

/* See unit.h. */
struct sockaddr_in ut_v4(const char *ip, unsigned port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static int run_one(int i, unsigned timeout_s)
{
	pid_t pid = fork();
	int status;

	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		int rc;

		alarm(timeout_s);
		rc = tests[i].fn();
		/* Children end with _exit(), which skips LeakSanitizer's exit
		 * check: run it here so a sanitizer build catches leaks. */
		if (UT_LEAK_CHECK() != 0) {
			fprintf(stderr, "  %s: memory leaked\n", tests[i].name);
			rc = 1;
		}
		if (tmpdir[0]) {
			char cmd[300];
			snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
			if (system(cmd) != 0)
				fprintf(stderr, "  could not remove %s\n", tmpdir);
		}
		_exit(rc ? 1 : 0);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return 1;
	}
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "  %s: killed by signal %d%s\n", tests[i].name,
			WTERMSIG(status),
			WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
		return 1;
	}
	return WEXITSTATUS(status) != 0;
}

int main(int argc, char **argv)
{
	unsigned passed = 0, failed = 0;
	const char *t = getenv("UNIT_TIMEOUT");
	unsigned timeout_s = t ? (unsigned)atoi(t) : 60;

	for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		int selected = argc < 2;

		for (int a = 1; a < argc; a++) {
			if (strstr(tests[i].name, argv[a]))
				selected = 1;
		}
		if (!selected)
			continue;
		if (run_one((int)i, timeout_s) == 0) {
			printf("ok   %s\n", tests[i].name);
			passed++;
		} else {
			printf("FAIL %s\n", tests[i].name);
			failed++;
		}
		fflush(stdout);
	}
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
