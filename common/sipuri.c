/* sipuri.c — URI users and Diversion / History-Info name-addr lists, parsed
 * from untrusted header text without I/O (RFC 3261 §25.1, RFC 3966, RFC 5806,
 * RFC 7044). */
#include "common/hex.h"
#include "common/sipuri.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* ---- character classes (RFC 3261 §25.1), ASCII only ---------------------- */

static bool is_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
static bool is_token(unsigned char c)
{
	return is_alnum(c) || (c != '\0' && strchr("-.!%*_+`'~", c) != NULL);
}

/* LWS, including the CR LF of a folded header line. */
static bool is_lws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A character that may appear in a URI at all: printable ASCII other than
 * space, '<', '>' and '"' (those end or delimit a URI in a header). */
static bool is_uric(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '<' && c != '>' && c != '"';
}

/* Control characters (CTL of RFC 5234). */
static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Visual separators of RFC 3966 §5.1.1 (and the parentheses PBXs send). */
static bool is_visual(unsigned char c)
{
	return c == '-' || c == '.' || c == '(' || c == ')';
}

static const char *skip_lws(const char *p)
{
	while (is_lws((unsigned char)*p))
		p++;
	return p;
}

/* ---- users --------------------------------------------------------------- */

/* Percent-decodes src[0..len) into out (outlen bytes, NUL-terminated).
 * EBADMSG: a broken escape or an escaped control character; ENAMETOOLONG: does not fit. */
static int pct_decode(char *out, size_t outlen, const char *src, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3)
				return EBADMSG;
			hi = hex_digit((unsigned char)src[i + 1]);
			lo = hex_digit((unsigned char)src[i + 2]);
			if (hi < 0 || lo < 0)
				return EBADMSG;
			c = (unsigned char)(hi * 16 + lo);
			/* %00 would cut the string, %0D%0A would break a
			 * log line or a reason phrase built from the user. */
			if (is_ctl(c))
				return EBADMSG;
			i += 2;
		} else if (is_ctl(c)) {
			return EBADMSG;	/* raw, too: callers pass spans of messages */
		}
		if (o + 1 >= outlen)
			return ENAMETOOLONG;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* A telephone number as PBXs write it: an optional leading '+', then digits,
 * '*', '#' and visual separators, with at least one digit. */
static bool is_phone(const char *s)
{
	bool digit = false;

	if (*s == '+')
		s++;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (is_digit(c))
			digit = true;
		else if (c != '*' && c != '#' && !is_visual(c))
			return false;
	}
	return digit;
}

/* Removes the visual separators of a number in place. */
static void strip_visual(char *s)
{
	char *w = s;

	for (; *s; s++)
		if (!is_visual((unsigned char)*s))
			*w++ = *s;
	*w = '\0';
}

/* The user size before the final length check: a decoded user of more
 * bytes than this is ENAMETOOLONG whatever the caller's buffer. */
#define USER_TMP (SIPURI_USER_MAX * 3 + 1)

/* The number of a tel: URI, u[0..len) after "tel:", into tmp (USER_TMP):
 * the telephone-subscriber before its first ";param" (RFC 3966 §3),
 * without visual separators. */
static int tel_number(char *tmp, const char *u, size_t len)
{
	const char *semi = memchr(u, ';', len);
	int err;

	if (semi)
		len = (size_t)(semi - u);
	if (len == 0)
		return ENOENT;
	err = pct_decode(tmp, USER_TMP, u, len);
	if (err)
		return err;
	if (!is_phone(tmp))
		return EBADMSG;
	strip_visual(tmp);
	return 0;
}

/* The user of a sip:/sips: URI, u[0..len) after the scheme, into tmp
 * (USER_TMP). */
