/* unit.h — the tiny assertion kit of the C unit tests. A test is a function
 * `int test_x(void)` that returns 0 when it passes; UT_ASSERT returns 1 with
 * file and line when a condition fails. tests/unit/main.c lists every test
 * and runs each one in its own child process with a timeout. */
#ifndef OPENUM_UNIT_H
#define OPENUM_UNIT_H

#include <stdio.h>
#include <string.h>

#define UT_ASSERT(cond)                                                      \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "  %s:%d: assertion failed: %s\n",   \
				__FILE__, __LINE__, #cond);                  \
			return 1;                                            \
		}                                                            \
	} while (0)

#define UT_ASSERT_INT(a, b)                                                  \
	do {                                                                 \
		long long ut_a_ = (long long)(a), ut_b_ = (long long)(b);    \
		if (ut_a_ != ut_b_) {                                        \
			fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n", \
				__FILE__, __LINE__, #a, ut_a_, #b, ut_b_);   \
			return 1;                                            \
		}                                                            \
	} while (0)

#define UT_ASSERT_STR(a, b)                                                  \
	do {                                                                 \
		const char *ut_a_ = (a), *ut_b_ = (b);                       \
		if (!ut_a_ || !ut_b_ || strcmp(ut_a_, ut_b_) != 0) {         \
			fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", \
				__FILE__, __LINE__, #a, ut_a_ ? ut_a_ : "(null)", \
				ut_b_ ? ut_b_ : "(null)");                   \
			return 1;                                            \
		}                                                            \
	} while (0)

/* A temporary directory for the running test, created on first use and
 * removed by the runner afterwards. */
const char *ut_tmpdir(void);

struct sockaddr_in;
/* An IPv4 socket address from a dotted quad and a port. */
struct sockaddr_in ut_v4(const char *ip, unsigned port);

#endif
