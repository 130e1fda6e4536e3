/* fuzz_sipuri.c — libFuzzer harness of common/sipuri.c: the input, as a
 * NUL-terminated string, goes to sipuri_name_addr_list, sipuri_user and
 * sipuri_digits_tail; outputs are checked to be terminated and bounded. */
#include "common/sipuri.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_entry(const struct sipuri_entry *e)
{
	if (strnlen(e->user, sizeof e->user) >= sizeof e->user ||
	    strnlen(e->uri, sizeof e->uri) >= sizeof e->uri ||
	    strnlen(e->index, sizeof e->index) >= sizeof e->index ||
	    strnlen(e->reason, sizeof e->reason) >= sizeof e->reason)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sipuri_entry e[8];
	char user[SIPURI_USER_MAX + 1], small[4], digits[21];
	size_t n = 0, i;
	char *s;

	/* An exact-size copy so that ASan sees any read past the NUL. */
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	if (sipuri_name_addr_list(s, e, 8, &n) == 0) {
		if (n == 0)
			abort();
		for (i = 0; i < n && i < 8; i++) {
			check_entry(&e[i]);
			/* an entry's user is what sipuri_user gives for
			 * its URI, when the URI was not truncated */
			if (e[i].user[0] && strlen(e[i].uri) < SIPURI_URI_MAX &&
			    (sipuri_user(user, sizeof user, e[i].uri) != 0 ||
			     strcmp(user, e[i].user) != 0))
				abort();
		}
	}
	if (sipuri_user(user, sizeof user, s) == 0 &&
	    (user[0] == '\0' || strlen(user) > SIPURI_USER_MAX))
		abort();
	if (sipuri_user(small, sizeof small, s) == 0 && strlen(small) > 3)
		abort();
	sipuri_digits_tail(digits, sizeof digits, s, 4);
	if (strlen(digits) > 4)
		abort();
	sipuri_digits_tail(digits, sizeof digits, s, 0);
	if (strlen(digits) > 20)
		abort();
	sipuri_digits_tail(small, sizeof small, s, 5);
	if (strlen(small) > 3)
		abort();

	free(s);
	return 0;
}
