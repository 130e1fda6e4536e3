/* log.h — one logging module for every OpenUM process: levels, a module name
 * per source file, UTC timestamps, one line per event on stderr (journald and
 * `make run` both read stderr). */
#ifndef OPENUM_LOG_H
#define OPENUM_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO,
	LOG_LEVEL_NOTICE,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

/* Each .c file that logs defines LOG_MODULE before including this header:
 *   #define LOG_MODULE "router"   */
#ifndef LOG_MODULE
#define LOG_MODULE "openum"
#endif

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Sets the process name printed on every line ("umcallrouter", ...). */
void log_set_process(const char *name);
/* Parses "debug", "info", "notice", "warn"/"warning", "error". 0 or EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

void log_write(enum log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vwrite(enum log_level level, const char *module, const char *fmt,
		va_list ap);

/* The lowest level printed (log_set_level), read here so that a line
 * that is off costs one comparison: no call, and its arguments are not
 * evaluated — several debug lines are written on every routed call. */
extern enum log_level log_level_min;

#define log_at(level, ...)                                          \
	do {                                                        \
		if (log_level_min <= (level))                       \
			log_write((level), LOG_MODULE, __VA_ARGS__); \
	} while (0)
#define log_debug(...)  log_at(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)   log_at(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_notice(...) log_at(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_warn(...)   log_at(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...)  log_at(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
