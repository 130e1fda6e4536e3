/* pin.c — PIN hashing (PBKDF2-HMAC-SHA256 through OpenSSL), verification,
 * generation and policy checks. A PIN never leaves this module in a form
 * that could be stored: only pin_hash strings are written anywhere. */
#include "common/hex.h"
#include "common/pin.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define PIN_SCHEME "pbkdf2-sha256"
#define PIN_MAX_ITERATIONS 10000000u
#define PIN_MAX_BIN 64

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
	}
	return true;
}

static int derive(unsigned char *key, size_t keylen, const char *pin,
		  const unsigned char *salt, size_t saltlen, unsigned iter)
{
	if (!PKCS5_PBKDF2_HMAC(pin, (int)strlen(pin), salt, (int)saltlen,
			       (int)iter, EVP_sha256(), (int)keylen, key))
		return EIO;
	return 0;
}

/* Hashes a PIN with a fresh random salt and the given iteration count into
 * "pbkdf2-sha256$<iter>$<salt hex>$<hash hex>" (malloc'd, caller frees). */
int pin_hash_iter(char **out, const char *pin, unsigned iterations)
{
	unsigned char salt[PIN_SALT_BYTES], key[PIN_HASH_BYTES];
	char salthex[2 * PIN_SALT_BYTES + 1], keyhex[2 * PIN_HASH_BYTES + 1];
	char *s = NULL;
	int err;

	if (!out || !pin || iterations == 0 || iterations > PIN_MAX_ITERATIONS)
		return EINVAL;
	if (RAND_bytes(salt, sizeof salt) != 1)
		return EIO;
	err = derive(key, sizeof key, pin, salt, sizeof salt, iterations);
	if (err)
		goto out;
	hex_encode(salthex, salt, sizeof salt);
	hex_encode(keyhex, key, sizeof key);
	if (asprintf(&s, PIN_SCHEME "$%u$%s$%s", iterations, salthex,
		     keyhex) < 0) {
		s = NULL;
		err = ENOMEM;
		goto out;
	}
	*out = s;
out:
	OPENSSL_cleanse(key, sizeof key);
	return err;
}

static unsigned hash_iterations = PIN_PBKDF2_ITERATIONS;

/* Sets the iteration count pin_hash writes into new hashes (default
 * PIN_PBKDF2_ITERATIONS; never below 1000). For unit tests that create many
 * mailboxes; existing hashes keep verifying with their own count. */
void pin_set_iterations(unsigned iterations)
{
	hash_iterations = iterations < 1000 ? 1000 : iterations;
}

/* Hashes a PIN with the current iteration count; see pin_hash_iter. */
int pin_hash(char **out, const char *pin)
{
	return pin_hash_iter(out, pin, hash_iterations);
}

/* Checks a PIN against a stored hash string: 0 when it matches, EACCES when
 * it does not, EINVAL when the stored string is not one this module wrote.
 * The final comparison is constant-time. */
int pin_verify(const char *stored, const char *pin)
{
	unsigned char salt[PIN_MAX_BIN], want[PIN_MAX_BIN], got[PIN_MAX_BIN];
	const char *p, *d1, *d2;
	size_t saltlen, keylen;
	unsigned long iter;
	char *end;
	int err;

	if (!stored || !pin)
		return EINVAL;
	if (strncmp(stored, PIN_SCHEME "$", sizeof PIN_SCHEME) != 0)
		return EINVAL;
	p = stored + sizeof PIN_SCHEME;
	if (*p < '1' || *p > '9')
		return EINVAL;
	errno = 0;
	iter = strtoul(p, &end, 10);
	if (errno || *end != '$' || iter == 0 || iter > PIN_MAX_ITERATIONS)
		return EINVAL;
	d1 = end + 1;
	d2 = strchr(d1, '$');
	if (!d2)
		return EINVAL;
	saltlen = (size_t)(d2 - d1);
	keylen = strlen(d2 + 1);
	if (saltlen < 16 || saltlen > 2 * PIN_MAX_BIN || keylen < 32 ||
	    keylen > 2 * PIN_MAX_BIN)
		return EINVAL;
	if (hex_decode(salt, d1, saltlen) || hex_decode(want, d2 + 1, keylen))
		return EINVAL;
	saltlen /= 2;
	keylen /= 2;
	err = derive(got, keylen, pin, salt, saltlen, (unsigned)iter);
	if (err)
		return err;
	err = CRYPTO_memcmp(got, want, keylen) == 0 ? 0 : EACCES;
	OPENSSL_cleanse(got, sizeof got);
	return err;
}