static int sip_user(char *tmp, const char *u, size_t len)
{
	const char *at, *colon, *semi;
	int err;

	/* userinfo ends at the first '@' (host, uri-parameters and escaped
	 * headers never hold a raw '@'); a ":password" is not the user. */
	at = memchr(u, '@', len);
	if (!at)
		return ENOENT;
	len = (size_t)(at - u);
	colon = memchr(u, ':', len);
	if (colon)
		len = (size_t)(colon - u);
	if (len == 0)
		return ENOENT;
	/* With user=phone (or without, as PBXs often omit it) a user that is a
	 * telephone-subscriber carries its own ";phone-context=..." / ";isub="
	 * parameters: the number is what precedes them (RFC 3261 §19.1.6). */
	semi = memchr(u, ';', len);
	if (semi && semi > u) {
		err = pct_decode(tmp, USER_TMP, u, (size_t)(semi - u));
		if (err == EBADMSG)
			return EBADMSG;
		if (!err && is_phone(tmp)) {
			strip_visual(tmp);
			return 0;
		}
	}
	err = pct_decode(tmp, USER_TMP, u, len);
	if (err)
		return err;
	if (is_phone(tmp))
		strip_visual(tmp);
	return 0;
}

/* The user of uri[0..len): 0, ENOENT when the URI has no user part (no '@',
 * an empty user, an empty tel: number, another scheme), EBADMSG when the
 * user is malformed (bad escape, a tel: number that is no number),
 * ENAMETOOLONG when it does not fit in out. */
static int user_of(char *out, size_t outlen, const char *uri, size_t len)
{
	char tmp[USER_TMP];
	int err;

	if (len >= 4 && strncasecmp(uri, "sip:", 4) == 0)
		err = sip_user(tmp, uri + 4, len - 4);
	else if (len >= 5 && strncasecmp(uri, "sips:", 5) == 0)
		err = sip_user(tmp, uri + 5, len - 5);
	else if (len >= 4 && strncasecmp(uri, "tel:", 4) == 0)
		err = tel_number(tmp, uri + 4, len - 4);
	else
		err = ENOENT;
	if (err)
		goto out;
	if (tmp[0] == '\0') {
		err = ENOENT;
		goto out;
	}
	if (strlen(tmp) >= outlen) {
		err = ENAMETOOLONG;
		goto out;
	}
	strcpy(out, tmp);
out:
	return err;
}

/* Writes to out (outlen bytes) the user part of a sip:/sips: URI
 * ("sip:1001@host;user=phone" → "1001") or the number of a tel: URI
 * ("tel:+1-425-555-1001;phone-context=x" → "+14255551001"), %-escapes
 * decoded. When the user is a telephone number (optional '+', digits, '*',
 * '#' and visual separators '-', '.', '(', ')'), the separators are removed
 * and its own ";param" suffix dropped; other users (SIP names) are kept as
 * they are. out is written only on success.
 *   EINVAL       NULL argument or outlen 0
 *   EBADMSG      no user part (another scheme, no '@', empty user), a broken
 *                %-escape or %00, a tel: "number" that is not a number
 *   ENAMETOOLONG the user does not fit in out (or has more than 3 *
 *                SIPURI_USER_MAX bytes, whatever outlen) */
int sipuri_user(char *out, size_t outlen, const char *uri)
{
	return uri ? sipuri_user_n(out, outlen, uri, strlen(uri)) : EINVAL;
}

/* See the header. */
int sipuri_user_n(char *out, size_t outlen, const char *uri, size_t len)
{
	int err;

	if (!out || !outlen || !uri)
		return EINVAL;
	err = user_of(out, outlen, uri, len);
	return err == ENOENT ? EBADMSG : err;
}

/* ---- name-addr lists ----------------------------------------------------- */

