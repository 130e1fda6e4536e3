/* test_growbuf.c — doubling, the cap, and a buffer left intact. */
#include "tests/unit/unit.h"

#include "common/growbuf.h"

#include <stdlib.h>
#include <string.h>

int test_growbuf(void);

int test_growbuf(void)
{
	char *b = NULL;
	size_t cap = 0;

	/* from nothing: init, doubled until it holds want */
	UT_ASSERT(growbuf(&b, &cap, 100, 64, 0));
	UT_ASSERT_INT(cap, 128);
	memcpy(b, "kept", 5);
	UT_ASSERT(growbuf(&b, &cap, 100, 64, 0));	/* already enough */
	UT_ASSERT_INT(cap, 128);
	UT_ASSERT(growbuf(&b, &cap, 1000, 64, 0));
	UT_ASSERT_INT(cap, 1024);
	UT_ASSERT(!strcmp(b, "kept"));
	/* the cap: grows to max and says it is short */
	UT_ASSERT(!growbuf(&b, &cap, 5000, 64, 3000));
	UT_ASSERT_INT(cap, 3000);
	UT_ASSERT(!growbuf(&b, &cap, 5000, 64, 3000));	/* at max: unchanged */
	UT_ASSERT_INT(cap, 3000);
	UT_ASSERT(!strcmp(b, "kept"));
	free(b);
	return 0;
}
