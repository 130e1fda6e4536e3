/* growbuf.c — see growbuf.h. */
#include "common/growbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool growbuf(void *pbuf, size_t *cap, size_t want, size_t init, size_t max)
{
	size_t ncap = *cap ? *cap : init;
	void *buf, *nb;

	if (*cap >= want)
		return true;
	while (ncap < want && (!max || ncap < max) && ncap <= SIZE_MAX / 2)
		ncap *= 2;
	if (max && ncap > max)
		ncap = max;
	if (ncap <= *cap)
		return false;
	memcpy(&buf, pbuf, sizeof buf);
	nb = realloc(buf, ncap);
	if (!nb)
		return false;
	memcpy(pbuf, &nb, sizeof nb);
	*cap = ncap;
	return ncap >= want;
}
