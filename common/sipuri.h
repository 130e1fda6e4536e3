/* sipuri.h — pure parsers for the SIP header values the call router reads
 * beyond what sofia-sip parses: the user of a sip:/sips:/tel: URI and the
 * name-addr lists of Diversion (RFC 5806) and History-Info (RFC 7044).
 * No I/O, no allocation; every input is a NUL-terminated C string and every
 * output is bounded (fuzzed by tests/fuzz/fuzz_sipuri.c). */
#ifndef OPENUM_SIPURI_H
#define OPENUM_SIPURI_H

#include <stddef.h>

/* Longest user part kept, in bytes (after decoding). */
#define SIPURI_USER_MAX 64
/* Longest raw URI kept in an entry; longer URIs are truncated in the copy
 * (the user is taken from the whole URI first). */
#define SIPURI_URI_MAX 255
/* Longest History-Info index / Diversion reason kept; longer values are
 * truncated (they are informational: classification orders History-Info
 * entries by position, not by index). */
#define SIPURI_PARAM_MAX 32
/* Longest header value sipuri_name_addr_list accepts, in bytes. */
#define SIPURI_VALUE_MAX 8192

/* One entry of a Diversion or History-Info list. */
struct sipuri_entry {
	char user[SIPURI_USER_MAX + 1];   /* sipuri_user() of the URI; "" if it has none */
	char uri[SIPURI_URI_MAX + 1];     /* the URI as written (without <>), truncated */
	char index[SIPURI_PARAM_MAX + 1]; /* History-Info ";index=", "" if absent */
	char reason[SIPURI_PARAM_MAX + 1]; /* Diversion ";reason=", unquoted, "" if absent */
};

/* Writes to out the user of a sip:/sips: URI ("sip:1001@host;user=phone" →
 * "1001") or the number of a tel: URI ("tel:+1-425-555-1001;phone-context=x"
 * → "+14255551001"), %-escapes decoded; a user that is a telephone number
 * loses its visual separators (- . ( )) and its own ";param" suffix.
 * out is written only on success. EINVAL: NULL argument / outlen 0;
 * EBADMSG: no user (another scheme, no '@'), a broken escape or an escaped
 * control character, a tel: value that is no number; ENAMETOOLONG: the user
 * does not fit in out. */
int sipuri_user(char *out, size_t outlen, const char *uri);
/* The same for the len bytes at uri, which need no NUL after them. */
int sipuri_user_n(char *out, size_t outlen, const char *uri, size_t len);

/* Parses a comma-separated list of name-addr / addr-spec entries (Diversion,
 * History-Info; several header values joined with ", "): display names
 * quoted or as tokens, <URI> possibly with commas and escaped ?headers,
 * header parameters (index, reason kept). Stores the first max entries in
 * out[] (user "" when the URI has none) and sets *n to the number of entries
 * in the value, which may exceed max. out and *n are written only on
 * success. EINVAL: NULL value/n (or out with max > 0); EMSGSIZE: value longer
 * than SIPURI_VALUE_MAX; EBADMSG: no entry, any syntax error, a broken escape
 * or a user longer than SIPURI_USER_MAX — the whole value is refused, so that
 * "topmost" and "the entry before the pilot" never shift. */
int sipuri_name_addr_list(const char *value, struct sipuri_entry *out,
			  size_t max, size_t *n);

/* Writes to out the digits of number (leading '+' and all else dropped),
 * only the last n of them when there are more (n == 0: all): a diverted
 * +14255551001 in a 4-digit dial plan names extension 1001. A result longer
 * than outlen - 1 keeps its last digits; a NULL number gives "". */
void sipuri_digits_tail(char *out, size_t outlen, const char *number,
			unsigned n);

#endif
