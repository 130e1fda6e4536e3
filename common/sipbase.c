/* sipbase.c — default answers shared by umcallrouter and umservice. */
#define LOG_MODULE "sip"
#include "common/sipbase.h"
#include "common/log.h"

#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>

/* See the header. */
void sipbase_answer_default(nta_incoming_t *irq, const sip_t *sip,
			    const char *allow)
{
	sip_method_t m = sip && sip->sip_request ? sip->sip_request->rq_method
						 : sip_method_invalid;

	switch (m) {
	case sip_method_ack:
		break;
	case sip_method_options:
		nta_incoming_treply(irq, SIP_200_OK, SIPTAG_ALLOW_STR(allow),
				    SIPTAG_ACCEPT_STR("application/sdp"),
				    SIPTAG_ACCEPT_LANGUAGE_STR("en"),
				    TAG_END());
		break;
	case sip_method_unknown:
	case sip_method_invalid:
		log_info("answering 501 to unknown method %s (Call-ID %s)",
			 sip && sip->sip_request ? sip->sip_request->rq_method_name : "?",
			 sip && sip->sip_call_id ? sip->sip_call_id->i_id : "-");
		nta_incoming_treply(irq, SIP_501_NOT_IMPLEMENTED,
				    SIPTAG_ALLOW_STR(allow), TAG_END());
		break;
	default:
		log_info("answering 405 to %s (Call-ID %s)",
			 sip->sip_request->rq_method_name,
			 sip->sip_call_id ? sip->sip_call_id->i_id : "-");
		nta_incoming_treply(irq, SIP_405_METHOD_NOT_ALLOWED,
				    SIPTAG_ALLOW_STR(allow), TAG_END());
		break;
	}
	nta_incoming_destroy(irq);
}
