/* test_pin.c — PIN hashing, verification, generation and policy checks. */
#include "common/pin.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int test_pin_hash_verify(void);
int test_pin_generate(void);
int test_pin_policy(void);

int test_pin_hash_verify(void)
{
	char *a = NULL, *b = NULL;
	char bad[256];

	/* the real count once; the rest with a cheap one */
	UT_ASSERT_INT(pin_hash(&a, "482916"), 0);
	UT_ASSERT(strncmp(a, "pbkdf2-sha256$100000$", 21) == 0);
	UT_ASSERT(strstr(a, "482916") == NULL);
	UT_ASSERT_INT(pin_verify(a, "482916"), 0);
	UT_ASSERT_INT(pin_verify(a, "482917"), EACCES);
	free(a);
	pin_set_iterations(1000);
	UT_ASSERT_INT(pin_hash(&a, "482916"), 0);
	UT_ASSERT_INT(pin_hash(&b, "482916"), 0);
	UT_ASSERT(strncmp(a, "pbkdf2-sha256$1000$", 19) == 0);
	UT_ASSERT(strcmp(a, b) != 0); /* a fresh salt each time */
	UT_ASSERT_INT(pin_verify(b, "482916"), 0);
	UT_ASSERT_INT(pin_verify(a, ""), EACCES);
	/* malformed stored strings */
	UT_ASSERT_INT(pin_verify("", "1"), EINVAL);
	UT_ASSERT_INT(pin_verify("482916", "482916"), EINVAL);
	UT_ASSERT_INT(pin_verify("pbkdf2-sha256$0$00$00", "1"), EINVAL);
	UT_ASSERT_INT(pin_verify("md5$1000$aabb$ccdd", "1"), EINVAL);
	snprintf(bad, sizeof bad, "%s", a);
	bad[strlen(bad) - 1] = 'x'; /* not hex */
	UT_ASSERT_INT(pin_verify(bad, "482916"), EINVAL);
	snprintf(bad, sizeof bad, "%s", a);
	bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '0' ? '1' : '0';
	UT_ASSERT_INT(pin_verify(bad, "482916"), EACCES);
	free(a);
	free(b);
	/* the iteration count is read from the string */
	UT_ASSERT_INT(pin_hash_iter(&a, "9731", 1000), 0);
	UT_ASSERT(strncmp(a, "pbkdf2-sha256$1000$", 19) == 0);
	UT_ASSERT_INT(pin_verify(a, "9731"), 0);
	free(a);
	return 0;
}

int test_pin_generate(void)
{
	char p[32];

	for (int i = 0; i < 500; i++) {
		UT_ASSERT_INT(pin_generate(p, sizeof p, 6), 0);
		UT_ASSERT_INT(strlen(p), 6);
		UT_ASSERT(strspn(p, "0123456789") == 6);
		UT_ASSERT(!pin_is_common_pattern(p));
	}
	UT_ASSERT_INT(pin_generate(p, sizeof p, 24), 0);
	UT_ASSERT_INT(strlen(p), 24);
	UT_ASSERT_INT(pin_generate(p, 6, 6), EINVAL); /* no room for NUL */
	UT_ASSERT_INT(pin_generate(p, sizeof p, 3), EINVAL);
	UT_ASSERT_INT(pin_generate(p, sizeof p, 25), EINVAL);
	return 0;
}

int test_pin_policy(void)
{
	struct pin_policy pol = {6, false};
	char *cause = NULL;

	UT_ASSERT_INT(pin_policy_check(&pol, "1001", "482916", NULL), 0);
	UT_ASSERT_INT(pin_policy_check(&pol, "1001", "48291", &cause),
		      EINVAL);
	UT_ASSERT(cause && strstr(cause, "MinPINLength"));
	free(cause);
	cause = NULL;
	UT_ASSERT_INT(pin_policy_check(&pol, "1001", "111111", &cause),
		      EINVAL);
	UT_ASSERT(cause && strstr(cause, "AllowCommonPatterns"));
	free(cause);
	UT_ASSERT_INT(pin_policy_check(&pol, "1001", "123456", NULL), EINVAL);
	UT_ASSERT_INT(pin_policy_check(&pol, "1001", "654321", NULL), EINVAL);
	UT_ASSERT_INT(pin_policy_check(&pol, "1001", "890123", NULL), EINVAL);
	UT_ASSERT_INT(pin_policy_check(&pol, "1001", "481001", NULL), EINVAL);
	UT_ASSERT_INT(pin_policy_check(&pol, "481937", "481937", NULL),
		      EINVAL);
	UT_ASSERT_INT(pin_policy_check(&pol, "1001", "48a916", NULL), EINVAL);
	UT_ASSERT_INT(pin_policy_check(&pol, "1001", "", NULL), EINVAL);
	UT_ASSERT_INT(pin_policy_check(&pol, "1001",
				       "4829164829164829164829161", NULL),
		      EINVAL); /* 25 digits */
	UT_ASSERT_INT(pin_policy_check(&pol, "1001",
				       "482916482916482916482916", NULL),
		      0); /* 24 */
	/* a 2-digit extension only forbids equality */
	UT_ASSERT_INT(pin_policy_check(&pol, "48", "482916", NULL), 0);
	pol.allow_common_patterns = true;
	UT_ASSERT_INT(pin_policy_check(&pol, "1001", "111111", NULL), 0);
	UT_ASSERT_INT(pin_policy_check(&pol, "1001", "123456", NULL), 0);
	UT_ASSERT_INT(pin_policy_check(&pol, "1001", "12345", NULL), EINVAL);
	pol.min_length = 4;
	UT_ASSERT_INT(pin_policy_check(&pol, "1001", "1234", NULL), 0);
	UT_ASSERT(pin_is_common_pattern("0000"));
	UT_ASSERT(pin_is_common_pattern("9876"));
	UT_ASSERT(!pin_is_common_pattern("1235"));
	return 0;
}
