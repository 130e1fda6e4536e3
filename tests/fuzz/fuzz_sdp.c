/* fuzz_sdp.c — libFuzzer harness of common/sdp.c: the input is an SDP body
 * for sdp_offer_parse; an accepted offer must hold bounded, bracket-free
 * text and answer within the buffer or with a documented error, and the
 * answer must parse back. */
#include "common/sdp.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct sdp_local l4 = {AF_INET, "192.0.2.1", 20000, 1, 1, NULL};
	static const struct sdp_local l6 = {AF_INET6, "2001:db8::1", 20000, 1, 1, NULL};
	struct sdp_offer o, back;
	struct sdp_choice c;
	char *copy, *cause = NULL, buf[4096];
	int err;

	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	err = sdp_offer_parse(&o, copy, size, &cause);
	if (err && err != EBADMSG && err != ENOENT && err != ENOTSUP &&
	    err != ENOMEM)
		abort();
	if (err && !cause && err != ENOMEM)
		abort();
	free(cause);
	if (err == 0) {
		if (strnlen(o.addr, sizeof o.addr) >= sizeof o.addr ||
		    strchr(o.addr, '[') || o.port == 0 ||
		    o.nmedia > SDP_MEDIA_MAX || o.audio >= o.nmedia ||
		    o.npt > SDP_PT_MAX || o.ncrypto > SDP_CRYPTO_MAX ||
		    (o.pcmu_pt < 0 && o.pcma_pt < 0))
			abort();
		err = sdp_answer_build(buf, sizeof buf, &o,
				       o.family == AF_INET6 ? &l6 : &l4, &c);
		if (err == 0) {
			if (strchr(buf, '[') ||
			    sdp_answer_parse(&back, buf, strlen(buf), NULL) != 0 ||
			    back.port != 20000 || back.family != o.family)
				abort();
		} else if (err != ENOTSUP && err != ENOSPC) {
			abort();
		}
	}
	free(copy);
	return 0;
}