/* True when the digits are all the same (111111) or run up or down by one
 * (123456, 654321, also wrapping: 890123). */
bool pin_is_common_pattern(const char *pin)
{
	size_t n = strlen(pin);
	bool same = true, up = true, down = true;

	if (n < 2)
		return true;
	for (size_t i = 1; i < n; i++) {
		int a = pin[i - 1] - '0', b = pin[i] - '0';

		if (a != b)
			same = false;
		if ((a + 1) % 10 != b)
			up = false;
		if ((b + 1) % 10 != a)
			down = false;
	}
	return same || up || down;
}

/* Writes a random numeric PIN of `digits` digits into out (len must leave
 * room for the NUL) that is not a common pattern (all-same, sequential). */
int pin_generate(char out[], size_t len, unsigned digits)
{
	unsigned char rnd[PIN_MAX_DIGITS];

	if (!out || digits < PIN_MIN_DIGITS || digits > PIN_MAX_DIGITS ||
	    len <= digits)
		return EINVAL;
	for (int tries = 0; tries < 100; tries++) {
		unsigned i = 0;

		while (i < digits) {
			if (RAND_bytes(rnd, (int)digits) != 1)
				return EIO;
			/* 250 is a multiple of 10: rejection keeps digits
			 * uniform. */
			for (unsigned j = 0; j < digits && i < digits; j++) {
				if (rnd[j] < 250)
					out[i++] = (char)('0' + rnd[j] % 10);
			}
		}
		out[digits] = '\0';
		if (!pin_is_common_pattern(out))
			return 0;
	}
	return EIO;
}

static int set_cause(char **cause, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int set_cause(char **cause, const char *fmt, ...)
{
	va_list ap;

	if (!cause)
		return 0;
	va_start(ap, fmt);
	if (vasprintf(cause, fmt, ap) < 0)
		*cause = NULL;
	va_end(ap);
	return 0;
}

/* Checks a new PIN against the policy: digits only, MinPINLength to 24
 * digits and, unless AllowCommonPatterns, no repeated or sequential digits
 * and not the mailbox extension. The extension is only searched for inside
 * the PIN when it has 3 or more digits (a 1- or 2-digit extension would
 * forbid most PINs); a shorter one must just not equal the PIN. EINVAL with
 * a readable cause when the PIN is refused. */
int pin_policy_check(const struct pin_policy *policy, const char *extension,
		     const char *pin, char **cause)
{
	size_t n;
	unsigned min = policy && policy->min_length ? policy->min_length
						    : PIN_MIN_DIGITS;

	if (!pin || !all_digits(pin)) {
		set_cause(cause, "a PIN must be digits 0-9 only");
		return EINVAL;
	}
	n = strlen(pin);
	if (n > PIN_MAX_DIGITS) {
		set_cause(cause, "a PIN has at most %d digits", PIN_MAX_DIGITS);
		return EINVAL;
	}
	if (n < min) {
		set_cause(cause,
			  "the PIN must have at least %u digits (MinPINLength)",
			  min);
		return EINVAL;
	}
	if (policy && policy->allow_common_patterns)
		return 0;
	if (pin_is_common_pattern(pin)) {
		set_cause(cause, "the PIN must not be repeated or sequential "
				 "digits (AllowCommonPatterns is False)");
		return EINVAL;
	}
	if (extension && *extension &&
	    (strcmp(pin, extension) == 0 ||
	     (strlen(extension) >= 3 && strstr(pin, extension)))) {
		set_cause(cause, "the PIN must not contain the extension %s "
				 "(AllowCommonPatterns is False)",
			  extension);
		return EINVAL;
	}
	return 0;
}
