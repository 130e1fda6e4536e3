/* test_log.c — level names given to --log-level. */
#include "common/log.h"
#include "tests/unit/unit.h"

int test_log_level_parse(void);

int test_log_level_parse(void)
{
	enum log_level l;

	UT_ASSERT_INT(log_level_parse("debug", &l), 0);
	UT_ASSERT_INT(l, LOG_LEVEL_DEBUG);
	UT_ASSERT_INT(log_level_parse("WARNING", &l), 0);
	UT_ASSERT_INT(l, LOG_LEVEL_WARN);
	UT_ASSERT_INT(log_level_parse("error", &l), 0);
	UT_ASSERT_INT(l, LOG_LEVEL_ERROR);
	UT_ASSERT(log_level_parse("loud", &l) != 0);
	UT_ASSERT(log_level_parse(NULL, &l) != 0);
	return 0;
}