/* Copies src[0..len) into a field of cap bytes, truncating. */
static void copy_trunc(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* Skips a quoted-string starting at the '"' at p; returns the character after
 * the closing quote, or NULL if it is unterminated or holds a control
 * character other than HTAB (sofia-sip unfolds header lines before us). The unquoted text (escapes removed) is copied to dst
 * (truncated to cap) when dst is not NULL. */
static const char *quoted(const char *p, char *dst, size_t cap)
{
	size_t o = 0;

	for (p++; *p != '"'; p++) {
		if (*p == '\\')
			p++;
		/* No NUL, and no control character but HTAB: the text may end
		 * up in a log line or a reason phrase. */
		if (*p == '\0' || (is_ctl((unsigned char)*p) && *p != '\t'))
			return NULL;
		if (dst && o + 1 < cap)
			dst[o++] = *p;
	}
	if (dst && cap)
		dst[o] = '\0';
	return p + 1;
}

/* Parses the header parameters after an entry's URI (";name[=value]"...);
 * returns the position after them or NULL on a syntax error. Records index
 * and reason in e (when e is not NULL). */
static const char *params(const char *p, struct sipuri_entry *e)
{
	for (;;) {
		const char *name, *val;
		size_t nlen, vlen;
		char qbuf[SIPURI_PARAM_MAX + 1];
		char *field;

		p = skip_lws(p);
		if (*p != ';')
			return p;
		p = skip_lws(p + 1);
		name = p;
		while (is_token((unsigned char)*p))
			p++;
		nlen = (size_t)(p - name);
		if (nlen == 0)
			return NULL;
		field = NULL;
		if (e && nlen == 5 && strncasecmp(name, "index", 5) == 0)
			field = e->index;
		else if (e && nlen == 6 && strncasecmp(name, "reason", 6) == 0)
			field = e->reason;
		p = skip_lws(p);
		if (*p != '=') {
			if (field)
				field[0] = '\0';
			continue;
		}
		p = skip_lws(p + 1);
		if (*p == '"') {
			p = quoted(p, qbuf, sizeof qbuf);
			if (!p)
				return NULL;
			if (field)
				strcpy(field, qbuf);
			continue;
		}
		/* gen-value = token / host (an IPv6 reference has '[', ':', ']') */
		val = p;
		while (is_token((unsigned char)*p) || *p == ':' || *p == '[' ||
		       *p == ']')
			p++;
		vlen = (size_t)(p - val);
		if (vlen == 0)
			return NULL;
		if (field)
			copy_trunc(field, SIPURI_PARAM_MAX + 1, val, vlen);
	}
}

/* Parses one entry at p (LWS skipped); returns the position after it (at ','
 * or the end) or NULL on a syntax error / an overlong user. */
static const char *entry(const char *p, struct sipuri_entry *e)
{
	const char *uri, *q;
	size_t ulen;
	char user[SIPURI_USER_MAX + 1];
	int err;

	if (*p == '"') {
		/* display-name as quoted-string, then <addr-spec> */
		p = quoted(p, NULL, 0);
		if (!p)
			return NULL;
		p = skip_lws(p);
		if (*p != '<')
			return NULL;
	} else if (*p != '<') {
		/* *(token LWS) followed by '<' is a display name; anything else
		 * (scheme ':' ...) is a bare addr-spec. */
		q = p;
		while (is_token((unsigned char)*q) || is_lws((unsigned char)*q))
			q++;
		if (*q == '<')
			p = q;
	}

	if (*p == '<') {
		/* Inside <> only '>' ends the URI; a sloppy unescaped
		 * ?Reason=SIP;text="..." header is tolerated. */
		uri = ++p;
		while (is_uric((unsigned char)*p) || *p == '"')
			p++;
		if (*p != '>')
			return NULL;
		ulen = (size_t)(p - uri);
		p++;
	} else {
		/* addr-spec form: the URI cannot hold ',', ';' or '?' here
		 * (RFC 3261 §20): they belong to the header. */
		uri = p;
		while (is_uric((unsigned char)*p) && *p != ',' && *p != ';' &&
		       *p != '?')
			p++;
		ulen = (size_t)(p - uri);
	}
	/* A URI is scheme ':' something: a scheme starts with a letter. */
	q = memchr(uri, ':', ulen);
	if (!q || q == uri || !((*uri | 0x20) >= 'a' && (*uri | 0x20) <= 'z'))
		return NULL;
	for (const char *s = uri + 1; s < q; s++)
		if (!is_alnum((unsigned char)*s) && *s != '+' && *s != '-' &&
		    *s != '.')
			return NULL;

	err = user_of(user, sizeof user, uri, ulen);
	if (err == ENOENT)
		user[0] = '\0';
	else if (err)
		return NULL;

	if (e) {
		memset(e, 0, sizeof *e);
		strcpy(e->user, user);
		copy_trunc(e->uri, sizeof e->uri, uri, ulen);
	}
	p = params(p, e);
	if (!p)
		return NULL;
	p = skip_lws(p);
	if (*p != ',' && *p != '\0')
		return NULL;
	return p;
}

/* Parses value, a comma-separated list of name-addr / addr-spec entries as
 * in Diversion (RFC 5806) and History-Info (RFC 7044) headers, several
 * header values joined with ", " included:
 *     "Alice" <sip:+1-425-555-1001@gw;user=phone>;reason=no-answer;counter=1,
 *     <sip:4000@um?Reason=SIP%3Bcause%3D302>;index=1.1
 * Display names are quoted strings (escapes, commas allowed) or tokens; a
 * <URI> may hold commas and escaped ?headers; a bare addr-spec ends at ',',
 * ';' or '?'. Header parameters are token[=token/host/quoted-string]; index
 * and reason are kept. Empty list elements (", ,") are skipped.
 * The first max entries go to out[] (user by sipuri_user rules, "" when the
 * URI has none, e.g. another scheme); *n is set to the number of entries in
 * the value, which may exceed max (then only max were stored). out and *n
 * are written only on success.
 *   EINVAL   NULL value or n, or out NULL with max > 0
 *   EMSGSIZE value longer than SIPURI_VALUE_MAX
 *   EBADMSG  no entry at all, a syntax error anywhere (unterminated quote or
 *            <, text after an entry, no scheme), a broken %-escape in a
 *            user, or a user longer than SIPURI_USER_MAX: the whole value is
 *            refused, so that "topmost" and "before the pilot" keep their
 *            meaning. */
int sipuri_name_addr_list(const char *value, struct sipuri_entry *out,
			  size_t max, size_t *n)
{
	const char *p;
	size_t count = 0;
	int pass, err = 0;

	if (!value || !n || (!out && max))
		return EINVAL;
	if (strnlen(value, SIPURI_VALUE_MAX + 1) > SIPURI_VALUE_MAX)
		return EMSGSIZE;

	/* Pass 0 checks the whole value, pass 1 fills out[]: out is written
	 * only when the value is good. */
	for (pass = 0; pass < 2; pass++) {
		count = 0;
		p = value;
		for (;;) {
			p = skip_lws(p);
			if (*p == '\0')
				break;
			if (*p == ',') {
				p++;
				continue;
			}
			p = entry(p, pass && count < max ? &out[count] : NULL);
			if (!p) {
				err = EBADMSG;
				goto out;
			}
			count++;
		}
		if (count == 0) {
			err = EBADMSG;
			goto out;
		}
	}
	*n = count;
out:
	return err;
}

/* ---- numbers ------------------------------------------------------------- */

/* Writes to out (outlen bytes) the digits of number (a leading '+', visual
 * separators and everything else dropped), keeping only the last n when
 * there are more than n (Exchange: a diverted E.164 number +14255551001 in a
 * 4-digit dial plan names extension 1001). n == 0 keeps all digits. If the
 * result does not fit in out, its last outlen - 1 digits are kept. A NULL
 * number gives "". Never fails; does nothing when out is NULL or outlen 0. */
void sipuri_digits_tail(char *out, size_t outlen, const char *number,
			unsigned n)
{
	size_t total = 0, skip, keep, o = 0;
	const char *s;

	if (!out || !outlen)
		return;
	out[0] = '\0';
	if (!number)
		return;
	for (s = number; *s; s++)
		if (is_digit((unsigned char)*s))
			total++;
	keep = total;
	if (n && keep > n)
		keep = n;
	if (keep > outlen - 1)
		keep = outlen - 1;
	skip = total - keep;
	for (s = number; *s; s++) {
		if (!is_digit((unsigned char)*s))
			continue;
		if (skip) {
			skip--;
			continue;
		}
		out[o++] = *s;
	}
	out[o] = '\0';
}
