/* sipbase.h — SIP answers both daemons give the same way: OPTIONS, methods
 * they do not serve, and the Allow/Accept they advertise. */
#ifndef OPENUM_SIPBASE_H
#define OPENUM_SIPBASE_H

#include <sofia-sip/nta.h>
#include <sofia-sip/sip.h>

/* Answers a request that the daemon's own logic did not take: OPTIONS gets
 * 200 with Allow and Accept, ACK is absorbed, methods SIP defines but this
 * daemon does not serve get 405 with Allow, unknown methods 501. Destroys
 * irq. allow is the daemon's Allow list ("INVITE, ACK, CANCEL, OPTIONS"). */
void sipbase_answer_default(nta_incoming_t *irq, const sip_t *sip,
			    const char *allow);

#endif
