/* pin.h — mailbox PINs: salted PBKDF2-HMAC-SHA256 hashes, constant-time
 * verification, random PIN generation and the UM mailbox policy checks
 * (MinPINLength, AllowCommonPatterns). */
#ifndef OPENUM_PIN_H
#define OPENUM_PIN_H

#include <stdbool.h>
#include <stddef.h>

/* PBKDF2 iteration count written into new hashes. The count is stored in the
 * hash string, so raising it later keeps old hashes verifiable. */
#define PIN_PBKDF2_ITERATIONS 100000
#define PIN_SALT_BYTES 16
#define PIN_HASH_BYTES 32
/* Exchange: a PIN is digits only, at most 24 of them. */
#define PIN_MAX_DIGITS 24
#define PIN_MIN_DIGITS 4
/* Room for the longest hash string this module writes, with the NUL. */
#define PIN_HASH_STRLEN 160

/* The parts of a UM mailbox policy that decide whether a PIN is acceptable. */
struct pin_policy {
	unsigned min_length;        /* MinPINLength, 4-24 */
	bool allow_common_patterns; /* AllowCommonPatterns */
};

void pin_set_iterations(unsigned iterations);
int pin_hash(char **out, const char *pin);
int pin_hash_iter(char **out, const char *pin, unsigned iterations);
int pin_verify(const char *stored, const char *pin);
int pin_generate(char out[], size_t len, unsigned digits);
bool pin_is_common_pattern(const char *pin);
int pin_policy_check(const struct pin_policy *policy, const char *extension,
		     const char *pin, char **cause);

#endif
